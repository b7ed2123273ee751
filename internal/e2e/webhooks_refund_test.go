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
	"github.com/taxflow/taxflow/internal/events"
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
