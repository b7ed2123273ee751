package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/taxflow/taxflow/internal/store/storetest"
)

// X-Confirmation-Reference is the record of how the taxpayer confirmed the declaration:
// it is checked against its method's format before anything happens (no idempotency key
// reserved, no owner recorded, nothing stored or started), and refused with a 400 that
// names the header. Before, any value passed: a megabyte, a script, an SMS code itself.
func TestConfirmationReferenceIsValidated(t *testing.T) {
	s, keys := newTestServer()
	keys.Add("declarant-key", Principal{ID: "cabinet", Tenant: "cabinet", Role: RoleIntegrator, Scopes: []string{ScopeDeclarationsWrite, ScopeDeclarationsRead}})
	h := s.Handler()
	decl := `{"inn":"500100732259","period":2025,"incomes":[],"withheld_kopecks":0,"declared_tax_kopecks":0,"declared_refund_kopecks":0}`
	for name, c := range map[string]struct{ method, ref, field string }{
		"missing reference":          {"sms", "", "X-Confirmation-Reference"},
		"too long":                   {"esignature", strings.Repeat("a", 129), "X-Confirmation-Reference"},
		"sms too long":               {"sms", "sms-" + strings.Repeat("a", 61), "X-Confirmation-Reference"},
		"markup":                     {"esignature", `<script>alert(1)</script>`, "X-Confirmation-Reference"},
		"spaces":                     {"sms", "sms check 1", "X-Confirmation-Reference"},
		"formula":                    {"sms", "=cmd|' /C calc'!A0", "X-Confirmation-Reference"},
		"non-ascii":                  {"sms", "смс-проверка-1", "X-Confirmation-Reference"},
		"the sms code itself":        {"sms", "482913", "X-Confirmation-Reference"},
		"too short":                  {"esignature", "s1", "X-Confirmation-Reference"},
		"unknown method":             {"paper", "sig-00001", "X-Confirmation-Method"},
		"no method":                  {"", "sig-00001", "X-Confirmation-Method"},
		"sms reference for base64 +": {"sms", "a+b/c=", "X-Confirmation-Reference"},
	} {
		t.Run(name, func(t *testing.T) {
			rec := do(h, "POST", "/v1/declarations", "declarant-key", decl, "Idempotency-Key", "k-"+name, "Content-Type", "application/json",
				"X-Confirmation-Method", c.method, "X-Confirmation-Reference", c.ref)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			e := errorOf(t, rec)
			if len(e.Fields) == 0 || e.Fields[0].Field != c.field {
				t.Fatalf("the answer does not name %s: %s", c.field, rec.Body)
			}
			db := s.DB.(*storetest.DB)
			if n := len(db.Items("idempotency")) + len(db.Items("owners")); n != 0 {
				t.Fatalf("a refused request left %d records", n)
			}
		})
	}
}
