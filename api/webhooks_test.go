package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/seal"
	"github.com/taxflow/taxflow/internal/webhooks"
	"github.com/taxflow/taxflow/workflows"
)

// hookTemporal records workflow starts and signals.
type hookTemporal struct {
	client.Client
	mu      sync.Mutex
	started map[string]int
	signals []string
	inputs  []any
}

func (f *hookTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started[o.ID]++
	f.inputs = append(f.inputs, args...)
	return nil, nil
}

func (f *hookTemporal) SignalWorkflow(_ context.Context, id, _, name string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, id+" "+name)
	return nil
}

type hookResolver map[string]string

func (r hookResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := r[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

type hookEnv struct {
	s   *Server
	h   http.Handler
	st  *webhooks.MemoryStore
	tmp *hookTemporal
	log *bytes.Buffer
}

func newHookEnv(t *testing.T) *hookEnv {
	t.Helper()
	s, _ := tenantServer(t)
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c, _ := seal.New(k)
	st := webhooks.NewMemoryStore()
	tmp := &hookTemporal{started: map[string]int{}}
	var log bytes.Buffer
	s.Log = zerolog.New(&log)
	s.Temporal = tmp
	s.Webhooks = WebhookConfig{Store: st, Sealer: webhooks.KeySealer{S: c}, Policy: contract.DefaultWebhookPolicy(),
		Resolver: hookResolver{"hooks.alpha.example": "93.184.216.34", "internal.alpha.example": "10.0.0.8", "localhost": "127.0.0.1"}}
	return &hookEnv{s: s, h: s.Handler(), st: st, tmp: tmp, log: &log}
}

func (e *hookEnv) create(t *testing.T, key, idem, body string) (WebhookView, int, string) {
	t.Helper()
	rec := do(e.h, "POST", "/v1/webhooks", key, body, "Idempotency-Key", idem, "Content-Type", "application/json")
	var v WebhookView
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	return v, rec.Code, rec.Body.String()
}

const goodHook = `{"url":"https://hooks.alpha.example/taxflow","event_types":["refund.paid","identity.verified"]}`

func TestWebhookRegistrationRefusesBadInputAndStoresNothing(t *testing.T) {
	e := newHookEnv(t)
	for _, c := range []struct{ body, field string }{
		{`{"url":"http://hooks.alpha.example/x","event_types":["*"]}`, "url"},
		{`{"url":"https://internal.alpha.example/x","event_types":["*"]}`, "url"},
		{`{"url":"https://10.0.0.1/x","event_types":["*"]}`, "url"},
		{`{"url":"https://169.254.169.254/x","event_types":["*"]}`, "url"},
		{`{"url":"http://localhost:8080/x","event_types":["*"]}`, "url"},
		{`{"url":"https://u:p@hooks.alpha.example/x","event_types":["*"]}`, "url"},
		{`{"url":"not a url","event_types":["*"]}`, "url"},
		{`{"url":"https://hooks.alpha.example/x","event_types":[]}`, "event_types"},
		{`{"url":"https://hooks.alpha.example/x","event_types":["refund.teleported"]}`, "event_types[0]"},
		{`{"url":"https://hooks.alpha.example/x","event_types":["refund.paid","refund.paid"]}`, "event_types[1]"},
	} {
		_, code, body := e.create(t, "alpha-integrator", "k-"+c.body, c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.body, code, body)
		}
	}
	// A malformed URL and a bad event type are named in one answer.
	if _, code, body := e.create(t, "alpha-integrator", "k-both", `{"url":"https://u:p@hooks.alpha.example/x","event_types":["refund.teleported"]}`); code != http.StatusBadRequest ||
		!strings.Contains(body, `"field":"url"`) || !strings.Contains(body, `"field":"event_types[0]"`) {
		t.Errorf("both fields wrong: %d %s", code, body)
	}
	if es, _ := e.st.Endpoints(context.Background(), ""); len(es) != 0 || len(e.tmp.started) != 0 {
		t.Fatalf("refused registrations stored %d endpoints, started %d workflows", len(es), len(e.tmp.started))
	}
	if _, code, body := e.create(t, "alpha-integrator", "", goodHook); code != http.StatusBadRequest || !strings.Contains(body, "idempotency_key_required") {
		t.Fatalf("no Idempotency-Key: %d %s", code, body)
	}
}

func TestWebhookLocalStackAllowsLoopbackHTTPOnly(t *testing.T) {
	e := newHookEnv(t)
	e.s.Webhooks.Policy.AllowLoopback = true
	if _, code, body := e.create(t, "alpha-integrator", "a", `{"url":"http://127.0.0.1:9000/hook","event_types":["*"]}`); code != http.StatusCreated {
		t.Fatalf("loopback in the local stack: %d %s", code, body)
	}
	if _, code, _ := e.create(t, "alpha-integrator", "b", `{"url":"https://internal.alpha.example/x","event_types":["*"]}`); code != http.StatusBadRequest {
		t.Fatalf("a private address in the local stack: %d", code)
	}
}

// The secret is in the registration's answer only: never in GET, the list, the store in
// clear text, the workflow's input, or the log.
func TestWebhookSecretShownOnce(t *testing.T) {
	e := newHookEnv(t)
	v, code, body := e.create(t, "alpha-integrator", "k1", goodHook)
	if code != http.StatusCreated || !strings.HasPrefix(v.Secret, "whsec_") || v.Status != "enabled" {
		t.Fatalf("create: %d %s", code, body)
	}
	if wh, err := webhooks.NewSecret(); err != nil || len(wh) != len(v.Secret) {
		t.Fatalf("secret format: %q", v.Secret)
	}
	raw := strings.TrimPrefix(v.Secret, "whsec_")
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/" + v.ID, "/v1/webhooks/" + v.ID + "/deliveries"} {
		rec := do(e.h, "GET", path, "alpha-integrator", "")
		if rec.Code != 200 || strings.Contains(rec.Body.String(), raw) || strings.Contains(rec.Body.String(), `"secret"`) {
			t.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	stored, _, _ := e.st.GetEndpoint(context.Background(), v.ID)
	if strings.Contains(stored.Secret, raw) || stored.Secret == "" {
		t.Error("the secret is stored in clear text")
	}
	if in := fmt.Sprintf("%+v", e.tmp.inputs); strings.Contains(in, raw) || strings.Contains(in, "hooks.alpha.example") {
		t.Errorf("workflow input carries the secret or the URL: %s", in)
	}
	if e.tmp.started[workflows.WebhookID(v.ID)] != 1 {
		t.Errorf("workflow starts %v", e.tmp.started)
	}
	if strings.Contains(e.log.String(), raw) {
		t.Error("the secret is in the log")
	}
	// Rotation: a new secret, once; the view says until when the old one signs.
	rec := do(e.h, "POST", "/v1/webhooks/"+v.ID+"/rotate-secret", "alpha-integrator", "")
	var rot WebhookView
	_ = json.Unmarshal(rec.Body.Bytes(), &rot)
	if rec.Code != 200 || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == v.Secret || rot.PreviousSecretExpiresAt == "" {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(e.log.String(), strings.TrimPrefix(rot.Secret, "whsec_")) {
		t.Error("the rotated secret is in the log")
	}
}

// The same Idempotency-Key and body answer the same endpoint (secret included); another
// body with that key is 422; one workflow whatever the retries.
func TestWebhookRegistrationIdempotent(t *testing.T) {
	e := newHookEnv(t)
	a, c1, _ := e.create(t, "alpha-integrator", "same", goodHook)
	b, c2, _ := e.create(t, "alpha-integrator", "same", goodHook)
	if c1 != 201 || c2 != 201 || a.ID != b.ID || a.Secret != b.Secret {
		t.Fatalf("retry: %d %d %s %s", c1, c2, a.ID, b.ID)
	}
	if _, code, _ := e.create(t, "alpha-integrator", "same", `{"url":"https://hooks.alpha.example/other","event_types":["*"]}`); code != 422 {
		t.Fatalf("same key, other body: %d", code)
	}
	// Another tenant with the same key makes its own endpoint.
	if c, code, _ := e.create(t, "beta-integrator", "same", goodHook); code != 201 || c.ID == a.ID {
		t.Fatalf("beta: %d %s", code, c.ID)
	}
	if es, _ := e.st.Endpoints(context.Background(), "alpha"); len(es) != 1 {
		t.Fatalf("alpha has %d endpoints", len(es))
	}
}

func TestWebhookLimitPerTenant(t *testing.T) {
	e := newHookEnv(t)
	for i := range webhooks.MaxPerTenant {
		if _, code, body := e.create(t, "alpha-integrator", fmt.Sprint(i), goodHook); code != 201 {
			t.Fatalf("endpoint %d: %d %s", i, code, body)
		}
	}
	_, code, body := e.create(t, "alpha-integrator", "one-too-many", goodHook)
	if code != 400 || !strings.Contains(body, "at most 10") {
		t.Fatalf("the 11th: %d %s", code, body)
	}
	list := do(e.h, "GET", "/v1/webhooks", "alpha-integrator", "")
	var l WebhookList
	_ = json.Unmarshal(list.Body.Bytes(), &l)
	if len(l.Endpoints) != 10 || l.Limit != 10 {
		t.Fatalf("list: %s", list.Body)
	}
	// Deleting one makes room.
	do(e.h, "DELETE", "/v1/webhooks/"+l.Endpoints[0].ID, "alpha-integrator", "")
	if _, code, _ := e.create(t, "alpha-integrator", "after-delete", goodHook); code != 201 {
		t.Fatalf("after a delete: %d", code)
	}
}

// Another tenant's endpoint id is 404 on every route, exactly as a missing one.
func TestWebhookOfAnotherTenantIs404Everywhere(t *testing.T) {
	e := newHookEnv(t)
	v, _, _ := e.create(t, "alpha-integrator", "k", goodHook)
	e.st.Append("alpha", events.Event{ID: "refund-x/1", Type: "refund.paid", CaseID: "refund-x", Seq: 1})
	missing := "wh_" + strings.Repeat("0", 32)
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/webhooks/%s"}, {"DELETE", "/v1/webhooks/%s"}, {"POST", "/v1/webhooks/%s/rotate-secret"},
		{"POST", "/v1/webhooks/%s/enable"}, {"GET", "/v1/webhooks/%s/deliveries"}, {"POST", "/v1/webhooks/%s/deliveries/1/retry"},
	} {
		other := do(e.h, r.method, fmt.Sprintf(r.path, v.ID), "beta-integrator", "")
		none := do(e.h, r.method, fmt.Sprintf(r.path, missing), "beta-integrator", "")
		if other.Code != 404 || other.Body.String() != none.Body.String() {
			t.Errorf("%s %s: %d %s; missing: %d %s", r.method, r.path, other.Code, other.Body, none.Code, none.Body)
		}
	}
	list := do(e.h, "GET", "/v1/webhooks", "beta-integrator", "")
	if strings.Contains(list.Body.String(), v.ID) {
		t.Fatal("beta's list shows alpha's endpoint")
	}
	if got, _, _ := e.st.GetEndpoint(context.Background(), v.ID); got.Status != webhooks.StatusEnabled || got.Secret == "" {
		t.Fatal("beta's requests changed alpha's endpoint")
	}
}

func TestWebhookDeliveriesListAndRetry(t *testing.T) {
	e := newHookEnv(t)
	v, _, _ := e.create(t, "alpha-integrator", "k", goodHook)
	ctx := context.Background()
	ep, _, _ := e.st.GetEndpoint(ctx, v.ID)
	var ds []webhooks.Delivery
	for i := int64(1); i <= 3; i++ {
		ds = append(ds, webhooks.Delivery{EndpointID: v.ID, Pos: i, Event: events.Event{ID: fmt.Sprintf("refund-x/%d", i), Type: "refund.paid", CaseID: "refund-x", Seq: i},
			Status: []string{webhooks.Delivered, webhooks.Failed, webhooks.Pending}[i-1], Rev: webhooks.NewRev(),
			Attempts: []webhooks.Attempt{{At: time.Now(), Code: 500, DurationMS: 12, Error: "status"}}, NextAttemptAt: time.Now().Add(time.Minute)})
	}
	next := ep
	next.Floor, next.Cursor, next.Rev = 2, 3, webhooks.NewRev()
	if err := e.st.Ingest(ctx, next, ep.Rev, ds); err != nil {
		t.Fatal(err)
	}
	rec := do(e.h, "GET", "/v1/webhooks/"+v.ID+"/deliveries?limit=2", "alpha-integrator", "")
	var page DeliveryPage
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if rec.Code != 200 || len(page.Deliveries) != 2 || page.Next == "" || page.Deliveries[1].Status != "failed" || page.Deliveries[1].LastStatusCode != 500 {
		t.Fatalf("page 1: %d %s", rec.Code, rec.Body)
	}
	rec = do(e.h, "GET", "/v1/webhooks/"+v.ID+"/deliveries?limit=2&cursor="+page.Next, "alpha-integrator", "")
	page = DeliveryPage{}
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if len(page.Deliveries) != 1 || page.Next != "" || page.Deliveries[0].Status != "pending" || page.Deliveries[0].NextAttemptAt == "" {
		t.Fatalf("page 2: %s", rec.Body)
	}
	if rec := do(e.h, "GET", "/v1/webhooks/"+v.ID+"/deliveries?cursor=zzz", "alpha-integrator", ""); rec.Code != 400 {
		t.Fatalf("bad cursor: %d", rec.Code)
	}
	for _, c := range []struct {
		pos  string
		want int
	}{{"1", 409}, {"3", 409}, {"9", 404}, {"x", 404}, {"2", 202}, {"2", 409}} {
		if rec := do(e.h, "POST", "/v1/webhooks/"+v.ID+"/deliveries/"+c.pos+"/retry", "alpha-integrator", ""); rec.Code != c.want {
			t.Errorf("retry %s: %d %s", c.pos, rec.Code, rec.Body)
		}
	}
	d, _, _ := e.st.GetDelivery(ctx, v.ID, 2)
	ep, _, _ = e.st.GetEndpoint(ctx, v.ID)
	if d.Status != webhooks.Pending || ep.Floor != 1 || ep.Retries != 1 {
		t.Fatalf("after retry: delivery %s, floor %d, retries %d", d.Status, ep.Floor, ep.Retries)
	}
	if !strings.Contains(strings.Join(e.tmp.signals, ","), workflows.WebhookSignalRetry) {
		t.Fatalf("signals %v", e.tmp.signals)
	}
}

func TestWebhookDeleteEndsAndEnableWakes(t *testing.T) {
	e := newHookEnv(t)
	v, _, _ := e.create(t, "alpha-integrator", "k", goodHook)
	ctx := context.Background()
	if _, _, err := webhooks.UpdateEndpoint(ctx, e.st, v.ID, func(x *webhooks.Endpoint) bool {
		x.Status, x.FailingSince, x.DisabledAt = webhooks.StatusDisabled, time.Now().Add(-25*time.Hour).Unix(), time.Now().Unix()
		return true
	}); err != nil {
		t.Fatal(err)
	}
	rec := do(e.h, "POST", "/v1/webhooks/"+v.ID+"/enable", "alpha-integrator", "")
	if got, _, _ := e.st.GetEndpoint(ctx, v.ID); rec.Code != 200 || got.Status != webhooks.StatusEnabled || got.FailingSince != 0 {
		t.Fatalf("enable: %d %s", rec.Code, rec.Body)
	}
	if rec := do(e.h, "DELETE", "/v1/webhooks/"+v.ID, "alpha-integrator", ""); rec.Code != 204 {
		t.Fatalf("delete: %d", rec.Code)
	}
	if rec := do(e.h, "GET", "/v1/webhooks/"+v.ID, "alpha-integrator", ""); rec.Code != 404 {
		t.Fatalf("GET after delete: %d", rec.Code)
	}
	if got, _, _ := e.st.GetEndpoint(ctx, v.ID); got.Status != webhooks.StatusDeleted || got.Secret != "" {
		t.Fatalf("a deleted endpoint keeps its secret (status %s)", got.Status)
	}
	want := []string{workflows.WebhookID(v.ID) + " retry", workflows.WebhookID(v.ID) + " stop"}
	if strings.Join(e.tmp.signals, ",") != strings.Join(want, ",") {
		t.Fatalf("signals %v", e.tmp.signals)
	}
}

func TestEventTypesCoverEveryStatus(t *testing.T) {
	types := EventTypes()
	for _, want := range []string{"refund.paid", "identity.verified", "declaration.clarification_required", "account.active", "batch.done"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("%s missing", want)
		}
	}
	if n := len(workflows.RefundLabels) + len(workflows.IdentityLabels) + len(workflows.DeclarationLabels) + len(workflows.AccountLabels) + 5; len(types) != n {
		t.Fatalf("%d types, want %d", len(types), n)
	}
	for _, typ := range types {
		if !strings.Contains(string(OpenAPI), typ) {
			t.Errorf("%s is not in the API description", typ)
		}
	}
}

// Operators see the failing and disabled endpoints of the tenants they act for: a bound
// operator its tenant's only, an unbound one every tenant's; a reviewer none.
func TestConsoleWebhooksShowsFailingEndpointsOfOwnTenants(t *testing.T) {
	s, st, _, client := newConsole(t)
	ctx := context.Background()
	hooks := webhooks.NewMemoryStore()
	s.Webhooks.Store = hooks
	for _, e := range []webhooks.Endpoint{
		{EndpointID: "wh_a1", Tenant: "alpha", URL: "https://alpha-fail.example/x?token=secret", Status: webhooks.StatusDisabled, DisabledAt: 1, FailingSince: 1, DisabledReason: "every delivery attempt failed", CreatedAt: "1"},
		{EndpointID: "wh_a2", Tenant: "alpha", URL: "https://alpha-ok.example/x", Status: webhooks.StatusEnabled, CreatedAt: "2"},
		{EndpointID: "wh_b1", Tenant: "beta", URL: "https://beta-fail.example/x", Status: webhooks.StatusEnabled, FailingSince: 100, CreatedAt: "3"},
	} {
		if err := hooks.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ login, role, tenant string }{{"rita", RoleReviewer, ""}, {"oleg", RoleOperator, "beta"}, {"olga", RoleOperator, ""}} {
		if _, err := st.Create(ctx, c.login, c.role, c.tenant, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	page := func(login string) (int, string) {
		c := client()
		c.signIn(login, testPassword)
		rec := c.do("GET", "/console/webhooks", nil)
		return rec.Code, rec.Body.String()
	}
	if code, _ := page("rita"); code != http.StatusForbidden {
		t.Fatalf("reviewer: %d", code)
	}
	code, body := page("oleg")
	if code != 200 || !strings.Contains(body, "beta-fail.example") || strings.Contains(body, "alpha-") {
		t.Fatalf("operator bound to beta: %d %s", code, body)
	}
	code, body = page("olga")
	if code != 200 || !strings.Contains(body, "beta-fail.example") || !strings.Contains(body, "alpha-fail.example") || strings.Contains(body, "alpha-ok") ||
		strings.Contains(body, "token=secret") {
		t.Fatalf("unbound operator: %d %s", code, body)
	}
}

// A rotated secret is shown once, to the rotation's caller: the registration's retry is
// no longer replayed (it would show the new secret again), and a rotation of an endpoint
// deleted meanwhile writes nothing and answers 404.
func TestWebhookRotatedSecretIsNotReplayed(t *testing.T) {
	e := newHookEnv(t)
	a, code, _ := e.create(t, "alpha-integrator", "k1", goodHook)
	if code != 201 {
		t.Fatalf("register: %d", code)
	}
	rot := do(e.h, "POST", "/v1/webhooks/"+a.ID+"/rotate-secret", "alpha-integrator", "")
	var v WebhookView
	_ = json.Unmarshal(rot.Body.Bytes(), &v)
	if rot.Code != 200 || v.Secret == "" || v.Secret == a.Secret {
		t.Fatalf("rotate: %d %s", rot.Code, rot.Body)
	}
	again, code, body := e.create(t, "alpha-integrator", "k1", goodHook)
	if code != 422 || again.Secret != "" || strings.Contains(body, v.Secret) {
		t.Fatalf("replay after rotation: %d %s", code, body)
	}
	if del := do(e.h, "DELETE", "/v1/webhooks/"+a.ID, "alpha-integrator", ""); del.Code != 204 {
		t.Fatalf("delete: %d", del.Code)
	}
	if rot := do(e.h, "POST", "/v1/webhooks/"+a.ID+"/rotate-secret", "alpha-integrator", ""); rot.Code != 404 || strings.Contains(rot.Body.String(), "whsec_") {
		t.Fatalf("rotate a deleted endpoint: %d %s", rot.Code, rot.Body)
	}
}
