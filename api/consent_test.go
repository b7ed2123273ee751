package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// Consent without its channel or document is refused, and nothing is written.
func TestConsentWithoutDocumentRecordsNothing(t *testing.T) {
	s, keys := newTestServer()
	db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}, "owners": {PK: "case_id"}})
	s.DB, s.Taxpayers = db, "taxpayers"
	// A taxpayer with no consent standing: recording one is open to a tenant (authz.go).
	if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn", map[string]any{"inn": "500100732259"}); err != nil {
		t.Fatal(err)
	}
	db.Writes = 0
	keys.Add("consent-key", Principal{ID: "cabinet", Tenant: "alpha", Role: RoleIntegrator, Scopes: []string{ScopeConsent}})
	h := s.Handler()
	for _, body := range []string{"", `{}`, `{"channel":"cabinet"}`, `{"channel":"fax","document_id":"c-1"}`, `{"channel":"cabinet","document_id":" "}`} {
		rec := do(h, "POST", "/v1/taxpayers/500100732259/consent", "consent-key", body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%q: %d %s", body, rec.Code, rec.Body)
		}
	}
	if db.Writes != 0 {
		t.Fatalf("%d writes for refused consents", db.Writes)
	}
}

func TestMismatchReasonsAreGenericForIntegrators(t *testing.T) {
	st := workflows.IdentityStatus{Reasons: []string{"surname differs from the registry", "passport number differs"}}
	staff := st
	staff.Reasons = append([]string{}, st.Reasons...)
	redactReasons(Principal{Role: RoleIntegrator}, &st)
	if len(st.Reasons) != 1 || st.Reasons[0] != GenericMismatch {
		t.Fatalf("integrator sees %v", st.Reasons)
	}
	redactReasons(Principal{Role: RoleReviewer}, &staff)
	if len(staff.Reasons) != 2 {
		t.Fatalf("reviewer sees %v", staff.Reasons)
	}
}

// Identity attempts for one taxpayer: five an hour, then 429 with Retry-After; another
// taxpayer is not affected. The limit is counted by the handlers, on the request they
// decoded, through every door that tries personal data.
func TestIdentityAttemptsAreRateLimitedPerTaxpayer(t *testing.T) {
	e := newProofEnv(t)
	body := mustJSON(map[string]any{"method": "documents", "person": victimPerson(victimSNILS)})
	for i := 1; i <= IdentityAttemptsPerWindow+1; i++ {
		res := e.create(body)
		if i <= IdentityAttemptsPerWindow && res.code != http.StatusCreated {
			t.Fatalf("attempt %d: %d %s", i, res.code, res.body)
		}
		if i > IdentityAttemptsPerWindow && res.code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d: %d %s", i, res.code, res.body)
		}
	}
	rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", "k-over")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	_ = errorOf(t, rec)
	// The same taxpayer through the account path counts too; another taxpayer does not.
	if rec := do(e.h, "POST", "/v1/accounts/"+victimINN+"/unblock/identity", "alpha-auth-system", body); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("same taxpayer via the account: %d %s", rec.Code, rec.Body)
	}
	other := victimPerson(victimSNILS)
	other["inn"] = "773301001060"
	if res := e.create(mustJSON(map[string]any{"method": "documents", "person": other})); res.code != http.StatusNotFound {
		t.Fatalf("another taxpayer (not in the registry, not limited): %d %s", res.code, res.body)
	}
	if starts, _ := e.tmp.counts(); starts != IdentityAttemptsPerWindow {
		t.Fatalf("started %d", starts)
	}
}
