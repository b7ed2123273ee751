package obligations

import (
	"context"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/duedates"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const (
	innA = "500100732259"
	innB = "7707083893"
)

func setup(t *testing.T, entries ...contract.LedgerEntry) (*storetest.DB, Handler) {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"ledger": {PK: "inn", SK: "entry_id"}, "obligations": {PK: "obligation_id"}})
	for _, e := range entries {
		if _, err := store.PutNew(context.Background(), db, "ledger", "entry_id", e); err != nil {
			t.Fatal(err)
		}
	}
	s, err := duedates.Open("")
	if err != nil {
		t.Fatal(err)
	}
	return db, Handler{DB: db, Ledger: "ledger", Obligations: "obligations", Schedule: s}
}

func obligations(t *testing.T, db *storetest.DB) map[string]contract.Obligation {
	t.Helper()
	out := map[string]contract.Obligation{}
	for _, item := range db.Items("obligations") {
		var o contract.Obligation
		if err := store.Unmarshal(item, &o); err != nil {
			t.Fatal(err)
		}
		out[o.Tax] = o
	}
	return out
}

// A 2025 charge of property tax becomes an obligation due on 1 December 2026 (Tax Code
// art. 409 p.1), of NDFL one due on 15 July 2026 (art. 228 p.4); a transport tax the
// period's payments cover is written as paid (no reminder [004:81]); another period's
// charge and a payment without a charge make none. Run again, nothing changes; after the
// property tax is paid, its obligation becomes paid.
func TestSweepCreatesTheObligationsOfThePeriod(t *testing.T) {
	paid := time.Date(2026, 2, 10, 9, 0, 0, 0, time.UTC)
	db, h := setup(t,
		contract.LedgerEntry{INN: innA, EntryID: "2025#property#1", Kind: "charge", Tax: "property", Period: 2025, Amount: 250_000},
		contract.LedgerEntry{INN: innA, EntryID: "2025#transport#1", Kind: "charge", Tax: "transport", Period: 2025, Amount: 150_000},
		contract.LedgerEntry{INN: innA, EntryID: "2025#transport#2", Kind: "payment", Tax: "transport", Period: 2025, Amount: 150_000, Date: paid},
		contract.LedgerEntry{INN: innA, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 1_300_000},
		contract.LedgerEntry{INN: innA, EntryID: "2024#land#1", Kind: "charge", Tax: "land", Period: 2024, Amount: 10_000},
		contract.LedgerEntry{INN: innB, EntryID: "2025#ndfl#1", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 5_000},
	)
	ctx := context.Background()
	page := contract.SweepPage{Date: "2026-03-01", Limit: 100}
	res, err := h.Sweep(ctx, page)
	if err != nil || res.Processed != 6 || res.Created != 3 || res.Duplicates != 0 || res.Cursor != "" {
		t.Fatalf("first: %+v %v", res, err)
	}
	obs := obligations(t, db)
	p, tr, nd := obs["property"], obs["transport"], obs["ndfl"]
	if len(obs) != 3 || p.DueDate != "2026-12-01" || p.DueMonth != "2026-12" || p.Amount != 250_000 || p.Status != contract.ObligationDue ||
		p.Kind != contract.ObligationPayment || p.Period != 2025 || p.INN != innA || p.Basis == "" {
		t.Fatalf("property: %+v (of %d)", p, len(obs))
	}
	if !tr.Paid() || tr.PaidAt == nil || !tr.PaidAt.Equal(paid) || nd.DueDate != "2026-07-15" || nd.Amount != 1_300_000 {
		t.Fatalf("transport %+v ndfl %+v", tr, nd)
	}
	if res, err := h.Sweep(ctx, page); err != nil || res.Created != 0 || res.Duplicates != 3 {
		t.Fatalf("again: %+v %v", res, err)
	}
	if _, err := store.PutNew(ctx, db, "ledger", "entry_id", contract.LedgerEntry{INN: innA, EntryID: "2025#property#2", Kind: "payment",
		Tax: "property", Period: 2025, Amount: 250_000, Date: paid.AddDate(0, 3, 0)}); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Sweep(ctx, page); err != nil || res.Created != 1 || res.Duplicates != 2 {
		t.Fatalf("after the payment: %+v %v", res, err)
	}
	if p := obligations(t, db)["property"]; !p.Paid() || p.Amount != 250_000 {
		t.Fatalf("property after payment: %+v", p)
	}
}

func TestSweepRefusesAPeriodNotYetOver(t *testing.T) {
	_, h := setup(t)
	for _, p := range []contract.SweepPage{{Date: "2026-03-01", Period: 2026}, {Date: "bad"}} {
		if _, err := h.Sweep(context.Background(), p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
