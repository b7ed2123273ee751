//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/trust"
	"github.com/taxflow/taxflow/workflows"
)

// The bank method over HTTP: a demo partner bank, whose public key set is really kept in
// S3, signs an assertion for a challenge nonce; the verification (the bank-check function
// on the Lambda host) verifies the person; the same assertion again is refused, both at
// the API and by the function's conditional write in DynamoDB; an assertion about another
// taxpayer rejects the case, generically for the integrator and in detail for staff.
func TestIdentityByBankAssertionOverHTTP(t *testing.T) {
	inv := lambdaInvoker()
	queue := startWorker(t, inv)
	cabinet, operator := startIdentityAPI(t, queue)
	bank, err := bankidtest.NewBank(bankidtest.DemoBankID, bankid.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.Put(context.Background(), shared.clients.S3, shared.cfg.Name(trust.Bucket), "banks", bankidtest.KeySet(bank)); err != nil {
		t.Fatal(err)
	}
	challenge := func() string {
		code, out := cabinet.do("POST", "/v1/identity-verifications/challenges", nil)
		var ch struct{ Nonce string }
		if code != http.StatusCreated || json.Unmarshal(out, &ch) != nil || ch.Nonce == "" {
			t.Fatalf("challenge: %d %s", code, out)
		}
		return ch.Nonce
	}
	start := func(p contract.PersonData, assertion string) (int, string, []byte) {
		body, _ := json.Marshal(map[string]any{"method": contract.MethodBank, "person": p, "bank_assertion": assertion})
		code, out := cabinet.do("POST", "/v1/identity-verifications", body, "Idempotency-Key", uuid.NewString())
		var res struct {
			CaseID string `json:"case_id"`
		}
		_ = json.Unmarshal(out, &res)
		return code, res.CaseID, out
	}

	p := newPerson(t, true)
	// Without an assertion the bank method starts nothing.
	if code, _, out := start(p, ""); code != http.StatusBadRequest || !strings.Contains(string(out), "bank_assertion") {
		t.Fatalf("no assertion: %d %s", code, out)
	}
	nonce := challenge()
	assertion, err := bank.Assert(p.INN, nonce, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, id, out := start(p, assertion)
	if code != http.StatusCreated {
		t.Fatalf("start: %d %s", code, out)
	}
	if st := cabinet.waitIdentity(id, status(workflows.IdentityVerified), "verified by the bank's assertion"); st.Method != contract.MethodBank || st.ConfirmedAt == nil {
		t.Fatalf("%+v", st)
	}
	// The same assertion for a new case: refused at the door (its nonce is spent)…
	if code, _, out := start(p, assertion); code != http.StatusBadRequest || !strings.Contains(string(out), "already used") {
		t.Fatalf("a replayed assertion: %d %s, want 400", code, out)
	}
	// …and by the function itself, should a start race past the API's check.
	in, _ := json.Marshal(contract.BankCheckInput{Assertion: assertion, INN: p.INN, CaseID: workflows.IdentityID(uuid.NewString()), At: time.Now()})
	raw, err := inv.Invoke(context.Background(), contract.FnBankCheck, in)
	var res contract.BankCheckResult
	if err != nil || json.Unmarshal(raw, &res) != nil || res.Valid || !strings.Contains(res.Reason, "already used") {
		t.Fatalf("the function on a replay: %s %v", raw, err)
	}

	// An assertion about another taxpayer: rejected; the integrator is told generically.
	other := newPerson(t, true)
	foreign, _ := bank.Assert(other.INN, challenge(), time.Now())
	code, id, out = start(p, foreign)
	if code != http.StatusCreated {
		t.Fatalf("start with another taxpayer's assertion: %d %s", code, out)
	}
	st := cabinet.waitIdentity(id, status(workflows.IdentityRejected), "rejected")
	if len(st.Reasons) != 1 || st.Reasons[0] != api.GenericMismatch {
		t.Fatalf("the integrator's reasons: %v", st.Reasons)
	}
	if staff := operator.identity(id); len(staff.Reasons) != 1 || !strings.Contains(staff.Reasons[0], "another taxpayer") ||
		strings.Contains(staff.Reasons[0], p.INN) || strings.Contains(staff.Reasons[0], other.INN) {
		t.Fatalf("the operator's reasons: %v", staff.Reasons)
	}
}
