package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/functions/bankcheck"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// bankInput is a bank verification carrying an assertion signed by the harness's demo
// bank for a challenge the API issued (recorded as the API records it).
func (h *idHarness) bankInput(now time.Time, edit ...func(bankidtest.Claims)) IdentityWorkflowInput {
	h.t.Helper()
	h.env.SetStartTime(now)
	nonce := "nonce-" + now.Format("150405.000000")
	if _, err := store.PutNew(context.Background(), h.nonces, "api_idempotency", "key",
		map[string]any{"key": "nonce#" + nonce, "tenant": "t1", "expires_at": now.Add(5 * time.Minute).Unix()}); err != nil {
		h.t.Fatal(err)
	}
	tok, err := h.bank.Assert(testINN, nonce, now, edit...)
	if err != nil {
		h.t.Fatal(err)
	}
	in := idInput(contract.MethodBank)
	in.Submission.BankAssertion = tok
	return in
}

func TestIdentityByBankAssertionVerifies(t *testing.T) {
	h := newIDHarness(t, registered()) // the registry's BankIdentified flag is not set: the assertion alone proves it
	st := h.run(h.bankInput(time.Now()))
	if idStatuses(st) != "received>checking>verified" || st.ConfirmedAt == nil || h.confirmed().ConfirmedMethod != contract.MethodBank {
		t.Fatalf("got %s %v", idStatuses(st), st.Reasons)
	}
}

func TestIdentityByBankAssertionRefusedIsRejectedWithReason(t *testing.T) {
	now := time.Now()
	forger, _ := bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	cases := map[string]struct {
		in   func(h *idHarness) IdentityWorkflowInput
		want string
	}{
		"other taxpayer": {func(h *idHarness) IdentityWorkflowInput {
			return h.bankInput(now, func(c bankidtest.Claims) { c["sub"] = "770708389301" })
		}, "another taxpayer"},
		"expired": {func(h *idHarness) IdentityWorkflowInput {
			return h.bankInput(now, func(c bankidtest.Claims) {
				c["iat"], c["exp"] = now.Add(-8*time.Minute).Unix(), now.Add(-time.Minute).Unix()
			})
		}, "expired"},
		"forged": {func(h *idHarness) IdentityWorkflowInput {
			in := h.bankInput(now)
			in.Submission.BankAssertion, _ = forger.Assert(testINN, "nonce-"+now.Format("150405.000000"), now)
			return in
		}, "signature does not verify"},
		"replayed": {func(h *idHarness) IdentityWorkflowInput {
			in := h.bankInput(now)
			// Another case has spent the nonce.
			_, _ = store.PutNew(context.Background(), h.nonces, "api_idempotency", "key",
				map[string]any{"key": "used#nonce-" + now.Format("150405.000000"), "case_id": "identity-other", "expires_at": now.Add(5 * time.Minute).Unix()})
			return in
		}, "already used"},
		"unknown issuer": {func(h *idHarness) IdentityWorkflowInput {
			return h.bankInput(now, func(c bankidtest.Claims) { c["iss"] = "044525000" })
		}, "not a partner bank"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tp := registered()
			tp.BankIdentified = true // a flag never stands in for a refused assertion
			h := newIDHarness(t, tp)
			st := h.run(c.in(h))
			if idStatuses(st) != "received>checking>rejected" || len(st.Reasons) != 1 || !strings.Contains(st.Reasons[0], c.want) ||
				!strings.Contains(st.Reasons[0], "partner bank assertion refused") {
				t.Fatalf("got %s %v, want rejected with %q", idStatuses(st), st.Reasons, c.want)
			}
			if strings.Contains(st.Reasons[0], testINN) || h.confirmed().Confirmed {
				t.Fatalf("reason %q names the INN, or the account was confirmed", st.Reasons[0])
			}
		})
	}
}

func TestIdentityByBankAssertionUncheckableGoesToOperator(t *testing.T) {
	for name, breakIt := range map[string]func(h *idHarness){
		// No key set configured: the function answers inconclusive at once.
		"no key set": func(h *idHarness) { delete(h.s3.Objects, bankcheck.KeySetKey) },
		// The challenge store fails on every attempt: the retries run out.
		"store unreadable": func(h *idHarness) { h.nonces.Err = errors.New("dynamodb unavailable") },
	} {
		t.Run(name, func(t *testing.T) {
			h := newIDHarness(t, registered())
			in := h.bankInput(time.Now())
			breakIt(h)
			h.env.RegisterDelayedCallback(func() {
				if st := h.query(); st.Status != IdentityManualReview || len(st.Reasons) == 0 || !strings.Contains(st.Reasons[0], "could not be checked") {
					t.Errorf("before the review: %s %v", st.Status, st.Reasons)
				}
			}, 2*time.Hour)
			h.review(3*time.Hour, IdentityReview{Approve: false, Reason: "bank could not be asked", Operator: "op-1"}, false)
			st := h.run(in)
			if idStatuses(st) != "received>checking>manual_review>rejected" || st.ReviewedBy != "op-1" || h.confirmed().Confirmed {
				t.Fatalf("got %s by %q", idStatuses(st), st.ReviewedBy)
			}
		})
	}
}
