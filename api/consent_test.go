package api

import (
	"net/http"
	"testing"

	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// Consent without its channel or document is refused, and nothing is written.
func TestConsentWithoutDocumentRecordsNothing(t *testing.T) {
	s, keys := newTestServer()
	db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}})
	s.DB, s.Taxpayers = db, "taxpayers"
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
