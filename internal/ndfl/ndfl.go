// Package ndfl checks a 3-НДФЛ declaration: required fields, INN, period, and the
// arithmetic (income, deductions within their limits and backed by documents, tax base,
// tax on the progressive scale of the period, tax withheld, tax payable or refundable).
// Every problem names its field. Amounts are kopecks.
package ndfl

import (
	"fmt"
	"time"

	"github.com/taxflow/taxflow/internal/domain"
)

// Declaration is the structured 3-НДФЛ the taxpayer submits (JSON, or XML with the same names).
type Declaration struct {
	INN        string      `json:"inn" xml:"inn"`
	Period     int         `json:"period" xml:"period"`
	Incomes    []Income    `json:"incomes" xml:"incomes>income"`
	Withheld   int64       `json:"withheld_kopecks" xml:"withheld_kopecks"`
	Deductions []Deduction `json:"deductions,omitempty" xml:"deductions>deduction"`
	// What the taxpayer computed; checked against our arithmetic.
	DeclaredTax    int64 `json:"declared_tax_kopecks" xml:"declared_tax_kopecks"`
	DeclaredRefund int64 `json:"declared_refund_kopecks" xml:"declared_refund_kopecks"`
}

// Income is one source of income [004:122].
type Income struct {
	Source string `json:"source" xml:"source"` // employer or payer name
	Kind   string `json:"kind" xml:"kind"`     // salary, contract, business, other
	Amount int64  `json:"amount_kopecks" xml:"amount_kopecks"`
}

// Deduction is a tax deduction claimed [004:124].
type Deduction struct {
	Kind      string   `json:"kind" xml:"kind"` // social, property, investment
	Amount    int64    `json:"amount_kopecks" xml:"amount_kopecks"`
	Documents []string `json:"documents" xml:"documents>document"` // supporting documents (ids)
}

// Band is one step of a progressive scale: income above From (kopecks) is taxed at RateBP.
type Band struct {
	From   int64
	RateBP int64
}

// Rules are the rates and limits of tax periods.
type Rules struct {
	// Scales by the first period they apply to.
	Scales map[int][]Band
	// Limits of deductions by kind, by the first period they apply to (kopecks).
	Limits map[int]map[string]int64
}

// DefaultRules: 13 % / 15 % above 5 M ₽ (2021-2024); from 2025 13 / 15 / 18 / 20 / 22 %
// at 2.4 / 5 / 20 / 50 M ₽. Social deduction 120 000 ₽ (150 000 ₽ from 2024), property
// 2 000 000 ₽, investment 400 000 ₽.
func DefaultRules() Rules {
	rub := func(r int64) int64 { return r * 100 }
	return Rules{
		Scales: map[int][]Band{
			2001: {{0, 1300}},
			2021: {{0, 1300}, {rub(5_000_000), 1500}},
			2025: {{0, 1300}, {rub(2_400_000), 1500}, {rub(5_000_000), 1800}, {rub(20_000_000), 2000}, {rub(50_000_000), 2200}},
		},
		Limits: map[int]map[string]int64{
			2001: {"social": rub(120_000), "property": rub(2_000_000), "investment": rub(400_000)},
			2024: {"social": rub(150_000), "property": rub(2_000_000), "investment": rub(400_000)},
		},
	}
}

func latest[T any](m map[int]T, period int) (T, bool) {
	best, found := 0, false
	var out T
	for from, v := range m {
		if from <= period && from > best {
			best, out, found = from, v, true
		}
	}
	return out, found
}

// Tax computes the tax on a base with the scale of the period, rounded to whole roubles
// as the Tax Code requires (art. 52: amounts of tax in full roubles).
func (r Rules) Tax(base int64, period int) int64 {
	scale, _ := latest(r.Scales, period)
	var tax int64 // in kopecks × 10 000 (rate basis points) until the end
	for i, b := range scale {
		if base <= b.From {
			break
		}
		top := base
		if i+1 < len(scale) && scale[i+1].From < base {
			top = scale[i+1].From
		}
		tax += (top - b.From) * b.RateBP
	}
	kopecks := (tax + 5_000) / 10_000
	return (kopecks + 50) / 100 * 100 // round half up to full roubles
}

// Computed is our arithmetic.
type Computed struct {
	Income     int64 `json:"income_kopecks"`
	Deductions int64 `json:"deductions_kopecks"`
	Base       int64 `json:"base_kopecks"`
	Tax        int64 `json:"tax_kopecks"`
	Withheld   int64 `json:"withheld_kopecks"`
	Payable    int64 `json:"payable_kopecks"`
	Refund     int64 `json:"refund_kopecks"`
}

var incomeKinds = map[string]bool{"salary": true, "contract": true, "business": true, "other": true}

// Check validates the declaration; problems are empty when it passes.
func (r Rules) Check(d Declaration, now time.Time) (Computed, []domain.FieldError) {
	var problems []domain.FieldError
	add := func(field, reason string) {
		problems = append(problems, domain.FieldError{Field: field, Reason: reason})
	}
	if err := domain.ValidateINN("inn", d.INN, true); err != nil {
		problems = append(problems, err.(domain.FieldError))
	}
	if d.Period < 2001 || d.Period >= now.Year() {
		add("period", fmt.Sprintf("must be a past tax year, 2001-%d", now.Year()-1))
	}
	if len(d.Incomes) == 0 {
		add("incomes", "at least one income is required")
	}
	var c Computed
	for i, in := range d.Incomes {
		f := fmt.Sprintf("incomes[%d]", i)
		if in.Source == "" {
			add(f+".source", "must name the payer")
		}
		if !incomeKinds[in.Kind] {
			add(f+".kind", "must be salary, contract, business or other")
		}
		if in.Amount <= 0 {
			add(f+".amount_kopecks", "must be greater than 0")
		}
		c.Income += max(in.Amount, 0)
	}
	if d.Withheld < 0 {
		add("withheld_kopecks", "must not be negative")
	}
	limits, _ := latest(r.Limits, d.Period)
	byKind := map[string]int64{}
	for i, dd := range d.Deductions {
		f := fmt.Sprintf("deductions[%d]", i)
		limit, known := limits[dd.Kind]
		switch {
		case !known:
			add(f+".kind", "must be social, property or investment")
			continue
		case dd.Amount <= 0:
			add(f+".amount_kopecks", "must be greater than 0")
			continue
		case len(dd.Documents) == 0:
			add(f+".documents", "a deduction needs supporting documents [004:124]")
		}
		byKind[dd.Kind] += dd.Amount
		if byKind[dd.Kind] > limit {
			add(f+".amount_kopecks", fmt.Sprintf("%s deductions exceed the limit of %s for %d", dd.Kind, domain.Kopecks(limit), d.Period))
		}
		c.Deductions += dd.Amount
	}
	c.Deductions = min(c.Deductions, c.Income)
	c.Base = c.Income - c.Deductions
	c.Tax = r.Tax(c.Base, d.Period)
	c.Withheld = max(d.Withheld, 0)
	if c.Tax >= c.Withheld {
		c.Payable = c.Tax - c.Withheld
	} else {
		c.Refund = c.Withheld - c.Tax
	}
	if len(problems) == 0 {
		if d.DeclaredTax != c.Tax {
			add("declared_tax_kopecks", fmt.Sprintf("does not match the tax computed from the figures: %s", domain.Kopecks(c.Tax)))
		}
		if d.DeclaredRefund != c.Refund {
			add("declared_refund_kopecks", fmt.Sprintf("does not match the refund computed from the figures: %s", domain.Kopecks(c.Refund)))
		}
	}
	return c, problems
}
