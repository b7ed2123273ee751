package metrics_test

import (
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/term"
)

// The key-rate table's age is measured against the Board's calendar at each scrape: the
// shipped table misses the meeting of 20 March 2026, and the calendar it knows ends there.
func TestKeyRateGauges(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, term.Moscow)
	tb, err := keyrate.Open("", now)
	if err != nil {
		t.Fatal(err)
	}
	cur := tb
	m := metrics.New(nil, nil)
	m.RegisterKeyRate(func() *keyrate.Table { return cur }, func() time.Time { return now })
	s := samples(t, m)
	meeting := float64(time.Date(2026, 3, 20, 13, 30, 0, 0, term.Moscow).Unix())
	for name, want := range map[string]float64{
		metrics.KeyRateCheckedThrough: float64(time.Date(2026, 2, 18, 0, 0, 0, 0, term.Moscow).Unix()),
		metrics.KeyRateLastMeeting:    meeting,
		metrics.KeyRateMissedMeetings: 1,
		metrics.KeyRateCalendarEnds:   meeting,
	} {
		if got, ok := s[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// The operator adds the decision (and the table is read again): nothing is missed.
	if cur, err = tb.Add(keyrate.Decision{From: time.Date(2026, 3, 23, 0, 0, 0, 0, term.Moscow), RateBP: 1500, Source: "https://www.cbr.ru/press/keypr/"}, now); err != nil {
		t.Fatal(err)
	}
	if got := samples(t, m)[metrics.KeyRateMissedMeetings]; got != 0 {
		t.Errorf("missed meetings after the addition: %v", got)
	}
}
