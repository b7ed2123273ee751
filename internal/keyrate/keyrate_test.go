package keyrate

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/term"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, term.Moscow)

func day(s string) time.Time {
	d, err := term.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func shipped(t *testing.T) *Table {
	t.Helper()
	tb, err := Open("", now)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// The shipped table covers 2023 to today and validates.
func TestShippedTable(t *testing.T) {
	tb := shipped(t)
	if tb.From().After(day("2023-01-01")) {
		t.Fatalf("the table starts on %s, after 2023-01-01", tb.From())
	}
	for d, want := range map[string]int64{
		"2023-01-01": 750, "2023-08-15": 1200, "2023-12-18": 1600, "2024-07-28": 1600, "2024-07-29": 1800,
		"2024-10-28": 2100, "2025-06-09": 2000, "2025-10-27": 1650, "2026-02-15": 1600, "2026-02-16": 1550,
		"2026-11-23": 1550,
	} {
		if got, err := tb.Rate(day(d)); err != nil || got != want {
			t.Errorf("%s: rate %d %v, want %d", d, got, err, want)
		}
	}
	if _, err := tb.Rate(day("2022-01-01")); err == nil {
		t.Error("a day before the table has a rate")
	}
	if w := strings.Join(tb.Warnings(now), "; "); !strings.Contains(w, "checked through 2026-02-18") || !strings.Contains(w, "2026-03-20") {
		t.Errorf("stale table not reported: %q", w)
	}
	if w := tb.Warnings(day("2026-03-19")); len(w) != 0 {
		t.Errorf("fresh table reported: %q", w)
	}
}

// Tax Code art. 78 p.10: interest for each calendar day of delay at the key rate in
// force on that day (the issue: a fixed 16 % copied into each case).
func TestInterestArt78p10(t *testing.T) {
	tb := shipped(t)
	cases := []struct {
		name                string
		amount              int64
		first, last         string
		want                int64
		days, uncheckedDays int
	}{
		// 100 000 ₽, 10–20 Feb 2026: 6 days at 16 % and 5 at 15.5 % (from 16 Feb):
		// 10 000 000 × (0.16×6 + 0.155×5) / 365 = 47 534.2466 → 47 534 kopecks.
		// A fixed 16 % gives 48 219.
		{"across a rate change", 10_000_000, "2026-02-10", "2026-02-20", 47_534, 11, 2}, // 19-20 Feb after checked_through
		// 1 000 000 ₽ at 16 %, 30–31 Dec 2023 (/365) and 1–2 Jan 2024 (/366):
		// 87 671.2329 + 87 431.6940 = 175 102.9269 → 175 103 kopecks.
		{"across a leap-year boundary", 100_000_000, "2023-12-30", "2024-01-02", 175_103, 4, 0},
		// 100 ₽ at 16 % for 30 days: 4.3836 a day; rounded once 131.5068 → 132
		// (rounding each day would give 120).
		{"rounded once", 10_000, "2024-01-01", "2024-01-30", 131, 30, 0},
		// 50 000 ₽, 20 Jul – 5 Aug 2024: 9 days at 16 %, 8 at 18 % (from 29 Jul), /366:
		// 39 344.2623 → 39 344.
		{"the July 2024 rise", 5_000_000, "2024-07-20", "2024-08-05", 39_344, 17, 0},
		// Days after checked_through are computed at the last rate and flagged.
		// 100 000 ₽ at 15.5 %, 17–20 Feb 2026: 16 986.3014 → 16 986.
		{"unchecked days", 10_000_000, "2026-02-17", "2026-02-20", 16_986, 4, 2},
		{"empty span", 10_000_000, "2026-03-20", "2026-03-19", 0, 0, 0},
	}
	for _, c := range cases {
		got, err := tb.Interest(c.amount, day(c.first), day(c.last))
		if err != nil || got.Kopecks != c.want || got.Days != c.days || got.UncheckedDays != c.uncheckedDays {
			t.Errorf("%s: got %+v %v, want %d kopecks over %d days (%d unchecked)", c.name, got, err, c.want, c.days, c.uncheckedDays)
		}
	}
	if _, err := tb.Interest(100, day("2022-01-01"), day("2022-01-02")); err == nil {
		t.Error("interest before the table accepted")
	}
}

func TestLateRefund(t *testing.T) {
	tb := shipped(t)
	deadline := term.Default().Days(day("2026-01-09"), 30) // last day 9 Feb 2026 (Monday)
	if got, _ := tb.LateRefund(10_000_000, deadline.End, day("2026-02-09").Add(23*time.Hour)); got.Days != 0 {
		t.Fatalf("paid on the last day: %+v", got)
	}
	// paid on 20 Feb: 10–20 Feb are days of delay (the row above)
	got, err := tb.LateRefund(10_000_000, deadline.End, day("2026-02-20").Add(10*time.Hour))
	if err != nil || got.Days != 11 || got.Kopecks != 47_534 {
		t.Fatalf("got %+v %v", got, err)
	}
}

// A gap, an overlap or an unsorted entry stops the process with a clear message.
func TestParseRejectsBadTables(t *testing.T) {
	const head = `{"description":"t","checked_through":"2026-01-31","rates":[`
	entry := func(from, to string, rate int) string {
		return `{"from":"` + from + `","to":"` + to + `","rate_bp":` + strconv.Itoa(rate) + `,"decision":"d","source":"s"}`
	}
	cases := []struct {
		name, body, want string
	}{
		{"gap", entry("2025-01-01", "2025-06-30", 1600) + "," + entry("2025-07-02", "", 1700), "gap: entry 1 ends on 2025-06-30, so 2025-07-01 has no rate"},
		{"overlap", entry("2025-01-01", "2025-06-30", 1600) + "," + entry("2025-06-30", "", 1700), "overlaps entry 1"},
		{"unsorted", entry("2025-07-01", "2025-12-31", 1600) + "," + entry("2025-01-01", "", 1700), "not sorted"},
		{"open in the middle", entry("2025-01-01", "", 1600) + "," + entry("2025-07-01", "", 1700), "only the last entry may be open-ended"},
		{"no source", `{"from":"2025-01-01","to":"","rate_bp":1600,"decision":"d","source":""}`, "decision and source"},
		{"percent, not basis points", entry("2025-01-01", "", 16), ""},
		{"rate too high", entry("2025-01-01", "", 160_000), "basis points"},
		{"future entry", entry("2025-01-01", "2026-02-28", 1600) + "," + entry("2026-03-01", "", 1500), "starts after checked_through"},
		{"ends before checked", entry("2025-01-01", "2025-12-31", 1600), "the days between have no rate"},
		{"bad date", entry("2025-13-01", "", 1600), "want YYYY-MM-DD"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(head+c.body+`]}`), now)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err) // 16 bp is odd but valid: 0.16 %
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Parse([]byte(`{"description":"t","checked_through":"2027-01-01","rates":[`+entry("2025-01-01", "", 1600)+`]}`), now); err == nil ||
		!strings.Contains(err.Error(), "in the future") {
		t.Errorf("future checked_through: %v", err)
	}
	if _, err := Open("/nonexistent/key-rate.json", now); err == nil || !strings.Contains(err.Error(), "/nonexistent/key-rate.json") {
		t.Errorf("missing file: %v", err)
	}
}
