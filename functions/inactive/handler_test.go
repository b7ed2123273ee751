package inactive

import (
	"context"
	"testing"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// The issue: the 12 months were hard-coded; the sweep takes them from its page.
func TestInactivityPeriodIsConfigured(t *testing.T) {
	cases := []struct {
		months int
		notice bool
	}{
		{0, false}, // the default, 12 months: 7 months idle is not inactive
		{6, true},
		{12, false},
	}
	for _, c := range cases {
		db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}, "outbox": {PK: "notification_id"}})
		if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn",
			contract.Taxpayer{INN: "500100732259", LastActivity: "2026-04-20"}); err != nil {
			t.Fatal(err)
		}
		h := Handler{DB: db, Taxpayers: "taxpayers", Outbox: "outbox"}
		res, err := h.Sweep(context.Background(), contract.SweepPage{Date: "2026-11-23", GraceDays: 60, InactiveMonths: c.months})
		if err != nil || (res.Sent == 1) != c.notice {
			t.Errorf("%d months: %+v %v; want a notice %v", c.months, res, err, c.notice)
		}
	}
	h := Handler{DB: storetest.New(nil), Taxpayers: "taxpayers", Outbox: "outbox"}
	if _, err := h.Sweep(context.Background(), contract.SweepPage{Date: "2026-11-23", GraceDays: 60, InactiveMonths: -1}); err == nil {
		t.Error("a negative period accepted")
	}
}
