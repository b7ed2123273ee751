//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/store"
)

// The authorization matrix over the real stack, generated from the route table: every
// route × {no key, expired key, revoked key, wrong role, another tenant's key, a key of
// the creating tenant deciding, a staff key bound to another tenant} → the status the
// table's rule gives, and nothing changed in DynamoDB (item counts of the tenancy,
// registry and key tables, the taxpayer's item) or in Temporal (the taxpayer's workflows)
// for any of the refused requests.
func TestAuthorizationMatrixFromTheRouteTable(t *testing.T) {
	ctx := context.Background()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = "e2e-authz-nobody-" + uuid.NewString() // nothing may start; if it did, nothing runs it
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	run := uuid.NewString()[:8]
	tenantA, tenantB := "mx-a-"+run, "mx-b-"+run

	// Keys: valid ones through the key store; an expired one and a tenant's own staff keys
	// (made before staff keys belonged to the tax office) written as records.
	valid := func(p api.Principal) string {
		k, _, err := keys.CreateKey(ctx, p, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("key %+v: %v", p, err)
		}
		return k
	}
	raw := func(p api.Principal, expires time.Time) string {
		k, err := api.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if p.Scopes == nil {
			p.Scopes = api.RoleScopes[p.Role]
		}
		item := map[string]any{"key_hash": api.HashKey(k), "principal": p.ID, "tenant": p.Tenant, "role": p.Role, "scopes": p.Scopes,
			"key_id": "key_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16], "created_at": time.Now().Unix(), "expires_at": expires.Unix()}
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name("apikeys"), "key_hash", item); err != nil {
			t.Fatal(err)
		}
		return k
	}
	integratorB := valid(api.Principal{Tenant: tenantB, Role: api.RoleIntegrator})
	expired := raw(api.Principal{ID: tenantA + "/integrator", Tenant: tenantA, Role: api.RoleIntegrator}, time.Now().Add(-time.Minute))
	revokedKey, revokedID, err := keys.CreateKey(ctx, api.Principal{Tenant: tenantA, Role: api.RoleIntegrator}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if found, err := keys.Revoke(ctx, revokedID); err != nil || !found {
		t.Fatalf("revoke: %v %v", found, err)
	}
	byRole := map[string]string{}   // a key of each role (integrators and the auth system of tenant A; staff of the tax office)
	boundToB := map[string]string{} // staff of the tax office bound to tenant B
	ownOfA := map[string]string{}   // staff keys tenant A holds itself
	for _, role := range []string{api.RoleIntegrator, api.RoleAuthSystem} {
		byRole[role] = valid(api.Principal{Tenant: tenantA, Role: role})
	}
	for _, role := range []string{api.RoleReviewer, api.RoleInspector, api.RoleSpecialist, api.RoleOperator} {
		byRole[role] = valid(api.Principal{Tenant: api.TaxOffice, Role: role, Person: "mx-" + role + "-" + run})
		boundToB[role] = valid(api.Principal{Tenant: api.TaxOffice, BoundTo: tenantB, Role: role, Person: "mx-b-" + role + "-" + run})
		ownOfA[role] = raw(api.Principal{ID: tenantA + "/" + role, Tenant: tenantA, Role: role}, time.Now().Add(time.Hour))
	}

	// Tenant A's objects: a taxpayer whose consent came through A, and a case of each kind.
	inn := newTaxpayer(t, 600_000)
	if _, err := store.SetFields(ctx, shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), map[string]types.AttributeValue{"inn": store.S(inn)},
		map[string]any{"consent": true, "consent_tenant": tenantA, "consent_by": tenantA + "/integrator"}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for prefix, id := range map[string]string{"/v1/refunds/": "refund-" + uuid.NewString(), "/v1/identity-verifications/": "identity-" + uuid.NewString(),
		"/v1/declarations/": "declaration-" + uuid.NewString(), "/v1/batches/": "batch-" + strings.ReplaceAll(uuid.NewString(), "-", "")} {
		ids[prefix] = id
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(api.OwnersTable), "case_id",
			map[string]any{"case_id": id, "tenant": tenantA, "created_by": tenantA + "/integrator", "created_at": time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	path := func(p string) string {
		for prefix, id := range ids {
			if strings.HasPrefix(p, prefix) {
				p = strings.Replace(p, "{id}", id, 1)
			}
		}
		return strings.NewReplacer("{inn}", inn, "{doc}", "statement").Replace(p)
	}

	before := snapshot(t, s, inn)
	type cell struct {
		column, key string
		want        int
	}
	checked := 0
	for _, rt := range api.RouteRules() {
		if rt.Rule == api.RulePublic {
			continue
		}
		holders := rolesWith(rt.Scope)
		staffScope := slices.ContainsFunc(holders, func(r string) bool { return api.Principal{Role: r}.Staff() })
		cells := []cell{{"no key", "", 401}, {"expired key", expired, 401}, {"revoked key", revokedKey, 401}}
		for _, role := range []string{api.RoleIntegrator, api.RoleAuthSystem, api.RoleReviewer, api.RoleInspector, api.RoleSpecialist, api.RoleOperator} {
			if !slices.Contains(holders, role) {
				cells = append(cells, cell{"wrong role " + role, byRole[role], 403})
				break
			}
		}
		object := rt.Rule == api.RuleCase || rt.Rule == api.RuleTaxpayer || (rt.Rule == api.RuleStaff && strings.Contains(rt.Path, "{"))
		if object && slices.Contains(holders, api.RoleIntegrator) {
			cells = append(cells, cell{"another tenant's key", integratorB, 404})
		}
		if rt.Decides {
			for _, role := range holders {
				if own, ok := ownOfA[role]; ok {
					cells = append(cells, cell{"a key of the creating tenant deciding (" + role + ")", own, 403})
					break
				}
			}
		}
		if object && staffScope {
			for _, role := range holders {
				if b, ok := boundToB[role]; ok {
					cells = append(cells, cell{"staff key bound to another tenant (" + role + ")", b, 404})
					break
				}
			}
		}
		for _, c := range cells {
			var body []byte
			if rt.Method == "POST" {
				body = []byte(`{}`)
			}
			code := rawDo(t, base, c.key, rt.Method, path(rt.Path), body)
			if code != c.want {
				t.Errorf("%s %s × %s: %d, want %d", rt.Method, rt.Path, c.column, code, c.want)
			}
			checked++
		}
	}
	after := snapshot(t, s, inn)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("refused requests changed the store or Temporal:\nbefore %+v\nafter  %+v", before, after)
	}
	t.Logf("%d refused requests over %d routes; store and Temporal unchanged (items %v, the taxpayer's workflows %d)", checked, len(api.RouteRules()), after.Items, after.Workflows)
}

func rolesWith(scope string) []string {
	var out []string
	for role, scopes := range api.RoleScopes {
		if slices.Contains(scopes, scope) {
			out = append(out, role)
		}
	}
	slices.Sort(out)
	return out
}

// rawDo sends one request with the key (none when empty); it answers the status only,
// and does not check the contract (a refusal's body is checked by the unit tests).
func rawDo(t *testing.T, base, key, method, path string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(string(body)))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Idempotency-Key", uuid.NewString())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode
}

// state is what a refused request must leave as it was.
type state struct {
	Items     map[string]int32
	Taxpayer  map[string]string
	Workflows int64
}

// snapshot counts the items of the tables a request could write, reads the taxpayer's
// registry item, and counts the taxpayer's workflows in Temporal (by their subject; the
// count is read twice a second apart and must agree, since visibility lags).
func snapshot(t *testing.T, s *api.Server, inn string) state {
	t.Helper()
	ctx := context.Background()
	st := state{Items: map[string]int32{}, Taxpayer: map[string]string{}}
	for _, table := range []string{api.OwnersTable, api.IdempotencyTable, "apikeys", taxpayer.Table, audit.Table} {
		name := shared.cfg.Name(table)
		var n int32
		var start map[string]types.AttributeValue
		for {
			out, err := shared.clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(name), Select: types.SelectCount, ExclusiveStartKey: start})
			if err != nil {
				t.Fatalf("count %s: %v", name, err)
			}
			n += out.Count
			if start = out.LastEvaluatedKey; len(start) == 0 {
				break
			}
		}
		st.Items[table] = n
	}
	got, err := shared.clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(shared.cfg.Name(taxpayer.Table)),
		Key: map[string]types.AttributeValue{"inn": store.S(inn)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var item map[string]any
	if err := store.Unmarshal(got.Item, &item); err != nil {
		t.Fatal(err)
	}
	for k, v := range item {
		st.Taxpayer[k] = fmt.Sprintf("%v", v)
	}
	query := "TaxflowSubject = '" + s.Subject(inn) + "'"
	count := func() int64 {
		res, err := shared.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("count workflows: %v", err)
		}
		return res.Count
	}
	for {
		n := count()
		time.Sleep(time.Second)
		if m := count(); m == n {
			st.Workflows = n
			return st
		}
	}
}
