package reminders

import (
	"context"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// The issue: an obligation had no "paid" state, so a paid tax was still reminded of.
func TestSweepSkipsPaidObligations(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{
		"obligations": {PK: "obligation_id"}, "taxpayers": {PK: "inn"}, "outbox": {PK: "notification_id"}})
	paidAt := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, o := range []contract.Obligation{
		{ObligationID: "due", INN: "500100732259", Tax: "property", Amount: 250_000, DueDate: "2026-12-01", DueMonth: "2026-12"},
		{ObligationID: "marked-due", INN: "500100732259", Tax: "land", Amount: 10_000, DueDate: "2026-12-01", DueMonth: "2026-12",
			Status: contract.ObligationDue, Kind: contract.ObligationPayment, Period: 2025},
		{ObligationID: "paid", INN: "500100732259", Tax: "transport", Amount: 150_000, DueDate: "2026-12-01", DueMonth: "2026-12",
			Status: contract.ObligationPaid, PaidAt: &paidAt},
	} {
		if _, err := store.PutNew(context.Background(), db, "obligations", "obligation_id", o); err != nil {
			t.Fatal(err)
		}
	}
	h := Handler{DB: db, Obligations: "obligations", Taxpayers: "taxpayers", Outbox: "outbox"}
	res, err := h.Sweep(context.Background(), contract.SweepPage{Date: "2026-11-24", LeadDays: 7, Limit: 100})
	if err != nil || res.Processed != 3 || res.Sent != 2 {
		t.Fatalf("got %+v %v; want 3 processed, 2 sent", res, err)
	}
	for _, item := range db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		if n.CaseID == "paid" {
			t.Fatal("a paid obligation was reminded of")
		}
		if n.CaseID == "marked-due" && (n.Params["kind"] != "payment" || n.Params["period"] != "2025") {
			t.Errorf("params %v", n.Params)
		}
	}
}
