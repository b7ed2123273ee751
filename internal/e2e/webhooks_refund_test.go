//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

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

// End to end, nothing written by the test but the requests: a refund from claim to paid
// through the API, its steps' events relayed into its tenant's feed by the real relay,
// delivered by the real webhook function to a receiver that verifies every signature
// with the Standard Webhooks library: each event once (by webhook-id), in seq order, the
// same events the feed lists; and another tenant's endpoint, registered for every type,
// receives none of them.
func TestRefundEventsReachItsTenantsWebhookOnly(t *testing.T) {
	inv := lambdaInvoker()
	a := startHookStack(t, inv)
	startRelay(t, a.queue)
	b := startHookStack(t, inv)
	ra, rb := newReceiver(t), newReceiver(t)
	a.register(t, ra, "*")
	b.register(t, rb, "*")

	// An integrator key of tenant a with the role's scopes, for the claim and the feed.
	key, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(), api.Principal{ID: a.tenant + "/claims", Tenant: a.tenant, Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := strings.Cut(a.client.base, "|")
	ca := &apiClient{t, base + "|" + key}
	code, id := ca.create(newTaxpayer(t, 500_000), 400_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("claim: %d", code)
	}
	if code, out := ca.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, out)
	}
	ca.waitStatus(id, "paid")
	waitFor(t, 2*time.Minute, "refund.paid delivered to tenant a's endpoint", func() bool {
		for _, g := range ra.delivered() {
			if g.Body.Data.CaseID == id && g.Body.Type == "refund.paid" {
				return true
			}
		}
		return false
	})
	var mine []received
	for _, g := range ra.delivered() {
		if g.Body.Data.CaseID == id {
			mine = append(mine, g)
		}
	}
	feed := ofCase(ca.feed(), id)
	checkOnceInOrder(t, mine, len(feed))
	for i, e := range feed {
		if i < len(mine) && (mine[i].ID != e.ID || mine[i].Body.Data.Type != e.Type || mine[i].Body.Data.StatusLabel != e.StatusLabel) {
			t.Errorf("delivery %d: %s %s, the feed's: %s %s", i, mine[i].ID, mine[i].Body.Data.Type, e.ID, e.Type)
		}
	}
	if mine[0].Body.Type != events.Type("refund", "received") {
		t.Errorf("first delivered %s", mine[0].Body.Type)
	}
	if ra.bad != 0 {
		t.Errorf("%d deliveries did not verify", ra.bad)
	}
	// Tenant b's endpoint has had every round meanwhile: none of a's events.
	time.Sleep(2 * time.Second)
	for _, g := range rb.delivered() {
		if g.Body.Data.CaseID == id {
			t.Fatalf("tenant b's endpoint received tenant a's event %s", g.ID)
		}
	}
	t.Logf("%s: %d events delivered once each in order: %s … %s", id, len(mine), mine[0].Body.Type, mine[len(mine)-1].Body.Type)
}

// A burst of 1,000 transitions across 100 cases, written concurrently by the real step
// writer, relayed by the real relay and sent by the real delivery function: the receiver
// gets each event once, signed, and every case's in seq order.
func TestWebhookBurstOf1000TransitionsKeepsCaseOrder(t *testing.T) {
	inv := lambdaInvoker()
	a := startHookStack(t, inv)
	startRelay(t, a.queue)
	r := newReceiver(t)
	a.register(t, r, "*")
	ctx := context.Background()
	db := shared.clients.DynamoDB
	h := transition.Handler{DB: db, Journal: shared.cfg.Name(audit.Table), Cases: shared.cfg.Name(cases.Table),
		Outbox: shared.cfg.Name(notify.Table), Events: shared.cfg.Name(events.Table)}
	const nCases, steps = 100, 10
	var ids []string
	for range nCases {
		id := "refund-" + uuid.NewString()
		ids = append(ids, id)
		if _, err := store.PutNew(ctx, db, shared.cfg.Name(api.OwnersTable), "case_id",
			tasks.Owner{CaseID: id, Tenant: a.tenant, CreatedBy: a.tenant + "/integrator", CreatedAt: time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
	}
	statuses := []string{"received", "in_review", "awaiting_info", "in_review", "approved", "payout_failed", "approved", "paid", "paid", "paid"}
	var wg sync.WaitGroup
	errs := make(chan error, nCases)
	started := time.Now()
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
	waitFor(t, 5*time.Minute, "1,000 events at the receiver", func() bool {
		seen := map[string]bool{}
		for _, g := range r.delivered() {
			seen[g.ID] = true
		}
		return len(seen) >= nCases*steps
	})
	checkOnceInOrder(t, r.delivered(), nCases*steps)
	if r.bad != 0 {
		t.Errorf("%d deliveries did not verify", r.bad)
	}
	t.Logf("%d events of %d cases delivered in %s, each once, each case in order", nCases*steps, nCases, time.Since(started).Round(time.Second))
}
