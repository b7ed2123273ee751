package keyrate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/taxflow/taxflow/internal/term"
)

// DecisionHour and DecisionMinute: the Bank of Russia publishes a key-rate decision at
// 13:30 Moscow time on the day of the Board's meeting (its release calendar).
const (
	DecisionHour   = 13
	DecisionMinute = 30
)

// Freshness is the table against the Board's calendar at a moment.
type Freshness struct {
	CheckedThrough time.Time // the last day the table is known to be complete
	// LastMeeting is the last scheduled meeting whose decision was published by then
	// (13:30 Moscow of its day); zero when the calendar knows none.
	LastMeeting time.Time
	// Missed are the scheduled meetings already decided that fall after CheckedThrough:
	// their decisions may be missing from the table.
	Missed []time.Time
	// CalendarEnds is the last meeting the calendar knows; after it, a missed decision
	// cannot be told (the next year's calendar must be added).
	CalendarEnds time.Time
}

// Stale says the table may lack a decision already taken.
func (f Freshness) Stale() bool { return len(f.Missed) > 0 }

// CalendarOver says no scheduled meeting is known after at.
func (f Freshness) CalendarOver(at time.Time) bool {
	return f.CalendarEnds.IsZero() || !decidedAt(f.CalendarEnds).After(at)
}

func decidedAt(day time.Time) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), DecisionHour, DecisionMinute, 0, 0, term.Moscow)
}

// Freshness compares the table with the Board's calendar at now.
func (t *Table) Freshness(now time.Time) Freshness {
	f := Freshness{CheckedThrough: t.checkedThrough}
	for _, m := range t.meetings {
		f.CalendarEnds = m.day
		if decidedAt(m.day).After(now) {
			continue
		}
		f.LastMeeting = m.day
		if m.day.After(t.checkedThrough) {
			f.Missed = append(f.Missed, m.day)
		}
	}
	return f
}

// Warnings are what a process logs at start (and the metric reports): the decisions the
// table may lack, and a calendar that has run out. Empty when the table is current.
func (t *Table) Warnings(now time.Time) []string {
	f := t.Freshness(now)
	var out []string
	if f.Stale() {
		days := make([]string, len(f.Missed))
		for i, d := range f.Missed {
			days[i] = d.Format(time.DateOnly)
		}
		out = append(out, fmt.Sprintf("key rate table checked through %s, before the Board meeting(s) of %s: interest after %s is computed at the last known rate until the decisions are added (taxflow keyrate add)",
			f.CheckedThrough.Format(time.DateOnly), strings.Join(days, ", "), f.CheckedThrough.Format(time.DateOnly)))
	}
	if f.CalendarOver(now) {
		last := "none"
		if !f.CalendarEnds.IsZero() {
			last = f.CalendarEnds.Format(time.DateOnly)
		}
		out = append(out, fmt.Sprintf("key rate table: the Board's meeting calendar ends (last known meeting: %s), so a missed decision cannot be detected: add the next meetings (taxflow keyrate meeting)", last))
	}
	return out
}

// Decision is a Board decision an operator adds: the rate in force from From.
type Decision struct {
	From     time.Time
	RateBP   int64
	Decision string // what was decided, by whom and when; a default is made from From and the rate
	Source   string // where it is published (the Bank of Russia's press release)
}

// Add returns the table with d appended: the open entry ends the day before d.From and
// d's rate is in force from then on, until the next decision; checked_through moves to
// today (the operator has checked the Bank of Russia's table), or to the day before the
// first Board meeting the calendar knows after d took effect when that one is already
// decided (its decision is added next; until then the table stays stale). A decision
// whose meeting follows another known meeting after the last rate took effect is
// refused: that meeting's decision is added first. A decision that keeps the
// rate is added the same way (it confirms the days from its meeting). Only the future of
// the table changes: a decision from on or before the last entry's first day is refused
// (a correction of history is a reviewed change of the data file, or `keyrate put`).
func (t *Table) Add(d Decision, now time.Time) (*Table, error) {
	switch {
	case d.Source == "":
		return nil, errors.New("source: required (the Bank of Russia's press release of the decision)")
	case d.RateBP <= 0 || d.RateBP > 10_000:
		return nil, fmt.Errorf("rate: %d basis points is not a rate of 0.01–100 %%", d.RateBP)
	}
	today := term.Today(now)
	f := t.raw
	f.Rates = append([]Entry(nil), t.raw.Rates...)
	last := &f.Rates[len(f.Rates)-1]
	lastFrom := t.entries[len(t.entries)-1].from
	from := term.Today(d.From)
	switch {
	case !from.After(lastFrom):
		return nil, fmt.Errorf("from %s: the table's last rate is in force from %s; a decision is added after it (correct history in the data file)",
			from.Format(time.DateOnly), last.From)
	case last.To != "" && last.To != from.AddDate(0, 0, -1).Format(time.DateOnly):
		return nil, fmt.Errorf("from %s: the last entry ends on %s; the next one must start the day after", from.Format(time.DateOnly), last.To)
	case from.After(today.AddDate(0, 0, AheadDays)):
		return nil, fmt.Errorf("from %s: more than %d days ahead; a decision takes effect the working day after its meeting", from.Format(time.DateOnly), AheadDays)
	}
	// The Board's meetings held after the last rate took effect and before this one does:
	// the last of them is this decision's own; an earlier one is a decision the table
	// lacks (one that kept the rate is an entry too), added first, or its days would be
	// charged at the rate before it with nobody told.
	var between []time.Time
	checked := today
	for _, m := range t.meetings {
		switch {
		case !m.day.Before(lastFrom) && m.day.Before(from):
			between = append(between, m.day)
		case !m.day.Before(from) && !decidedAt(m.day).After(now) && m.day.AddDate(0, 0, -1).Before(checked):
			// A meeting decided after this decision took effect: the operator vouches
			// for the table up to it, not to today (its decision may still be missing).
			checked = m.day.AddDate(0, 0, -1)
		}
	}
	if len(between) > 1 {
		return nil, fmt.Errorf("from %s: the Board met on %s after the last rate took effect (%s); add that decision first",
			from.Format(time.DateOnly), between[0].Format(time.DateOnly), last.From)
	}
	last.To = from.AddDate(0, 0, -1).Format(time.DateOnly)
	text := d.Decision
	if text == "" {
		text = fmt.Sprintf("Board of Directors: %s %% from %s (added by an operator)", formatRate(d.RateBP), from.Format(time.DateOnly))
	}
	f.Rates = append(f.Rates, Entry{From: from.Format(time.DateOnly), RateBP: d.RateBP, Decision: text, Source: d.Source})
	if checked.After(t.checkedThrough) {
		f.CheckedThrough = checked.Format(time.DateOnly)
	}
	return reparse(f, now)
}

// AddMeeting returns the table with a scheduled Board meeting added to its calendar.
func (t *Table) AddMeeting(day time.Time, source string, now time.Time) (*Table, error) {
	if source == "" {
		return nil, errors.New("source: required (the Bank of Russia's calendar of meetings)")
	}
	day = term.Today(day)
	f := t.raw
	f.Meetings = nil
	added := false
	for _, m := range t.meetings {
		if m.day.Equal(day) {
			return nil, fmt.Errorf("on %s: the calendar already has that meeting", day.Format(time.DateOnly))
		}
		if !added && m.day.After(day) {
			f.Meetings, added = append(f.Meetings, Meeting{Date: day.Format(time.DateOnly), Source: source}), true
		}
		f.Meetings = append(f.Meetings, Meeting{Date: m.Date, Source: m.Source})
	}
	if !added {
		f.Meetings = append(f.Meetings, Meeting{Date: day.Format(time.DateOnly), Source: source})
	}
	return reparse(f, now)
}

func reparse(f file, now time.Time) (*Table, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return Parse(b, now)
}

// JSON is the table in its file format (data/key-rate.json), as an operator's store holds it.
func (t *Table) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(t.raw, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Entries are the table's rates, oldest first.
func (t *Table) Entries() []Entry { return append([]Entry(nil), t.entries...) }

// Meetings are the Board's scheduled meetings the table knows, oldest first.
func (t *Table) Meetings() []Meeting { return append([]Meeting(nil), t.meetings...) }

// ParseRate reads a rate in percent per annum ("16", "16.5", "16,50") as basis points.
func ParseRate(s string) (int64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(strings.ReplaceAll(s, ",", ".")), "%")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || strings.ContainsAny(whole+frac, "+-") {
		return 0, fmt.Errorf("%q: want percent per annum with at most two decimals, such as 16.5", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want percent per annum, such as 16.5", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	fr, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want percent per annum, such as 16.5", s)
	}
	bp := w*100 + fr
	if bp <= 0 || bp > 10_000 {
		return 0, fmt.Errorf("%q: want a rate above 0 and at most 100 %%", s)
	}
	return bp, nil
}

func formatRate(bp int64) string { return fmt.Sprintf("%d.%02d", bp/100, bp%100) }
