package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

func TestRouterAndOpenAPIListTheSameRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := Routes()
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("OpenAPI documents %v\nrouter serves %v", documented, served)
	}
}

func testServer() (http.Handler, *MemoryKeys) {
	s, keys := newTestServer()
	return s.Handler(), keys
}

// newTestServer is the API over in-memory keys and a fake DynamoDB (no Temporal: the
// tests stop before a handler would call it).
func newTestServer() (*Server, *MemoryKeys) {
	keys := &MemoryKeys{}
	keys.Add("integrator-key", Principal{ID: "cabinet", Tenant: "cabinet", Role: RoleIntegrator, Scopes: []string{ScopeRefundsRead, ScopeRefundsWrite}})
	keys.Add("reader-key", Principal{ID: "auditor", Tenant: "cabinet", Role: RoleIntegrator, Scopes: []string{ScopeRefundsRead}})
	db := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"}})
	s := &Server{Keys: keys, Log: zerolog.Nop(), Policy: workflows.DefaultRefundPolicy(), DB: db, Owners: "owners", Idempotency: "idempotency",
		Subjects: testSubjects(1)}
	return s, keys
}

func do(h http.Handler, method, path, key, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func errorOf(t *testing.T, rec *httptest.ResponseRecorder) Error {
	t.Helper()
	var body Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("not an error body: %s", rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" || body.Status != rec.Code || body.Code == "" || body.Code != body.Error.Code {
		t.Fatalf("not a problem document (%s): %s", ct, rec.Body)
	}
	return body.Error
}

func TestAuthentication(t *testing.T) {
	h, _ := testServer()
	valid := `{"inn":"500100732259","period":2025,"amount_kopecks":100,"reason":"overpaid"}`
	cases := []struct {
		name, key string
		want      int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"unknown key", "guess", http.StatusUnauthorized},
		{"read-only key cannot create", "reader-key", http.StatusForbidden},
	}
	for _, c := range cases {
		rec := do(h, "POST", "/v1/refunds", c.key, valid, "Idempotency-Key", "k1")
		if rec.Code != c.want {
			t.Errorf("%s: got %d %s", c.name, rec.Code, rec.Body)
		}
	}
	if rec := do(h, "GET", "/healthz", "", ""); rec.Code != http.StatusOK {
		t.Errorf("healthz needs no key: %d", rec.Code)
	}
}

func TestCreateRefundValidation(t *testing.T) {
	h, _ := testServer()
	cases := []struct {
		name, body, idem string
		want             int
		fields           []string
	}{
		{"bad inn and amount", `{"inn":"500100732258","period":2025,"amount_kopecks":0,"reason":"overpaid"}`, "k", 400, []string{"inn", "amount_kopecks"}},
		{"future period, no reason", `{"inn":"500100732259","period":2999,"amount_kopecks":5,"reason":" "}`, "k", 400, []string{"period", "reason"}},
		{"bad account key", `{"inn":"500100732259","period":2025,"amount_kopecks":5,"reason":"x","bik":"044525225","account":"40817810938160925983"}`, "k", 400, []string{"account"}},
		{"bad bik", `{"inn":"500100732259","period":2025,"amount_kopecks":5,"reason":"x","bik":"12345","account":"40817810938160925982"}`, "k", 400, []string{"bik", "account"}},
		{"float amount", `{"inn":"500100732259","period":2025,"amount_kopecks":10.5,"reason":"x"}`, "k", 400, nil},
		{"unknown field", `{"inn":"500100732259","period":2025,"amount_kopecks":10,"reason":"x","iban":"x"}`, "k", 400, nil},
		{"not json", `inn=1`, "k", 400, nil},
		{"no idempotency key", `{"inn":"500100732259","period":2025,"amount_kopecks":10,"reason":"x"}`, "", 400, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := do(h, "POST", "/v1/refunds", "integrator-key", c.body, "Idempotency-Key", c.idem)
			if rec.Code != c.want {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			e := errorOf(t, rec)
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
				if f.Reason == "" {
					t.Errorf("field %s has no reason", f.Field)
				}
			}
			if c.fields != nil && !slices.Equal(got, c.fields) {
				t.Fatalf("fields %v, want %v", got, c.fields)
			}
			if strings.Contains(rec.Body.String(), "500100732258") {
				t.Fatal("the error repeats the INN")
			}
		})
	}
}

func TestUnknownCaseIDsAreNotFound(t *testing.T) {
	h, _ := testServer()
	for _, path := range []string{"/v1/refunds/nope", "/v1/refunds/refund-123", "/v1/refunds/..%2F..%2Fetc"} {
		if rec := do(h, "GET", path, "integrator-key", ""); rec.Code != http.StatusNotFound {
			t.Errorf("%s: got %d", path, rec.Code)
		}
	}
}
