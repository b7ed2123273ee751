package duedates

import (
	"strconv"
	"strings"
	"testing"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/term"
)

const inn = "500100732259"

// Tax Code art. 409 p.1, 363 p.1, 397 p.1 (property taxes: 1 December), art. 229 p.1
// (3-NDFL filed by 30 April), art. 228 p.4 (paid by 15 July), each of the year after the
// period and moved off a non-working day by art. 6.1 p.7.
func TestDueDates(t *testing.T) {
	s, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		id          string
		period      int
		want        string
		provisional bool
	}{
		{"property-tax", 2025, "2026-12-01", false},
		{"transport-tax", 2025, "2026-12-01", false},
		{"land-tax", 2025, "2026-12-01", false},
		{"ndfl-declaration", 2025, "2026-04-30", false}, // a short day is still a working day
		{"ndfl-payment", 2025, "2026-07-15", false},
		{"property-tax", 2023, "2024-12-02", true},      // 1 Dec 2024 is a Sunday
		{"ndfl-declaration", 2027, "2028-05-02", true},  // 30 Apr 2028 Sunday, 1 May holiday
		{"ndfl-payment", 2028, "2029-07-16", true},      // 15 Jul 2029 is a Sunday
		{"ndfl-declaration", 2024, "2025-04-30", false}, // decree No. 1335: a working day
	}
	for _, c := range cases {
		due, _, err := s.Due(term.Default(), c.id, c.period)
		if err != nil || due.LastDay.Format("2006-01-02") != c.want || due.IsProvisional() != c.provisional {
			t.Errorf("%s %d: due %s provisional %v %v; want %s provisional %v", c.id, c.period, due.LastDay.Format("2006-01-02"),
				due.IsProvisional(), err, c.want, c.provisional)
		}
	}
	if _, _, err := s.Due(term.Default(), "property-tax", 2010); err == nil {
		t.Error("a period before the rule accepted")
	}
}

// The issue: "nothing creates obligations". The obligations of a period for a taxpayer.
func TestObligationsOfAPeriod(t *testing.T) {
	s, _ := Open("")
	obs, err := s.Obligations(term.Default(), inn, 2025, map[string]int64{"property-tax": 250_000})
	if err != nil || len(obs) != 5 {
		t.Fatalf("%d obligations %v", len(obs), err)
	}
	again, _ := s.Obligations(term.Default(), inn, 2025, nil)
	for i, o := range obs {
		if o.ObligationID != again[i].ObligationID {
			t.Errorf("ids are not stable: %s vs %s", o.ObligationID, again[i].ObligationID)
		}
		if strings.Contains(o.ObligationID, inn) {
			t.Errorf("the obligation id %s carries the INN", o.ObligationID)
		}
		if o.Status != contract.ObligationDue || o.Paid() || o.Period != 2025 || o.Basis == "" || o.DueMonth != o.DueDate[:7] {
			t.Errorf("obligation %+v", o)
		}
	}
	if obs[0].Tax != "property" || obs[0].Amount != 250_000 || obs[0].DueDate != "2026-12-01" || obs[0].Kind != "payment" {
		t.Errorf("property tax %+v", obs[0])
	}
	if obs[3].Kind != "report" || obs[3].DueDate != "2026-04-30" {
		t.Errorf("declaration %+v", obs[3])
	}
	other, _ := s.Obligations(term.Default(), "7707083893", 2025, nil, "ndfl-payment")
	if len(other) != 1 || other[0].ObligationID == obs[4].ObligationID {
		t.Errorf("two taxpayers share an obligation id: %+v", other)
	}
	if _, err := s.Obligations(term.Default(), inn, 2025, nil, "church-tax"); err == nil {
		t.Error("an unknown obligation accepted")
	}
}

// A gap, an overlap or an unsorted entry stops the process with a clear message.
func TestParseRejectsBadSchedules(t *testing.T) {
	rule := func(id string, first, last, month, day int, tax, source string) string {
		return `{"id":"` + id + `","tax":"` + tax + `","kind":"payment","month":` + itoa(month) + `,"day":` + itoa(day) +
			`,"years_after":1,"first_period":` + itoa(first) + `,"last_period":` + itoa(last) + `,"source":"` + source + `"}`
	}
	cases := []struct{ name, body, want string }{
		{"gap", rule("p", 2010, 2014, 10, 1, "property", "s") + "," + rule("p", 2016, 0, 12, 1, "property", "s"), "gap: periods 2015-2015 of p"},
		{"overlap", rule("p", 2010, 2015, 10, 1, "property", "s") + "," + rule("p", 2015, 0, 12, 1, "property", "s"), "overlaps"},
		{"open then more", rule("p", 2010, 0, 10, 1, "property", "s") + "," + rule("p", 2016, 0, 12, 1, "property", "s"), "overlaps"},
		{"unsorted", rule("p", 2016, 0, 12, 1, "property", "s") + "," + rule("p", 2010, 2015, 10, 1, "property", "s"), "not sorted"},
		{"29 February", rule("p", 2016, 0, 2, 29, "property", "s"), "not a date of every year"},
		{"31 April", rule("p", 2016, 0, 4, 31, "property", "s"), "not a date of every year"},
		{"no source", rule("p", 2016, 0, 12, 1, "property", ""), "needs its source"},
		{"unknown tax", rule("p", 2016, 0, 12, 1, "vat", "s"), "tax \"vat\""},
	}
	for _, c := range cases {
		_, err := Parse([]byte(`{"description":"t","dates":[` + c.body + `]}`))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	good := rule("p", 2010, 2014, 10, 1, "property", "s") + "," + rule("p", 2015, 0, 12, 1, "property", "s")
	s, err := Parse([]byte(`{"description":"t","dates":[` + good + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Rule("p", 2014); r.Month != 10 {
		t.Errorf("2014 uses %+v", r)
	}
	if r, _ := s.Rule("p", 2025); r.Month != 12 {
		t.Errorf("2025 uses %+v", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
