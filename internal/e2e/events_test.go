//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/workflows"
)

// startRelay runs an events relay job on the test's queue (the real function on the
// Lambda host), under an id of its own: relays are safe to run side by side, so it does
// not matter what else relays on this stack.
func startRelay(t *testing.T, queue string) {
	t.Helper()
	id := "e2e-event-relay-" + uuid.NewString()
	_, err := shared.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue},
		workflows.EventRelay, workflows.EventRelayInput{WaitMillis: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.temporal.TerminateWorkflow(context.Background(), id, "", "test over") })
}

// feed reads a tenant's whole feed from the start through the API, page by page.
func (c *apiClient) feed() []events.Event {
	c.t.Helper()
	var out []events.Event
	after := ""
	for {
		code, body := c.do("GET", "/v1/events?limit=50&after="+url.QueryEscape(after), nil)
		if code != http.StatusOK {
			c.t.Fatalf("feed: %d %s", code, body)
		}
		var p api.EventPage
		if err := json.Unmarshal(body, &p); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, p.Events...)
		if len(p.Events) == 0 {
			return out
		}
		after = p.Next
	}
}

// ofCase is the case's events in feed order.
func ofCase(feed []events.Event, caseID string) []events.Event {
	var out []events.Event
	for _, e := range feed {
		if e.CaseID == caseID {
			out = append(out, e)
		}
	}
	return out
}

// A refund from claim to paid: its events reach its tenant's feed, once each, in seq
// order, one per transition of its record (the projection's versions), with the type and
// Russian label of each status; the other tenant's feed has none of them.
func TestEventsOfARefundReachItsTenantsFeedOnly(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	startRelay(t, queue)
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	key := func(tenant string) *apiClient {
		k, err := keys.Create(context.Background(), api.Principal{Tenant: tenant, Role: api.RoleIntegrator})
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	a, b := key("ev-a-"+suffix), key("ev-b-"+suffix)

	code, id := a.create(newTaxpayer(t, 500_000), 400_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("claim: %d", code)
	}
	if code, out := a.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, out)
	}
	a.waitStatus(id, workflows.RefundPaid)
	rec, _, err := cases.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
	if err != nil || rec.Version < 3 {
		t.Fatalf("projection %+v %v", rec, err)
	}
	got := poll(t, "the refund's events in its tenant's feed", func() []events.Event { return ofCase(a.feed(), id) },
		func(evs []events.Event) bool { return int64(len(evs)) >= rec.Version })
	if int64(len(got)) != rec.Version {
		t.Fatalf("%d events for %d transitions", len(got), rec.Version)
	}
	for i, e := range got {
		seq := int64(i + 1)
		if e.Seq != seq || e.ID != events.ID(id, seq) || e.Process != "refund" || e.Type != "refund."+e.Status ||
			e.StatusLabel != workflows.RefundLabels[e.Status] || e.StatusLabel == "" || e.OccurredAt.IsZero() {
			t.Errorf("event %d: %+v", i, e)
		}
		if i > 0 && e.OccurredAt.Before(got[i-1].OccurredAt) {
			t.Errorf("event %d occurred before the one it follows", i)
		}
	}
	if got[0].Type != "refund.received" || got[len(got)-1].Type != "refund.paid" {
		t.Fatalf("first %s, last %s", got[0].Type, got[len(got)-1].Type)
	}
	t.Logf("%s: %d events: %s … %s", id, len(got), got[0].Type, got[len(got)-1].Type)
	for _, e := range b.feed() {
		if e.CaseID == id {
			t.Fatalf("tenant b's feed holds tenant a's event %s", e.ID)
		}
	}
}

// A burst of transitions across many cases of two tenants, written concurrently by the
// real step writer: each tenant's feed holds each of its cases' events once, in seq order.
func TestEventsBurstKeepsPerCaseOrder(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	startRelay(t, queue)
	ctx := context.Background()
	db := shared.clients.DynamoDB
	h := transition.Handler{DB: db, Journal: shared.cfg.Name(audit.Table), Cases: shared.cfg.Name(cases.Table),
		Outbox: shared.cfg.Name(notify.Table), Events: shared.cfg.Name(events.Table)}
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	tenants := []string{"burst-a-" + suffix, "burst-b-" + suffix}
	const nCases, steps = 40, 10
	owner := map[string]string{}
	var ids []string
	for i := 0; i < nCases; i++ {
		id := "refund-" + uuid.NewString()
		owner[id] = tenants[i%2]
		ids = append(ids, id)
		if _, err := store.PutNew(ctx, db, shared.cfg.Name(api.OwnersTable), "case_id",
			tasks.Owner{CaseID: id, Tenant: owner[id], CreatedBy: owner[id] + "/integrator", CreatedAt: time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	statuses := []string{"received", "in_review", "awaiting_info", "in_review", "approved", "payout_failed", "approved", "paid", "paid", "paid"}
	var wg sync.WaitGroup
	errs := make(chan error, nCases)
	for _, id := range ids {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			for seq := int64(1); seq <= steps; seq++ {
				st := recordStep(id, seq, "", statuses[seq-1])
				st.Case.Label = workflows.RefundLabels[st.Case.Status]
				if _, err := h.Record(ctx, st); err != nil {
					errs <- fmt.Errorf("%s step %d: %w", id, seq, err)
					return
				}
			}
		}(id)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	base := newServer(t, s)
	for _, tenant := range tenants {
		k, err := api.Keys(shared.cfg, shared.clients).Create(ctx, api.Principal{Tenant: tenant, Role: api.RoleIntegrator})
		if err != nil {
			t.Fatal(err)
		}
		c := &apiClient{t, base + "|" + k}
		feed := poll(t, tenant+"'s feed to hold its burst", c.feed, func(f []events.Event) bool { return len(f) >= nCases/2*steps })
		if len(feed) != nCases/2*steps {
			t.Fatalf("%s: %d events, want %d", tenant, len(feed), nCases/2*steps)
		}
		last := map[string]int64{}
		for _, e := range feed {
			if owner[e.CaseID] != tenant {
				t.Fatalf("%s's feed holds %s (of %q)", tenant, e.ID, owner[e.CaseID])
			}
			if e.Seq != last[e.CaseID]+1 {
				t.Fatalf("%s: %s follows seq %d of its case", tenant, e.ID, last[e.CaseID])
			}
			last[e.CaseID] = e.Seq
		}
		t.Logf("%s: %d events of %d cases, each case in order", tenant, len(feed), len(last))
	}
}

// `taxflow worker` starts the one events relay job (workflows.EventRelayID) when it is not
// running, and the job relays: a refund's events reach its tenant's feed through it.
func TestWorkerStartsTheEventRelay(t *testing.T) {
	queue := "e2e-" + uuid.NewString()
	ctx := context.Background()
	// A job left over on another queue would not run here: end it, so the worker starts ours.
	_ = shared.temporal.TerminateWorkflow(ctx, workflows.EventRelayID, "", "e2e: start afresh")
	startWorkerProcess(t, queue)
	desc := poll(t, "the event relay job", func() string {
		d, err := shared.temporal.DescribeWorkflowExecution(ctx, workflows.EventRelayID, "")
		if err != nil {
			return err.Error()
		}
		return d.WorkflowExecutionInfo.GetStatus().String() + " " + d.WorkflowExecutionInfo.GetTaskQueue()
	}, func(s string) bool { return s == "Running "+queue })
	t.Logf("event-relay: %s", desc)
	t.Cleanup(func() { _ = shared.temporal.TerminateWorkflow(ctx, workflows.EventRelayID, "", "test over") })

	h := transition.Handler{DB: shared.clients.DynamoDB, Journal: shared.cfg.Name(audit.Table), Cases: shared.cfg.Name(cases.Table),
		Outbox: shared.cfg.Name(notify.Table), Events: shared.cfg.Name(events.Table)}
	tenant := "ev-w-" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	id := "refund-" + uuid.NewString()
	if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(api.OwnersTable), "case_id",
		tasks.Owner{CaseID: id, Tenant: tenant, CreatedBy: tenant + "/integrator", CreatedAt: time.Now().Unix()}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Record(ctx, recordStep(id, 1, "", "received")); err != nil {
		t.Fatal(err)
	}
	k, err := api.Keys(shared.cfg, shared.clients).Create(ctx, api.Principal{Tenant: tenant, Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t, newServer(t, api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())) + "|" + k}
	poll(t, "the step's event in the feed", c.feed, func(f []events.Event) bool { return len(f) == 1 && f[0].ID == events.ID(id, 1) })
}
