package term

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type row struct {
	name     string
	start    string // RFC 3339
	n        int
	lastDay  string
	moved    bool
	provYear []int
}

func check(t *testing.T, r row, got Result) {
	t.Helper()
	if got.LastDay.Format(time.DateOnly) != r.lastDay || got.Moved != r.moved || !slices.Equal(got.Provisional, r.provYear) {
		t.Errorf("%s: got last day %s moved %v provisional %v; want %s moved %v provisional %v",
			r.name, got.LastDay.Format(time.DateOnly), got.Moved, got.Provisional, r.lastDay, r.moved, r.provYear)
	}
	// art. 6.1 p.8: the term ends at 24:00 Moscow time of the last day
	wantEnd := at(r.lastDay+"T00:00:00+03:00").AddDate(0, 0, 1)
	if !got.End.Equal(wantEnd) {
		t.Errorf("%s: ends %s, want 24:00 MSK of the last day (%s)", r.name, got.End, wantEnd)
	}
	if got.IsProvisional() != strings.Contains(got.String(), "provisional") {
		t.Errorf("%s: String %q does not say whether it is provisional", r.name, got.String())
	}
}

// Tax Code art. 6.1 p.2 (from the next day), p.7 (moved off non-working days), p.8
// (until 24:00 of the last day), counted in Moscow time.
func TestDaysArt61(t *testing.T) {
	for _, r := range []row{
		// The issue: a refund requested at 00:30 MSK on 24 Nov 2026 (21:30 UTC on 23 Nov).
		// The code did now+720h = 23 Dec 21:30 UTC; the term runs 25 Nov .. 24 Dec and
		// ends at 24:00 MSK on 24 Dec.
		{"30 days from 00:30 MSK", "2026-11-23T21:30:00Z", 30, "2026-12-24", false, nil},
		// 23:59 MSK is still the same Moscow day.
		{"30 days from 23:59 MSK", "2026-11-23T20:59:00Z", 30, "2026-12-23", false, nil},
		// Ends on 31 Dec 2026 (non-working by decree No. 1466): 1–8 Jan 2027 are holidays,
		// 9–10 Jan a weekend → Monday 11 Jan 2027; 2027 has no decree yet: provisional.
		{"ends on 31 Dec into the New Year holidays", "2026-12-01T10:00:00+03:00", 30, "2027-01-11", true, []int{2027}},
		// The same with a known year: 31 Dec 2025 and 1–11 Jan 2026 are off → 12 Jan 2026.
		{"ends on 31 Dec 2025", "2025-12-01T10:00:00+03:00", 30, "2026-01-12", true, nil},
		// Saturday 9 May 2026; 11 May is off (9 May moved) → Tuesday 12 May.
		{"ends on a holiday weekend", "2026-04-09T10:00:00+03:00", 30, "2026-05-12", true, nil},
		// Leap year: 30 Jan + 30 days = 29 Feb 2028, a Tuesday.
		{"leap day", "2028-01-30T10:00:00+03:00", 30, "2028-02-29", false, []int{2028}},
	} {
		check(t, r, Default().Days(at(r.start), r.n))
	}
}

// art. 6.1 p.5: a month term ends on the same date of the last month or on its last day.
func TestMonthsArt61(t *testing.T) {
	for _, r := range []row{
		// The issue: desk review of a declaration submitted on 30 Nov 2025 (art. 88 p.2):
		// 28 Feb 2026, a Saturday → Monday 2 March.
		{"desk review 3 months from 30 Nov", "2025-11-30T12:00:00+03:00", 3, "2026-03-02", true, nil},
		// AddDate would give 1 October.
		{"31 Aug + 1 month", "2026-08-31T12:00:00+03:00", 1, "2026-09-30", false, nil},
		// 28 Feb 2027 is a Sunday → 1 March (AddDate: 2 March).
		{"30 Nov 2026 + 3 months", "2026-11-30T12:00:00+03:00", 3, "2027-03-01", true, []int{2027}},
		{"31 Jan + 1 month in a leap year", "2028-01-31T12:00:00+03:00", 1, "2028-02-29", false, []int{2028}},
		// Appeal (art. 139.1 p.2): a decision delivered on 1 Dec 2026 → 1 Jan 2027, a
		// holiday → 11 Jan 2027. The code's 720 h ended on 31 Dec 2026.
		{"appeal month into the holidays", "2026-12-01T15:00:00+03:00", 1, "2027-01-11", true, []int{2027}},
		{"month ending on a working day", "2026-10-23T15:00:00+03:00", 1, "2026-11-23", false, nil},
	} {
		check(t, r, Default().Months(at(r.start), r.n))
	}
}

// art. 6.1 p.3: a year term ends in the same month and date of the last year.
func TestYearsArt61(t *testing.T) {
	for _, r := range []row{
		// 29 Feb 2024 + 3 years: 28 Feb 2027 is a Sunday → 1 March.
		{"3 years from a leap day", "2024-02-29T12:00:00+03:00", 3, "2027-03-01", true, []int{2027}},
		{"3 years", "2023-04-28T12:00:00+03:00", 3, "2026-04-28", false, nil},
	} {
		check(t, r, Default().Years(at(r.start), r.n))
	}
}

// art. 6.1 p.6; art. 88 p.3 (explanations, 5 working days), art. 93 p.3 (documents, 10).
func TestWorkingDaysArt61(t *testing.T) {
	for _, r := range []row{
		{"5 working days from a Friday", "2026-11-20T18:00:00+03:00", 5, "2026-11-27", false, nil},
		// 28–30 Dec; 31 Dec and 1–10 Jan off; 11–15, 18, 19 Jan.
		{"10 working days over the New Year", "2026-12-25T10:00:00+03:00", 10, "2027-01-19", false, []int{2027}},
		// 1 May off, 2–3 May weekend; 4–8 May.
		{"5 working days over 1 May", "2026-04-30T10:00:00+03:00", 5, "2026-05-08", false, nil},
	} {
		check(t, r, Default().WorkingDays(at(r.start), r.n))
	}
}

// art. 6.1 p.7 on statutory dates (art. 228 p.4, 229 p.1, 363, 397, 409).
func TestDueDateMovesOffNonWorkingDays(t *testing.T) {
	for _, r := range []row{
		{"1 Dec 2024 is a Sunday", "2024-12-01T00:00:00+03:00", 0, "2024-12-02", true, []int{2024}},
		{"12 Jun 2026 is a holiday", "2026-06-12T00:00:00+03:00", 0, "2026-06-15", true, nil},
		{"30 Apr 2026 is a short working day", "2026-04-30T00:00:00+03:00", 0, "2026-04-30", false, nil},
	} {
		check(t, r, Default().DueDate(at(r.start)))
	}
}

// domain.md: tax years and "today" are Moscow's. The issue: a 2025 declaration filed at
// 01:30 MSK on 1 January 2026 was refused as a future year because it was 2025 in UTC.
func TestTodayIsMoscow(t *testing.T) {
	for _, c := range []struct {
		now  string
		day  string
		year int
	}{
		{"2025-12-31T22:30:00Z", "2026-01-01", 2026},
		{"2025-12-31T20:59:59Z", "2025-12-31", 2025},
		{"2026-11-23T00:00:00-05:00", "2026-11-23", 2026},
	} {
		got := Today(at(c.now))
		if got.Format(time.DateOnly) != c.day || got.Hour() != 0 || Year(at(c.now)) != c.year {
			t.Errorf("%s: today %s, year %d; want %s, %d", c.now, got, Year(at(c.now)), c.day, c.year)
		}
	}
	if _, off := Today(time.Now()).Zone(); off != 3*3600 {
		t.Fatalf("Moscow offset %d", off)
	}
}

func TestIsWorkingDay(t *testing.T) {
	if w, p := Default().IsWorkingDay(at("2026-12-31T12:00:00+03:00")); w || p {
		t.Errorf("31 Dec 2026: working %v provisional %v", w, p)
	}
	if w, p := Default().IsWorkingDay(at("2027-01-11T12:00:00+03:00")); !w || !p {
		t.Errorf("11 Jan 2027: working %v provisional %v", w, p)
	}
}
