package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// One key per role in two tenants; staff belong to the tax office.
func tenantServer(t *testing.T) (*Server, http.Handler) {
	t.Helper()
	s, keys := newTestServer()
	for role := range RoleScopes {
		for _, tenant := range []string{"alpha", "beta"} {
			p := Principal{Tenant: tenant, Role: role}
			if p.Staff() {
				// Staff keys are the tax office's, bound to the tenant whose cases they see.
				p = Principal{ID: tenant + "/" + role, Tenant: TaxOffice, BoundTo: tenant, Role: role}
			}
			p, err := ValidatePrincipal(p)
			if err != nil {
				t.Fatal(err)
			}
			keys.Add(tenant+"-"+role, p)
		}
	}
	return s, s.Handler()
}

// pathFor fills a route's path values; the case is tenant alpha's when own is true, and
// exists nowhere otherwise.
func pathFor(t *testing.T, s *Server, path string, own bool) string {
	t.Helper()
	id := ""
	switch {
	case strings.HasPrefix(path, "/v1/refunds/"):
		id = "refund-" + uuid.NewString()
	case strings.HasPrefix(path, "/v1/identity-verifications/"):
		id = "identity-" + uuid.NewString()
	case strings.HasPrefix(path, "/v1/declarations/"):
		id = "declaration-" + uuid.NewString()
	case strings.HasPrefix(path, "/v1/batches/{id}"):
		id = "batch-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	case strings.HasPrefix(path, "/v1/webhooks/{id}"):
		id = "wh_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	}
	if id != "" && own {
		if _, err := store.PutNew(context.Background(), s.DB, s.Owners, "case_id", caseOwner{CaseID: id, Tenant: "alpha", CreatedBy: "alpha/integrator"}); err != nil {
			t.Fatal(err)
		}
	}
	r := strings.NewReplacer("{id}", id, "{inn}", "500100732259", "{doc}", "statement", "{delivery}", "1")
	return r.Replace(path)
}

func attrString(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// Every route: no key → 401; a role without the route's scope → 403; another tenant's
// case → 404 with exactly the body of a case that does not exist.
func TestEveryRouteRefusesNoKeyWrongRoleAndOtherTenants(t *testing.T) {
	s, h := tenantServer(t)
	for _, rt := range routes {
		if rt.scope == "" {
			continue
		}
		name := rt.method + " " + rt.path
		t.Run(name, func(t *testing.T) {
			path := pathFor(t, s, rt.path, true)
			if rec := do(h, rt.method, path, "", "{}"); rec.Code != http.StatusUnauthorized {
				t.Errorf("no key: %d %s", rec.Code, rec.Body)
			}
			if rec := do(h, rt.method, path, "tfk_not-a-key", "{}"); rec.Code != http.StatusUnauthorized {
				t.Errorf("unknown key: %d", rec.Code)
			}
			wrong := 0
			for role, scopes := range RoleScopes {
				if slices.Contains(scopes, rt.scope) {
					continue
				}
				wrong++
				if rec := do(h, rt.method, path, "beta-"+role, "{}"); rec.Code != http.StatusForbidden {
					t.Errorf("role %s without %s: %d %s", role, rt.scope, rec.Code, rec.Body)
				}
			}
			if wrong == 0 {
				t.Fatalf("every role holds %s", rt.scope)
			}
			if !strings.Contains(rt.path, "{id}") || !slices.Contains(RoleScopes[RoleIntegrator], rt.scope) {
				return
			}
			other := do(h, rt.method, path, "beta-integrator", "{}")
			missing := do(h, rt.method, pathFor(t, s, rt.path, false), "beta-integrator", "{}")
			if other.Code != http.StatusNotFound || other.Body.String() != missing.Body.String() || missing.Code != http.StatusNotFound {
				t.Errorf("another tenant's case: %d %s; a missing case: %d %s", other.Code, other.Body, missing.Code, missing.Body)
			}
		})
	}
}

func TestStaffSeeOnlyTheirOwnQueue(t *testing.T) {
	_, h := tenantServer(t)
	for _, c := range []struct {
		key, role string
		want      int
	}{
		{"alpha-reviewer", "inspector", http.StatusForbidden},
		{"alpha-inspector", "operator", http.StatusForbidden},
		{"alpha-specialist", "", http.StatusForbidden},
		{"alpha-integrator", "reviewer", http.StatusForbidden},
	} {
		if rec := do(h, "GET", "/v1/tasks?role="+c.role, c.key, ""); rec.Code != c.want {
			t.Errorf("%s lists %q: %d %s", c.key, c.role, rec.Code, rec.Body)
		}
	}
}

func TestKeysExpireAreRevokedListedAndStoredHashed(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"apikeys": {PK: "key_hash"}})
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	keys := DynamoKeys{DB: db, Table: "apikeys", Now: func() time.Time { return now }}
	ctx := context.Background()
	for _, bad := range []Principal{{Tenant: "", Role: RoleIntegrator}, {Tenant: "alpha", Role: "admin"},
		{Tenant: "Alpha Corp", Role: RoleIntegrator}, {Tenant: "alpha", Role: RoleIntegrator, Scopes: []string{ScopeRefundsDecide}}} {
		if _, _, err := keys.CreateKey(ctx, bad, now.Add(time.Hour)); err == nil {
			t.Errorf("created a key for %+v", bad)
		}
	}
	if _, _, err := keys.CreateKey(ctx, Principal{Tenant: "alpha", Role: RoleIntegrator}, now.Add(-time.Second)); err == nil {
		t.Error("created an already expired key")
	}
	if len(db.Items("apikeys")) != 0 {
		t.Fatal("a refused key was stored")
	}
	key, id, err := keys.CreateKey(ctx, Principal{Tenant: "alpha", Role: RoleIntegrator}, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, item := range db.Items("apikeys") {
		for _, v := range item {
			if strings.Contains(attrString(v), key) {
				t.Fatal("the key itself is stored")
			}
		}
	}
	p, ok, err := keys.Lookup(ctx, HashKey(key))
	if err != nil || !ok || p.Tenant != "alpha" || p.KeyID != id || !p.Can(ScopeRefundsWrite) || p.Can(ScopeRefundsDecide) {
		t.Fatalf("lookup: %+v %v %v", p, ok, err)
	}
	list, err := keys.List(ctx, "alpha")
	if err != nil || len(list) != 1 || list[0].KeyID != id || list[0].LastUsedAt != now.Unix() {
		t.Fatalf("list: %+v %v", list, err)
	}
	now = now.Add(2 * time.Hour)
	if _, ok, _ := keys.Lookup(ctx, HashKey(key)); ok {
		t.Fatal("an expired key is valid")
	}
	key2, id2, _ := keys.CreateKey(ctx, Principal{Tenant: "alpha", Role: RoleIntegrator}, now.Add(time.Hour))
	if found, err := keys.Revoke(ctx, id2); err != nil || !found {
		t.Fatalf("revoke: %v %v", found, err)
	}
	if _, ok, _ := keys.Lookup(ctx, HashKey(key2)); ok {
		t.Fatal("a revoked key is valid")
	}
	if found, _ := keys.Revoke(ctx, "key_nope"); found {
		t.Fatal("revoked a key that does not exist")
	}
	// Through the API: 401 for both, and for a malformed key.
	s := &Server{Keys: keys, Log: zerolog.Nop()}
	h := s.Handler()
	for _, k := range []string{key, key2, "tfk_short", "Bearer x"} {
		if rec := do(h, "GET", "/v1/refunds/refund-"+uuid.NewString(), k, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("key %.8s…: %d", k, rec.Code)
		}
	}
}

// The access log names the key, tenant, request id, route, status and latency, and
// nothing from the path, query or body.
func TestAccessLogCarriesKeyAndTenantNeverPersonalData(t *testing.T) {
	s, keys := newTestServer()
	keys.Add("k", Principal{ID: "cabinet", Tenant: "alpha", Role: RoleIntegrator, KeyID: "key_0123", Scopes: []string{ScopeAccountRead}})
	var buf bytes.Buffer
	s.Log = zerolog.New(&buf)
	h := s.Handler()
	req := httptest.NewRequest("GET", "/v1/tasks?role=500100732259", nil)
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("X-Request-Id", "req-42")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, want := range map[string]any{"key_id": "key_0123", "tenant": "alpha", "request_id": "req-42", "route": "GET /v1/tasks", "status": float64(403)} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v (%s)", k, line[k], want, buf.String())
		}
	}
	if _, ok := line["took"]; !ok || strings.Contains(buf.String(), "500100732259") {
		t.Errorf("log line: %s", buf.String())
	}
	if rec.Header().Get("X-Request-Id") != "req-42" {
		t.Error("the request id is not echoed")
	}
	_, _ = io.Copy(io.Discard, rec.Body)
}

// The principal that created a case cannot decide it, even through a staff key.
func TestCreatorCannotDecideItsOwnCase(t *testing.T) {
	s, keys := newTestServer()
	keys.Add("alice-reviewer", Principal{ID: "alice", Tenant: "tax-office", Role: RoleReviewer, Scopes: RoleScopes[RoleReviewer]})
	keys.Add("alice-inspector", Principal{ID: "alice", Tenant: "tax-office", Role: RoleInspector, Scopes: RoleScopes[RoleInspector]})
	h := s.Handler()
	for _, rt := range routes {
		if !rt.decides {
			continue
		}
		name, method, path := rt.method+" "+rt.path, rt.method, rt.path
		prefix := map[string]string{"/v1/refunds/": "refund-", "/v1/identity-verifications/": "identity-", "/v1/declarations/": "declaration-"}
		id := ""
		for p, pre := range prefix {
			if strings.HasPrefix(path, p) {
				id = pre + uuid.NewString()
			}
		}
		if _, err := store.PutNew(context.Background(), s.DB, s.Owners, "case_id", caseOwner{CaseID: id, Tenant: "alpha", CreatedBy: "alice"}); err != nil {
			t.Fatal(err)
		}
		key := "alice-reviewer"
		if strings.HasPrefix(path, "/v1/declarations/") {
			key = "alice-inspector"
		}
		rec := do(h, method, strings.Replace(path, "{id}", id, 1), key, `{"approve":true}`)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "separation_of_duties") {
			t.Errorf("%s by its creator: %d %s", name, rec.Code, rec.Body)
		}
	}
}

// A declaration's refunds belong to the declaration's owner: the first one
// (refund-<key>) and the one an appeal's decision starts for what it confirms beyond
// the refunds already started (refund-<key>-<n>, workflows declaration-refund-difference).
// Without the second, the taxpayer's integrator reads 404 on the money it is being paid.
func TestCaseOwnerOfADeclarationsDifferenceRefund(t *testing.T) {
	s, _ := tenantServer(t)
	ctx := context.Background()
	key := uuid.NewString()
	if _, err := store.PutNew(ctx, s.DB, s.Owners, "case_id", caseOwner{CaseID: "declaration-" + key, Tenant: "alpha", CreatedBy: "alpha/integrator"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id    string
		found bool
	}{
		{"refund-" + key, true},
		{"refund-" + key + "-2", true},
		{"refund-" + key + "-13", true},
		{"refund-" + key + "-x", false},
		{"refund-" + key + "-02", false},
		{"refund-" + uuid.NewString() + "-2", false},
		{"identity-" + key + "-2", false},
	} {
		tenant, _, found, err := s.CaseOwner(ctx, c.id)
		if err != nil || found != c.found || (found && tenant != "alpha") {
			t.Errorf("owner of %s: %q found %v (%v), want found %v", c.id, tenant, found, err, c.found)
		}
	}
}

// The refund routes take the difference refund's id (refund-<uuid>-<n>): its reviewer
// decides it, an operator retries its payout, the taxpayer reads it.
func TestRefundRoutesTakeADifferenceRefundsID(t *testing.T) {
	key := uuid.NewString()
	for id, want := range map[string]bool{"refund-" + key: true, "refund-" + key + "-2": true, "refund-" + key + "-9999": true,
		"refund-" + key + "-0": false, "refund-" + key + "-02": false, "refund-" + key + "-10000": false, "refund-" + key + "-": false} {
		if got := caseIDRE.MatchString(id); got != want {
			t.Errorf("%s: taken %v, want %v", id, got, want)
		}
	}
}
