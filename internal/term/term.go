// Package term computes every statutory term taxflow enforces, in one place, by the
// rules of Tax Code art. 6.1 over the production calendar (internal/calendar):
//
//   - a term starts on the day after the event that starts it (p.2);
//   - a term in days counts calendar days; a term in working days counts the
//     calendar's working days (p.6);
//   - a term in months ends on the same date of the last month, or on that month's last
//     day where the date does not exist (p.5); a term in years likewise (p.3);
//   - a last day that is not a working day moves to the next working day (p.7);
//   - an act may be done until 24:00 of the last day (p.8): End is that instant.
//
// Days are Moscow days (domain.md, "Rules added after review"). Moscow is a fixed UTC+3
// zone: Russia has kept UTC+3 all year round since 26 October 2014 (Federal Law
// No. 248-FZ of 21 July 2014), so a fixed zone is exact for every date taxflow
// handles, and it does not depend on the host having tzdata (the Lambda runtime image
// may not ship /usr/share/zoneinfo). It is the same zone as calendar.Moscow.
//
// How a workflow calls it: terms depend on data (the calendar) and on the clock, so a
// workflow computes a term once and keeps the result: either inside workflow.SideEffect
// (with workflow.Now as the start), or in the API/activity that starts the process,
// passing Result.End in the workflow's input. Never recompute a running case's term
// on replay with a newer calendar. Examples:
//
//	term.Default().Months(claimedAt, 1)             // refund: art. 78 p.6, through internal/refunddue
//	term.Default().Months(submittedAt, 3)           // desk review: art. 88 p.2
//	term.Default().WorkingDays(requestReceived, 5)  // explanations: art. 88 p.3
//	term.Default().WorkingDays(requestReceived, 10) // documents: art. 93 p.3
//	term.Default().Months(decisionDelivered, 1)     // appeal: art. 139.1 p.2
//
// A Result that used a year with no decree loaded says so (Provisional): the caller
// should record that the deadline may move when the decree is published.
package term

import (
	"fmt"
	"sort"
	"time"

	"github.com/taxflow/taxflow/internal/calendar"
)

// Moscow is the zone every term is counted in (fixed UTC+3; see the package doc).
var Moscow = calendar.Moscow

// Result is a computed term.
type Result struct {
	// LastDay is the start (00:00 Moscow) of the term's last day, after any move off a
	// non-working day.
	LastDay time.Time `json:"last_day"`
	// End is the instant the term expires: 24:00 Moscow time of LastDay, which is 00:00
	// of the next day. An act done before End is in time.
	End time.Time `json:"end"`
	// Moved tells that the nominal last day was not a working day (art. 6.1 p.7).
	Moved bool `json:"moved,omitempty"`
	// Provisional lists the calendar years consulted that have no government decree
	// loaded: their working days are computed from the Labour Code (art. 112) alone and
	// the term may change when the decree is published.
	Provisional []int `json:"provisional_years,omitempty"`
}

// IsProvisional tells whether the term rests on a provisional calendar year.
func (r Result) IsProvisional() bool { return len(r.Provisional) > 0 }

// String is the last day and, when it applies, a note that it is provisional.
func (r Result) String() string {
	s := r.LastDay.Format(time.DateOnly)
	if r.IsProvisional() {
		s += fmt.Sprintf(" (provisional: no production calendar decree loaded for %v)", r.Provisional)
	}
	return s
}

// Terms computes terms over one production calendar. The zero value is not usable: use
// New or Default.
type Terms struct{ cal *calendar.Calendar }

// New computes terms over cal.
func New(cal *calendar.Calendar) Terms { return Terms{cal: cal} }

// Default computes terms over the calendar taxflow ships (calendar.Shared).
func Default() Terms { return New(calendar.Shared()) }

// Today is the start (00:00 Moscow) of the Moscow day of now. Tax years, "today" and
// the day a term starts from are taken from it, never from UTC or the server's zone.
func Today(now time.Time) time.Time { return dayOf(now) }

// Year is the Moscow calendar year of now: 01:30 Moscow time on 1 January 2026 is 2026,
// although it is still 2025 in UTC.
func Year(now time.Time) int { return now.In(Moscow).Year() }

// Date builds the start (00:00 Moscow) of a calendar date.
func Date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, Moscow) }

// ParseDate reads YYYY-MM-DD as a Moscow day.
func ParseDate(s string) (time.Time, error) { return time.ParseInLocation(time.DateOnly, s, Moscow) }

func dayOf(t time.Time) time.Time {
	m := t.In(Moscow)
	return time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, Moscow)
}

// tracker records the calendar years a computation consulted.
type tracker struct {
	t     Terms
	years map[int]bool
}

func (t Terms) track() *tracker { return &tracker{t: t, years: map[int]bool{}} }

func (k *tracker) working(day time.Time) bool {
	y := day.Year()
	if k.t.cal.Provisional(y) {
		k.years[y] = true
	}
	// noon, so that the calendar's own conversion to Moscow can never shift the day
	return k.t.cal.IsWorkingDay(day.Add(12 * time.Hour))
}

func (k *tracker) result(last time.Time, moved bool) Result {
	r := Result{LastDay: last, End: last.AddDate(0, 0, 1), Moved: moved}
	for y := range k.years {
		r.Provisional = append(r.Provisional, y)
	}
	sort.Ints(r.Provisional)
	return r
}

// moveOff applies art. 6.1 p.7 to a nominal last day.
func (k *tracker) moveOff(day time.Time) Result {
	moved := false
	for !k.working(day) {
		day = day.AddDate(0, 0, 1)
		moved = true
	}
	return k.result(day, moved)
}

// Days is a term of n calendar days from the event at start (art. 6.1 p.2, 7, 8): the
// first day is the day after start, the last day is the n-th, moved to the next working
// day when it is not one; the term ends at 24:00 Moscow time of that day.
func (t Terms) Days(start time.Time, n int) Result {
	return t.track().moveOff(dayOf(start).AddDate(0, 0, n))
}

// Months is a term of n months from the event at start (art. 6.1 p.5, 7, 8): it ends on
// the same date of the n-th month, or on that month's last day where the date does not
// exist (30 November + 3 months is 28 February, never 2 March), moved off a non-working
// day.
func (t Terms) Months(start time.Time, n int) Result {
	return t.track().moveOff(addMonths(dayOf(start), n))
}

// Years is a term of n years from the event at start (art. 6.1 p.3), with the same
// month-end and non-working-day rules as Months.
func (t Terms) Years(start time.Time, n int) Result { return t.Months(start, 12*n) }

// WorkingDays is a term of n working days from the event at start (art. 6.1 p.6): the
// last day is the n-th working day after the day of start.
func (t Terms) WorkingDays(start time.Time, n int) Result {
	k := t.track()
	day := dayOf(start)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if k.working(day) {
			n--
		}
	}
	return k.result(day, false)
}

// DueDate is a statutory date (such as 1 December) moved off a non-working day
// (art. 6.1 p.7): the last day to pay or file.
func (t Terms) DueDate(day time.Time) Result { return t.track().moveOff(dayOf(day)) }

// IsWorkingDay tells whether the Moscow day of at is a working day, and whether the
// answer rests on a provisional calendar year.
func (t Terms) IsWorkingDay(at time.Time) (working, provisional bool) {
	d := dayOf(at)
	return t.cal.IsWorkingDay(d.Add(12 * time.Hour)), t.cal.Provisional(d.Year())
}

// addMonths is the same date n months later, or the last day of that month.
func addMonths(day time.Time, n int) time.Time {
	first := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, Moscow).AddDate(0, n, 0)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(day.Day(), last), 0, 0, 0, 0, Moscow)
}
