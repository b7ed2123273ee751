package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/functions/bankcheck"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

var bankPerson = contract.PersonData{INN: "500100732259", SNILS: "112-233-445 95", Surname: "Семенов", FirstName: "Иван",
	BirthDate: "12.04.1985", PassportSeries: "4509", PassportNumber: "123456"}

// The challenges the API writes are the ones the bank check spends.
func TestBankCheckReadsTheAPIsChallenges(t *testing.T) {
	if bankcheck.NonceTable != IdempotencyTable {
		t.Fatalf("bankcheck reads %q, the API writes %q", bankcheck.NonceTable, IdempotencyTable)
	}
}

// A bank start without an assertion, or with one that is not a bank's assertion, is
// answered 400 naming bank_assertion, before anything is read or started.
func TestBankStartNeedsAnAssertion(t *testing.T) {
	_, h := tenantServer(t)
	bank, _ := bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	good, _ := bank.Assert(bankPerson.INN, "n", time.Now())
	for name, c := range map[string]struct {
		method, assertion, want string
	}{
		"missing":          {contract.MethodBank, "", "needs the partner bank's signed assertion"},
		"garbage":          {contract.MethodBank, "hello", "not a compact JWS"},
		"alg none":         {contract.MethodBank, "eyJhbGciOiJub25lIn0." + strings.Split(good, ".")[1] + ".c2ln", "ES256 or EdDSA"},
		"oversized":        {contract.MethodBank, strings.Repeat("a", bankid.MaxTokenBytes+1), "larger than"},
		"for other method": {contract.MethodVideo, good, "only the bank method"},
	} {
		body, _ := json.Marshal(map[string]any{"method": c.method, "person": bankPerson, "bank_assertion": c.assertion})
		rec := do(h, "POST", "/v1/identity-verifications", "alpha-integrator", string(body), "Idempotency-Key", uuid.NewString())
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
			continue
		}
		e := errorOf(t, rec)
		if len(e.Fields) != 1 || e.Fields[0].Field != "bank_assertion" || !strings.Contains(e.Fields[0].Reason, c.want) {
			t.Errorf("%s: %+v, want bank_assertion: %q", name, e.Fields, c.want)
		}
	}
}

// An assertion whose nonce this tenant was not issued, has expired or another case used
// is refused with a 400 before the case starts; the verification spends the nonce.
func TestBankStartPrechecksTheNonce(t *testing.T) {
	s, h := tenantServer(t)
	bank, _ := bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	now := time.Now()
	challengeOf := func(key string) string {
		rec := do(h, "POST", "/v1/identity-verifications/challenges", key, "")
		var out struct{ Nonce, Bank string }
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Nonce == "" || out.Bank == "" {
			t.Fatalf("challenge: %d %s", rec.Code, rec.Body)
		}
		return out.Nonce
	}
	put := func(rec map[string]any) {
		if _, err := store.PutNew(context.Background(), s.DB, s.Idempotency, "key", rec); err != nil {
			t.Fatal(err)
		}
	}
	put(map[string]any{"key": "nonce#stale", "tenant": "alpha", "expires_at": now.Add(-time.Second).Unix()})
	spent := challengeOf("alpha-integrator")
	put(map[string]any{"key": "used#" + spent, "tenant": "alpha", "case_id": "identity-other", "expires_at": now.Add(time.Minute).Unix()})
	for name, c := range map[string]struct{ nonce, want string }{
		"made-up nonce":    {"guess", "not a challenge issued to this API key's tenant"},
		"another tenant's": {challengeOf("beta-integrator"), "not a challenge issued to this API key's tenant"},
		"expired":          {"stale", "expired"},
		"used":             {spent, "already used"},
	} {
		tok, _ := bank.Assert(bankPerson.INN, c.nonce, now)
		body, _ := json.Marshal(map[string]any{"method": "bank", "person": bankPerson, "bank_assertion": tok})
		rec := do(h, "POST", "/v1/identity-verifications", "alpha-integrator", string(body), "Idempotency-Key", uuid.NewString())
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
			continue
		}
		if e := errorOf(t, rec); len(e.Fields) != 1 || e.Fields[0].Field != "bank_assertion" || !strings.Contains(e.Fields[0].Reason, c.want) {
			t.Errorf("%s: %+v, want %q", name, e.Fields, c.want)
		}
	}
	// A fresh nonce of this tenant passes; so does the nonce this very case spent (a retry).
	fresh := challengeOf("alpha-integrator")
	for _, c := range []struct{ nonce, caseID string }{{fresh, "identity-new"}, {spent, "identity-other"}} {
		tok, _ := bank.Assert(bankPerson.INN, c.nonce, now)
		req := httptest.NewRequest("POST", "/v1/identity-verifications", nil)
		req = req.WithContext(context.WithValue(req.Context(), principalKey{}, Principal{Tenant: "alpha"}))
		rec := httptest.NewRecorder()
		if !s.precheckBankNonce(rec, req, tok, c.caseID) {
			t.Fatalf("nonce %s for %s refused: %d %s", c.nonce, c.caseID, rec.Code, rec.Body)
		}
	}
}
