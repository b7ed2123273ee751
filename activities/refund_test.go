package activities

import (
	"context"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/term"
)

type tableStore struct{ body []byte }

func (s *tableStore) Get(context.Context) ([]byte, error)   { return s.body, nil }
func (s *tableStore) Put(_ context.Context, b []byte) error { s.body = b; return nil }

// Tax Code art. 78 p.10: each day at the key rate in force that day. A decision an
// operator adds while the worker runs is used by the next interest computed (the next
// payout key), with no restart.
func TestRefundInterestUsesTheOperatorsTable(t *testing.T) {
	now := time.Date(2026, 3, 20, 15, 0, 0, 0, term.Moscow)
	base, err := keyrate.Open("", now)
	if err != nil {
		t.Fatal(err)
	}
	store := &tableStore{}
	clock := now
	a := &Activities{KeyRates: base, KeyRateSource: &keyrate.Live{Base: base, Store: store, TTL: time.Minute, Now: func() time.Time { return clock }}}
	in := RefundInterestInput{Amount: 1_000_000, Deadline: time.Date(2026, 3, 23, 0, 0, 0, 0, term.Moscow), PaidAt: time.Date(2026, 3, 24, 10, 0, 0, 0, term.Moscow)}
	before, err := a.RefundInterest(context.Background(), in)
	if err != nil || before.Kopecks != 849 { // 1 000 000 × 0.155 × 2 / 365 = 849.3
		t.Fatalf("before the addition: %+v %v", before, err)
	}
	added, err := base.Add(keyrate.Decision{From: time.Date(2026, 3, 23, 0, 0, 0, 0, term.Moscow), RateBP: 1500, Source: "https://www.cbr.ru/press/keypr/"}, now)
	if err != nil {
		t.Fatal(err)
	}
	store.body, _ = added.JSON()
	clock = clock.Add(2 * time.Minute)
	after, err := a.RefundInterest(context.Background(), in)
	if err != nil || after.Kopecks != 822 { // 1 000 000 × 0.15 × 2 / 365 = 821.9
		t.Fatalf("after the addition: %+v %v", after, err)
	}
}
