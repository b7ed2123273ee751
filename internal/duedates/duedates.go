// Package duedates holds the statutory due dates of an individual's tax obligations as
// data (data/due-dates.json, each entry with its article) and generates the obligations
// of a tax period for a taxpayer, each due date moved off non-working days by art. 6.1
// p.7 (internal/term).
//
// Load the schedule at start (Open) and stop the process on its error. Generating
// obligations reads the production calendar, so a workflow does it in an activity (or
// in workflow.SideEffect) and stores the result; the obligations then live in the
// "obligations" table that the reminder sweep reads [000:248, 002:349, 004:32].
package duedates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/term"
)

//go:embed data/due-dates.json
var embedded embed.FS

// EmbeddedFile is the path of the shipped schedule inside the module.
const EmbeddedFile = "internal/duedates/data/due-dates.json"

// Rule is one statutory due date.
type Rule struct {
	ID          string `json:"id"`
	Tax         string `json:"tax"`
	Kind        string `json:"kind"` // payment | report
	Month       int    `json:"month"`
	Day         int    `json:"day"`
	YearsAfter  int    `json:"years_after"`
	FirstPeriod int    `json:"first_period"`
	LastPeriod  int    `json:"last_period"` // 0: until further notice
	Source      string `json:"source"`
}

type file struct {
	Description string `json:"description"`
	Dates       []Rule `json:"dates"`
}

// Schedule is a validated set of rules.
type Schedule struct{ rules []Rule }

var taxes = map[string]bool{"ndfl": true, "property": true, "transport": true, "land": true}

// Open loads the schedule from path, or the embedded one when path is empty.
func Open(path string) (*Schedule, error) {
	var b []byte
	var err error
	name := path
	if path == "" {
		name = EmbeddedFile
		b, err = embedded.ReadFile("data/due-dates.json")
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("due dates %s: %w", name, err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("due dates %s: %w", name, err)
	}
	return s, nil
}

// Parse reads and validates a schedule: known taxes and kinds; a day that exists in
// every year (never 29 February); a source for every rule; the rules of one id sorted by
// first period and covering consecutive periods, with no gap and no overlap; only the
// last rule of an id may be open-ended.
func Parse(b []byte) (*Schedule, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a due-date schedule: %w", err)
	}
	if len(f.Dates) == 0 {
		return nil, errors.New("no due dates")
	}
	last := map[string]Rule{}
	for i, r := range f.Dates {
		at := fmt.Sprintf("entry %d (%s from %d)", i+1, r.ID, r.FirstPeriod)
		switch {
		case r.ID == "":
			return nil, fmt.Errorf("entry %d: id is empty", i+1)
		case !taxes[r.Tax]:
			return nil, fmt.Errorf("%s: tax %q: want ndfl, property, transport or land", at, r.Tax)
		case r.Kind != contract.ObligationPayment && r.Kind != contract.ObligationReport:
			return nil, fmt.Errorf("%s: kind %q: want payment or report", at, r.Kind)
		case r.Month < 1 || r.Month > 12 || r.Day < 1 || r.Day > time.Date(2023, time.Month(r.Month)+1, 0, 0, 0, 0, 0, time.UTC).Day():
			return nil, fmt.Errorf("%s: %02d-%02d is not a date of every year", at, r.Month, r.Day)
		case r.YearsAfter < 0 || r.YearsAfter > 3:
			return nil, fmt.Errorf("%s: years_after %d: want 0-3", at, r.YearsAfter)
		case r.FirstPeriod < 2000 || r.FirstPeriod > 2100:
			return nil, fmt.Errorf("%s: first_period %d: want a year", at, r.FirstPeriod)
		case r.LastPeriod != 0 && r.LastPeriod < r.FirstPeriod:
			return nil, fmt.Errorf("%s: last_period %d before first_period", at, r.LastPeriod)
		case r.Source == "":
			return nil, fmt.Errorf("%s: every due date needs its source", at)
		}
		if prev, seen := last[r.ID]; seen {
			switch {
			case r.FirstPeriod <= prev.FirstPeriod:
				return nil, fmt.Errorf("%s: not sorted: an earlier entry of %s starts in %d", at, r.ID, prev.FirstPeriod)
			case prev.LastPeriod == 0 || r.FirstPeriod <= prev.LastPeriod:
				return nil, fmt.Errorf("%s: overlaps the entry of %s from %d", at, r.ID, prev.FirstPeriod)
			case r.FirstPeriod > prev.LastPeriod+1:
				return nil, fmt.Errorf("%s: gap: periods %d-%d of %s have no due date", at, prev.LastPeriod+1, r.FirstPeriod-1, r.ID)
			}
		}
		last[r.ID] = r
	}
	return &Schedule{rules: f.Dates}, nil
}

// IDs lists the obligation ids the schedule knows, in file order.
func (s *Schedule) IDs() []string {
	var out []string
	for _, r := range s.rules {
		if !slices.Contains(out, r.ID) {
			out = append(out, r.ID)
		}
	}
	return out
}

// Rule returns the rule of id for a period.
func (s *Schedule) Rule(id string, period int) (Rule, bool) {
	for _, r := range s.rules {
		if r.ID == id && period >= r.FirstPeriod && (r.LastPeriod == 0 || period <= r.LastPeriod) {
			return r, true
		}
	}
	return Rule{}, false
}

// Due is the due date of one obligation for a period, moved off non-working days.
func (s *Schedule) Due(t term.Terms, id string, period int) (term.Result, Rule, error) {
	r, ok := s.Rule(id, period)
	if !ok {
		return term.Result{}, Rule{}, fmt.Errorf("no due date of %s for the period %d", id, period)
	}
	return t.DueDate(term.Date(period+r.YearsAfter, time.Month(r.Month), r.Day)), r, nil
}

// Obligations generates the obligations of one tax period for a taxpayer: one for each
// id asked for (all the schedule knows when none are). amounts gives the amount of each
// id where it is known (kopecks; a report has none). The obligation id is derived from
// the taxpayer, the rule and the period without the INN itself, so generating twice
// gives the same ids (store them with a conditional put).
func (s *Schedule) Obligations(t term.Terms, inn string, period int, amounts map[string]int64, ids ...string) ([]contract.Obligation, error) {
	if len(ids) == 0 {
		ids = s.IDs()
	}
	out := make([]contract.Obligation, 0, len(ids))
	for _, id := range ids {
		due, r, err := s.Due(t, id, period)
		if err != nil {
			return nil, err
		}
		out = append(out, contract.Obligation{
			ObligationID: fmt.Sprintf("%s#%d#%s", id, period, ref(inn)),
			INN:          inn, Tax: r.Tax, Kind: r.Kind, Period: period, Amount: amounts[id],
			DueDate: due.LastDay.Format(time.DateOnly), DueMonth: due.LastDay.Format("2006-01"),
			Status: contract.ObligationDue, Basis: r.Source, DueProvisional: due.IsProvisional(),
		})
	}
	return out, nil
}

// ref names a taxpayer in ids without the INN: a hash, stable across runs.
func ref(inn string) string {
	sum := sha256.Sum256([]byte("taxflow-obligation:" + inn))
	return hex.EncodeToString(sum[:8])
}
