// Package keyrate is the Bank of Russia key rate as dated data (data/key-rate.json, each
// entry with its decision and source) and the interest the tax authority owes on a
// refund paid late.
//
// The rule (Tax Code art. 78 p.10, art. 79 p.5): interest is due for each calendar day
// the refund is late, at the Central Bank key rate in force on that day. The Code gives
// an annual rate and no day-count basis; taxflow divides it by the number of days of the
// calendar year the day falls in (365, or 366 in a leap year), as courts count annual
// interest (Plenum of the Supreme Court, resolution No. 7 of 24 March 2016), not by the
// 360 days of the superseded joint resolution No. 13/14 of 1998. The daily amounts are
// summed exactly and rounded to the kopeck once, at the end, half up.
//
// Which days count: the first day of delay is the day after the term's last day (the day
// that starts at term.Result.End); the day the refund is paid counts too, since the money
// was still owed that day. Both are Moscow days.
//
// Load the table at start (Open) and stop the process on its error: a gap, an overlap,
// an unsorted or undocumented entry is a defect in the data, not something to compute
// around. The table changes when the Bank of Russia decides: an operator adds a decision
// (Add, `taxflow keyrate add`) to a store only operators write (trust.KeyRateStore, in
// the trust bucket), and the worker computes with Live, which reads it again every minute. A
// workflow computes interest in an activity when it makes a payout key, and keeps it for
// that key only. Freshness measures the table against the Board's meeting calendar
// (board_meetings in the data file).
package keyrate

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/taxflow/taxflow/internal/term"
)

//go:embed data/key-rate.json
var embedded embed.FS

// EmbeddedFile is the path of the shipped table inside the module.
const EmbeddedFile = "internal/keyrate/data/key-rate.json"

// Entry is one rate and the days it is in force (inclusive; To empty: until further notice).
type Entry struct {
	From     string `json:"from"`
	To       string `json:"to"`
	RateBP   int64  `json:"rate_bp"`
	Decision string `json:"decision"`
	Source   string `json:"source"`
	Checked  string `json:"checked,omitempty"`

	from, to time.Time // to is zero for the open entry
}

// Meeting is a scheduled meeting of the Bank of Russia's Board of Directors on the key
// rate (its calendar: https://www.cbr.ru/dkp/cal_mp/), with the source that names it.
type Meeting struct {
	Date   string `json:"date"`
	Source string `json:"source"`

	day time.Time
}

type file struct {
	Description    string    `json:"description"`
	CheckedThrough string    `json:"checked_through"`
	Note           string    `json:"checked_through_note,omitempty"`
	Rates          []Entry   `json:"rates"`
	MeetingsNote   string    `json:"board_meetings_note,omitempty"`
	Meetings       []Meeting `json:"board_meetings,omitempty"`
}

// Table is a validated key-rate history. It is read-only and safe for concurrent use.
type Table struct {
	entries        []Entry
	meetings       []Meeting
	checkedThrough time.Time
	raw            file // as read, to write an operator's addition back (Add)
}

// AheadDays is how far past checked_through a decision may take effect: the Board
// decides on a Friday and the rate applies from the next working day, so an operator
// enters it on the day of the meeting, before the rate is in force.
const AheadDays = 7

// Open loads the table from path, or the embedded one when path is empty, and validates
// it as of now.
func Open(path string, now time.Time) (*Table, error) {
	var b []byte
	var err error
	name := path
	if path == "" {
		name = EmbeddedFile
		b, err = embedded.ReadFile("data/key-rate.json")
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("key rate table %s: %w", name, err)
	}
	t, err := Parse(b, now)
	if err != nil {
		return nil, fmt.Errorf("key rate table %s: %w", name, err)
	}
	return t, nil
}

// Parse reads and validates a table: dates are YYYY-MM-DD; entries are sorted, each
// starting the day after the previous one ends (no gap, no overlap); only the last may be
// open; every entry names its decision and source; rates are 0.01–100 %; nothing starts
// more than AheadDays after checked_through, which itself is not in the future; the
// Board's meetings are sorted, distinct and sourced.
func Parse(b []byte, now time.Time) (*Table, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a key rate table: %w", err)
	}
	if len(f.Rates) == 0 {
		return nil, errors.New("no rates")
	}
	checked, err := term.ParseDate(f.CheckedThrough)
	if err != nil {
		return nil, fmt.Errorf("checked_through %q: want YYYY-MM-DD", f.CheckedThrough)
	}
	if checked.After(term.Today(now)) {
		return nil, fmt.Errorf("checked_through %s is in the future: nobody has checked rates not yet decided", f.CheckedThrough)
	}
	t := &Table{checkedThrough: checked, raw: f}
	for i, e := range f.Rates {
		at := fmt.Sprintf("entry %d (from %s)", i+1, e.From)
		if e.from, err = term.ParseDate(e.From); err != nil {
			return nil, fmt.Errorf("%s: from: want YYYY-MM-DD", at)
		}
		if e.To != "" {
			if e.to, err = term.ParseDate(e.To); err != nil {
				return nil, fmt.Errorf("%s: to %q: want YYYY-MM-DD or empty", at, e.To)
			}
			if e.to.Before(e.from) {
				return nil, fmt.Errorf("%s: ends on %s, before it starts", at, e.To)
			}
		} else if i != len(f.Rates)-1 {
			return nil, fmt.Errorf("%s: only the last entry may be open-ended (empty 'to')", at)
		}
		switch {
		case e.RateBP <= 0 || e.RateBP > 10_000:
			return nil, fmt.Errorf("%s: rate_bp %d: want basis points 1–10000 (1600 = 16 %%)", at, e.RateBP)
		case e.Decision == "" || e.Source == "":
			return nil, fmt.Errorf("%s: every rate needs its decision and source", at)
		case e.from.After(checked.AddDate(0, 0, AheadDays)):
			return nil, fmt.Errorf("%s: starts after checked_through %s (by more than %d days: a decision is entered on its meeting day)", at, f.CheckedThrough, AheadDays)
		}
		if i > 0 {
			prev := t.entries[i-1]
			next := prev.to.AddDate(0, 0, 1)
			switch {
			case !e.from.After(prev.from):
				return nil, fmt.Errorf("%s: not sorted: entry %d starts on %s", at, i, prev.From)
			case e.from.Before(next):
				return nil, fmt.Errorf("%s: overlaps entry %d, which runs to %s", at, i, prev.To)
			case e.from.After(next):
				return nil, fmt.Errorf("%s: gap: entry %d ends on %s, so %s has no rate", at, i, prev.To, next.Format(time.DateOnly))
			}
		}
		t.entries = append(t.entries, e)
	}
	if last := t.entries[len(t.entries)-1]; !last.to.IsZero() && last.to.Before(checked) {
		return nil, fmt.Errorf("the last entry ends on %s, before checked_through %s: the days between have no rate", last.To, f.CheckedThrough)
	}
	for i, m := range f.Meetings {
		at := fmt.Sprintf("board meeting %d (%s)", i+1, m.Date)
		if m.day, err = term.ParseDate(m.Date); err != nil {
			return nil, fmt.Errorf("%s: date: want YYYY-MM-DD", at)
		}
		if m.Source == "" {
			return nil, fmt.Errorf("%s: every meeting needs its source", at)
		}
		if i > 0 && !m.day.After(t.meetings[i-1].day) {
			return nil, fmt.Errorf("%s: not after meeting %d (%s): the calendar is sorted, each day once", at, i, t.meetings[i-1].Date)
		}
		t.meetings = append(t.meetings, m)
	}
	return t, nil
}

// From is the first day the table covers.
func (t *Table) From() time.Time { return t.entries[0].from }

// CheckedThrough is the last day the table is known to be complete.
func (t *Table) CheckedThrough() time.Time { return t.checkedThrough }

// Rate is the key rate in force on the Moscow day of at, in basis points.
func (t *Table) Rate(at time.Time) (int64, error) {
	day := term.Today(at)
	for i := len(t.entries) - 1; i >= 0; i-- {
		e := t.entries[i]
		if !day.Before(e.from) {
			if !e.to.IsZero() && day.After(e.to) {
				break
			}
			return e.RateBP, nil
		}
	}
	return 0, fmt.Errorf("no key rate for %s: the table covers %s to %s", day.Format(time.DateOnly),
		t.entries[0].From, t.coverEnd())
}

func (t *Table) coverEnd() string {
	if last := t.entries[len(t.entries)-1]; last.To != "" {
		return last.To
	}
	return "today"
}

// Interest is interest computed for a span of days.
type Interest struct {
	Kopecks int64 `json:"kopecks"` // rounded once, half up
	Days    int   `json:"days"`
	// UncheckedDays fall after the table's checked_through date: they were computed at
	// the last known rate and may change when the table is updated.
	UncheckedDays int `json:"unchecked_days,omitempty"`
}

// Interest on amount kopecks for each Moscow day from first to last inclusive, at the
// rate in force on each day divided by the days of that day's year (art. 78 p.10; see
// the package doc). An empty span (last before first) owes nothing.
func (t *Table) Interest(amount int64, first, last time.Time) (Interest, error) {
	if amount < 0 {
		return Interest{}, fmt.Errorf("interest on a negative amount")
	}
	var res Interest
	sum := new(big.Rat)
	for day, end := term.Today(first), term.Today(last); !day.After(end); day = day.AddDate(0, 0, 1) {
		rate, err := t.Rate(day)
		if err != nil {
			return Interest{}, err
		}
		// amount × rate/10 000 / days-in-year, exactly
		sum.Add(sum, new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(amount), big.NewInt(rate)),
			big.NewInt(10_000*int64(daysInYear(day.Year())))))
		res.Days++
		if day.After(t.checkedThrough) {
			res.UncheckedDays++
		}
	}
	res.Kopecks = roundHalfUp(sum)
	return res, nil
}

// LateRefund is the interest on a refund whose term ended at deadline (term.Result.End,
// 24:00 Moscow of the last day) and that was paid at paidAt: nothing when paid in time;
// otherwise each day from the one starting at deadline to the day of payment inclusive.
func (t *Table) LateRefund(amount int64, deadline, paidAt time.Time) (Interest, error) {
	if paidAt.Before(deadline) {
		return Interest{}, nil
	}
	return t.Interest(amount, deadline, paidAt)
}

func daysInYear(y int) int {
	if time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC).YearDay() == 366 {
		return 366
	}
	return 365
}

// roundHalfUp rounds a non-negative rational to the nearest integer, halves up.
func roundHalfUp(r *big.Rat) int64 {
	num := new(big.Int).Mul(r.Num(), big.NewInt(2))
	num.Add(num, r.Denom())
	den := new(big.Int).Mul(r.Denom(), big.NewInt(2))
	return new(big.Int).Quo(num, den).Int64() // floor((2n + d) / 2d) = floor(n/d + 1/2)
}
