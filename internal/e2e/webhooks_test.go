//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/webhooks"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// receiver is a real HTTP receiver on loopback: it verifies each delivery with the
// library's own verifier and records what it got; answer decides the status per attempt.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []received // every attempt that verified
	bad    int        // attempts that did not verify
	answer func(id string, attempt int) int
	tries  map[string]int
}

type received struct {
	ID     string
	Status int
	Body   webhooks.Body
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, tries: map[string]int{}, answer: func(string, int) int { return 200 }}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		wh, err := standardwebhooks.NewWebhook(r.secret)
		if err == nil {
			err = wh.Verify(body, req.Header)
		}
		if err != nil {
			r.bad++
			r.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		id := req.Header.Get("webhook-id")
		r.tries[id]++
		status := r.answer(id, r.tries[id])
		var b webhooks.Body
		_ = json.Unmarshal(body, &b)
		r.got = append(r.got, received{ID: id, Status: status, Body: b})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// delivered lists the ids answered 2xx, in arrival order.
func (r *receiver) delivered() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []received
	for _, g := range r.got {
		if g.Status < 300 {
			out = append(out, g)
		}
	}
	return out
}

// hookStack is an API with webhooks on the local stack, a worker of its own, and a key
// of a fresh tenant.
type hookStack struct {
	s      *api.Server
	client *apiClient
	tenant string
	queue  string
	w      worker.Worker
	stop   func() // stops the current worker (once)
}

func startHookStack(t *testing.T, inv invoker.Invoker) *hookStack {
	t.Helper()
	queue := "e2e-hooks-" + uuid.NewString()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	// Short backoff (TAXFLOW_WEBHOOK_BACKOFF_BASE) and a short long poll, so retries come
	// within the test; http to loopback as the local stack allows.
	s.Webhooks.Policy.BackoffBase, s.Webhooks.Policy.BackoffCap = 200*time.Millisecond, time.Second
	s.Webhooks.Policy.PollFor = 3 * time.Second
	s.Webhooks.Policy.AllowLoopback = true
	url := newServer(t, s)
	tenant := "e2e-hooks-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	key, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(), api.Principal{ID: tenant, Tenant: tenant, Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeWebhooksRead, api.ScopeWebhooksWrite}})
	if err != nil {
		t.Fatal(err)
	}
	h := &hookStack{s: s, client: &apiClient{t, url + "|" + key}, tenant: tenant, queue: queue}
	h.startWorker(t, inv)
	return h
}

func (h *hookStack) startWorker(t *testing.T, inv invoker.Invoker) {
	t.Helper()
	h.w = worker.New(shared.temporal, h.queue, buildinfo.WorkerOptions())
	workflows.Register(h.w)
	h.w.RegisterActivity(&activities.Activities{Invoker: inv})
	if err := h.w.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	w := h.w
	h.stop = func() { once.Do(w.Stop) }
	t.Cleanup(h.stop)
}

func (h *hookStack) register(t *testing.T, r *receiver, types ...string) api.WebhookView {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"url": r.srv.URL + "/hook", "event_types": types})
	code, out := h.client.do("POST", "/v1/webhooks", body, "Idempotency-Key", uuid.NewString())
	var v api.WebhookView
	if err := json.Unmarshal(out, &v); err != nil || code != http.StatusCreated || v.Secret == "" {
		t.Fatalf("register: %d %s", code, out)
	}
	r.mu.Lock()
	r.secret = v.Secret
	r.mu.Unlock()
	t.Cleanup(func() { h.client.do("DELETE", "/v1/webhooks/"+v.ID, nil) })
	return v
}

// feed appends events to the tenant's feed as the relay would: the counter at pos 0,
// entries at the next positions.
func (h *hookStack) feed(t *testing.T, evs ...events.Event) {
	t.Helper()
	ctx := context.Background()
	table := shared.cfg.Name(events.FeedTable)
	var last int64
	res, err := shared.clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"tenant": store.S(h.tenant), "pos": &types.AttributeValueMemberN{Value: "0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := res.Item["last"].(*types.AttributeValueMemberN); ok {
		_, _ = fmt.Sscan(n.Value, &last)
	}
	for _, ev := range evs {
		last++
		item, err := store.Marshal(events.FeedEntry{Event: ev, Tenant: h.tenant, Pos: last, RelayedAt: time.Now().UTC(), ExpiresAt: time.Now().Add(events.Keep).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := shared.clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shared.clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"tenant": store.S(h.tenant), "pos": &types.AttributeValueMemberN{Value: "0"}, "last": &types.AttributeValueMemberN{Value: fmt.Sprint(last)}}}); err != nil {
		t.Fatal(err)
	}
}

func hookEvent(caseID string, seq int64, status string) events.Event {
	return events.Event{ID: events.ID(caseID, seq), Type: events.Type("refund", status), CaseID: caseID, Process: "refund", Status: status,
		StatusLabel: workflows.RefundLabels[status], Seq: seq, OccurredAt: time.Now().UTC().Truncate(time.Millisecond)}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkOrder: each id arrives once among the deliveries, and each case's in seq order.
func checkOnceInOrder(t *testing.T, got []received, want int) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, g := range got {
		if seen[g.ID] {
			t.Errorf("%s delivered twice", g.ID)
		}
		seen[g.ID] = true
		if g.Body.Data.Seq <= last[g.Body.Data.CaseID] {
			t.Errorf("%s after seq %d of its case", g.ID, last[g.Body.Data.CaseID])
		}
		last[g.Body.Data.CaseID] = g.Body.Data.Seq
		if g.Body.Data.ID != g.ID || g.Body.Type != g.Body.Data.Type {
			t.Errorf("body %+v under webhook-id %s", g.Body, g.ID)
		}
	}
	if len(seen) != want {
		t.Errorf("%d events delivered, want %d", len(seen), want)
	}
}

// Feed entries of many cases reach a real receiver once each, signed (the library's
// Verify), each case's in order; another tenant's entries never arrive.
func TestWebhooksDeliverTheFeedOnceInCaseOrder(t *testing.T) {
	h := startHookStack(t, lambdaInvoker())
	r := newReceiver(t)
	v := h.register(t, r, "*")
	var evs []events.Event
	for seq := int64(1); seq <= 5; seq++ {
		for c := 0; c < 8; c++ {
			evs = append(evs, hookEvent(fmt.Sprintf("refund-%s-%d", v.ID[3:11], c), seq, workflows.RefundInReview))
		}
	}
	h.feed(t, evs...)
	other := &hookStack{tenant: "e2e-other-" + uuid.NewString()[:8]}
	other.feed(t, hookEvent("refund-other", 1, workflows.RefundPaid))
	waitFor(t, 90*time.Second, "every event delivered", func() bool { return len(r.delivered()) >= len(evs) })
	time.Sleep(2 * time.Second) // nothing more may come
	checkOnceInOrder(t, r.delivered(), len(evs))
	if r.bad != 0 {
		t.Fatalf("%d deliveries did not verify", r.bad)
	}
	code, out := h.client.do("GET", "/v1/webhooks/"+v.ID+"/deliveries?limit=100", nil)
	var page api.DeliveryPage
	_ = json.Unmarshal(out, &page)
	if code != 200 || len(page.Deliveries) != len(evs) || page.Deliveries[0].Status != "delivered" || page.Deliveries[0].LastStatusCode != 200 {
		t.Fatalf("deliveries: %d %s", code, out)
	}
}

// The receiver answers 500 three times and then 200: the event arrives on the fourth
// attempt, with the same webhook-id every time; the attempts are visible.
func TestWebhookFourthAttemptSameID(t *testing.T) {
	h := startHookStack(t, inProcessInvoker())
	r := newReceiver(t)
	r.answer = func(_ string, attempt int) int {
		if attempt <= 3 {
			return 500
		}
		return 200
	}
	v := h.register(t, r, "refund.paid")
	e := hookEvent("refund-"+uuid.NewString(), 1, workflows.RefundPaid)
	h.feed(t, hookEvent("refund-skipped", 1, workflows.RefundInReview), e) // not a type it wants
	waitFor(t, 60*time.Second, "the fourth attempt", func() bool { return len(r.delivered()) == 1 })
	r.mu.Lock()
	got := append([]received(nil), r.got...)
	r.mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4", len(got))
	}
	for _, g := range got {
		if g.ID != e.ID {
			t.Fatalf("attempt with webhook-id %s, want %s", g.ID, e.ID)
		}
	}
	_, out := h.client.do("GET", "/v1/webhooks/"+v.ID+"/deliveries", nil)
	var page api.DeliveryPage
	_ = json.Unmarshal(out, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].Attempts != 4 || page.Deliveries[0].Status != "delivered" {
		t.Fatalf("deliveries %s", out)
	}
}

// A receiver down for the whole test: its deliveries stay pending (retried), never lost,
// and the feed keeps the events.
func TestWebhookReceiverDownLeavesDeliveriesPending(t *testing.T) {
	h := startHookStack(t, inProcessInvoker())
	r := newReceiver(t)
	v := h.register(t, r, "*")
	r.srv.Close() // down from the start
	evs := []events.Event{hookEvent("refund-down", 1, workflows.RefundReceived), hookEvent("refund-down", 2, workflows.RefundInReview)}
	h.feed(t, evs...)
	var page api.DeliveryPage
	waitFor(t, 60*time.Second, "attempts recorded", func() bool {
		_, out := h.client.do("GET", "/v1/webhooks/"+v.ID+"/deliveries", nil)
		page = api.DeliveryPage{}
		_ = json.Unmarshal(out, &page)
		return len(page.Deliveries) == 2 && page.Deliveries[0].Attempts >= 3
	})
	first, second := page.Deliveries[0], page.Deliveries[1]
	if first.Status != "pending" || first.LastError != "connect" || first.NextAttemptAt == "" || second.Status != "pending" || second.Attempts != 0 {
		t.Fatalf("deliveries %+v", page.Deliveries)
	}
	entries, err := h.s.Webhooks.Store.Feed(context.Background(), h.tenant, 0, 10)
	if err != nil || len(entries) != 2 {
		t.Fatalf("feed: %d entries, %v", len(entries), err)
	}
}

// The worker stopped while deliveries are in flight (its rounds cancelled: what they
// sent and did not record is sent again): a new worker delivers every event, duplicates
// only under the same webhook-id, each case in order.
func TestWebhookWorkerKilledLosesNothing(t *testing.T) {
	h := startHookStack(t, inProcessInvoker())
	r := newReceiver(t)
	slow := make(chan struct{})
	var once sync.Once
	r.answer = func(_ string, _ int) int {
		once.Do(func() { close(slow) })
		time.Sleep(300 * time.Millisecond) // sends in flight when the worker dies
		return 200
	}
	h.register(t, r, "*")
	var evs []events.Event
	for seq := int64(1); seq <= 4; seq++ {
		for c := 0; c < 6; c++ {
			evs = append(evs, hookEvent(fmt.Sprintf("refund-kill-%d-%s", c, h.tenant[10:16]), seq, workflows.RefundInReview))
		}
	}
	h.feed(t, evs...)
	<-slow
	h.stop() // the worker dies mid-round
	time.Sleep(time.Second)
	h.startWorker(t, inProcessInvoker())
	waitFor(t, 120*time.Second, "every event after the restart", func() bool {
		ids := map[string]bool{}
		for _, g := range r.delivered() {
			ids[g.ID] = true
		}
		return len(ids) == len(evs)
	})
	// Duplicates are allowed (at least once) but only as the same event, in case order.
	last := map[string]int64{}
	for _, g := range r.delivered() {
		if g.Body.Data.ID != g.ID {
			t.Fatalf("webhook-id %s carries event %s", g.ID, g.Body.Data.ID)
		}
		if g.Body.Data.Seq < last[g.Body.Data.CaseID] {
			t.Fatalf("%s after seq %d of its case", g.ID, last[g.Body.Data.CaseID])
		}
		last[g.Body.Data.CaseID] = g.Body.Data.Seq
	}
}

// recordWebhookDisabled brings an endpoint's workflow to its waiting state (disabled
// after failing, waiting for enable) and captures its history.
func recordWebhookDisabled(t *testing.T) {
	h := startHookStack(t, lambdaInvoker())
	h.s.Webhooks.Policy.DisableAfter = time.Second
	r := newReceiver(t)
	r.answer = func(string, int) int { return 500 }
	v := h.register(t, r, "*")
	h.feed(t, hookEvent("refund-rec-"+uuid.NewString()[:8], 1, workflows.RefundReceived))
	id := workflows.WebhookID(v.ID)
	waitFor(t, 60*time.Second, "the workflow waiting on the disabled endpoint", func() bool {
		val, err := shared.temporal.QueryWorkflow(context.Background(), id, "", workflows.WebhookQueryStatus)
		var st workflows.WebhookState
		return err == nil && val.Get(&st) == nil && st.Status == "disabled"
	})
	_, out := h.client.do("GET", "/v1/webhooks/"+v.ID, nil)
	if !strings.Contains(string(out), `"status":"disabled"`) {
		t.Fatalf("endpoint %s", out)
	}
	capture(t, "webhook-disabled", id)
}

// TestRecordWebhookHistory records the webhook workflow's waiting state alone
// (TestRecordWaitingStateHistories records it with every other).
func TestRecordWebhookHistory(t *testing.T) { recordWebhookDisabled(t) }
