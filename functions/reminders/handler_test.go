package reminders

import (
	"context"
	"testing"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// A paid obligation is swept (processed) but gets no reminder; an unpaid one does.
func TestPaidObligationGetsNoReminder(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(map[string]storetest.Key{"obligations": {PK: "obligation_id"}, "taxpayers": {PK: "inn"}, "outbox": {PK: "notification_id"}})
	for _, o := range []contract.Obligation{
		{ObligationID: "ob-unpaid", INN: "500100732259", Tax: "land", Amount: 120_000, DueDate: "2026-12-08", DueMonth: "2026-12"},
		{ObligationID: "ob-paid", INN: "500100732259", Tax: "land", Amount: 120_000, DueDate: "2026-12-08", DueMonth: "2026-12", Paid: true},
	} {
		if _, err := store.PutNew(ctx, db, "obligations", "obligation_id", o); err != nil {
			t.Fatal(err)
		}
	}
	h := Handler{DB: db, Obligations: "obligations", Taxpayers: "taxpayers", Outbox: "outbox"}
	res, err := h.Sweep(ctx, contract.SweepPage{Date: "2026-12-01", LeadDays: 7, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Processed != 2 || res.Sent != 1 {
		t.Fatalf("%+v: want 2 processed, 1 sent", res)
	}
	out := db.Items("outbox")
	var n contract.Notification
	if len(out) != 1 || store.Unmarshal(out[0], &n) != nil || n.NotificationID != "reminder#ob-unpaid#7" {
		t.Fatalf("outbox %v", out)
	}
}
