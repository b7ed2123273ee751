//go:build integration

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
)

// A second integrator, with its own key, cannot see the first one's case or journal: the
// answer is the one for a case that does not exist. Case ids are opaque, and the same
// Idempotency-Key of another tenant makes another case.
func TestAnotherTenantsCaseIsNotFound(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	first, _, _ := startAPI(t, queue)
	base, _, _ := strings.Cut(first.base, "|")
	otherKey, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(),
		api.Principal{ID: "e2e-second", Tenant: "e2e-second", Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	second := &apiClient{t, base + "|" + otherKey}
	inn := newTaxpayer(t, 1_000_000)
	idem := uuid.NewString()
	code, id := first.create(inn, 500_000, idem)
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if _, err := uuid.Parse(strings.TrimPrefix(id, "refund-")); err != nil {
		t.Fatalf("case id %s", id)
	}
	_, missing := second.do("GET", "/v1/refunds/refund-"+uuid.NewString(), nil)
	for _, path := range []string{"/v1/refunds/" + id, "/v1/refunds/" + id + "/journal"} {
		code, body := second.do("GET", path, nil)
		if code != http.StatusNotFound || string(body) != string(missing) {
			t.Errorf("%s by another tenant: %d %s (a missing case: %s)", path, code, body, missing)
		}
	}
	if code, body := second.do("POST", "/v1/refunds/"+id+"/withdraw", nil); code != http.StatusNotFound {
		t.Errorf("withdraw by another tenant: %d %s", code, body)
	}
	// The owner still reads it.
	if st := first.status(id); st.CaseID != id {
		t.Fatalf("owner reads %+v", st)
	}
	code, otherID := second.create(inn, 500_000, idem)
	if code != http.StatusCreated || otherID == id {
		t.Fatalf("the same key of another tenant: %d %s (first %s)", code, otherID, id)
	}
	// Expired or revoked keys are refused.
	keys := api.Keys(shared.cfg, shared.clients)
	list, err := keys.List(context.Background(), "e2e-second")
	if err != nil || len(list) == 0 || list[0].LastUsedAt == 0 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if found, err := keys.Revoke(context.Background(), list[0].KeyID); err != nil || !found {
		t.Fatalf("revoke: %v %v", found, err)
	}
	if code, _ := second.do("GET", "/v1/refunds/"+otherID, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d", code)
	}
	// Creates reuse a principal read within api.CreateKeyRevocationBound (the key above has
	// just created a case): once that bound has passed, a create with the revoked key is
	// refused, and nothing is started.
	time.Sleep(api.CreateKeyRevocationBound)
	if code, id := second.create(inn, 500_000, idem+"-after-revoke"); code != http.StatusUnauthorized {
		t.Fatalf("create with a key revoked %s ago: %d %s", api.CreateKeyRevocationBound, code, id)
	}
}
