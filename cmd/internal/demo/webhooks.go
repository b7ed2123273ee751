package demo

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/internal/events"
)

// The demo's integrator hears about its cases as any integrator would: a webhook endpoint
// on loopback (cmd/internal/drive), registered before the processes run, that verifies each
// delivery with the Standard Webhooks library. At the end the demo prints what arrived per
// case and checks that each of the integrator's cases got the event of the status it
// ended in, in sequence order; then it deletes the endpoint, so nothing keeps retrying
// once the demo's receiver is gone.

// demoWebhook is the registered endpoint.
type demoWebhook struct {
	rcv *drive.Receiver
	id  string
}

// registerWebhook starts the receiver and registers it for every event type.
func (m *demo) registerWebhook() (*demoWebhook, error) {
	rcv, err := drive.StartReceiver()
	if err != nil {
		return nil, err
	}
	var ans drive.WebhookAnswer
	if err := m.expect(http.StatusCreated, &ans, "POST", "/v1/webhooks", m.keys.Integrator,
		drive.JSON(map[string]any{"url": rcv.URL(), "event_types": []string{"*"}}), "Idempotency-Key", newIdempotencyKey()); err != nil {
		rcv.Close()
		return nil, fmt.Errorf("register the webhook endpoint: %w", err)
	}
	if err := rcv.SetSecret(ans.Secret); err != nil {
		rcv.Close()
		return nil, err
	}
	m.printf("  %-11s %-48s registered %s for every event type\n", "webhooks", ans.ID, rcv.URL())
	return &demoWebhook{rcv: rcv, id: ans.ID}, nil
}

// webhookWait bounds the wait for the last events to arrive.
const webhookWait = 60 * time.Second

// webhooks waits for the final event of each of the integrator's cases the demo ran, and
// prints every case's events in the order they arrived.
func (m *demo) webhooks(h *demoWebhook, results []outcome) outcome {
	w := m.begin("webhooks", "delivered")
	defer func() {
		if err := m.expect(http.StatusNoContent, nil, "DELETE", "/v1/webhooks/"+h.id, m.keys.Integrator, nil); err != nil {
			m.printf("  %-11s %-48s the endpoint was not deleted: %v\n", "webhooks", h.id, err)
		}
		h.rcv.Close()
	}()
	w.o.caseID = h.id
	w.step("wait for every case's final event")
	want := map[string]string{} // case → the event type of the status it ended in
	var ids []string
	for _, o := range results {
		// Account cases belong to the taxpayer, not to a tenant: no integrator hears them.
		if o.caseID == "" || o.process == "account" || o.process == "reminder" || !o.ok() {
			continue
		}
		want[o.caseID] = events.Type(o.process, o.status)
		ids = append(ids, o.caseID)
	}
	final := map[string]bool{}
	for _, t := range want {
		final[t] = true
	}
	if err := h.rcv.WaitFor(m.ctx, ids, final, webhookWait); err != nil {
		return w.fail(err)
	}
	if err := h.rcv.OrderKept(); err != nil {
		return w.fail(err)
	}
	byCase := map[string][]string{}
	n, repeats := 0, 0
	for _, e := range h.rcv.Events() {
		byCase[e.Event.CaseID] = append(byCase[e.Event.CaseID], strings.TrimPrefix(e.Type, e.Event.Process+"."))
		n++
		repeats += e.Deliveries - 1
	}
	for _, id := range ids {
		m.printf("  %-11s %-48s %s\n", "webhooks", id, strings.Join(byCase[id], " → "))
	}
	if refused := h.rcv.Refused(); refused > 0 {
		return w.fail(fmt.Errorf("%d deliveries did not verify", refused))
	}
	w.o.status = "delivered"
	w.show("delivered", "доставлено", fmt.Sprintf("%d events for %d cases, signatures verified, in order per case (%d repeated deliveries)", n, len(byCase), repeats))
	return w.o
}
