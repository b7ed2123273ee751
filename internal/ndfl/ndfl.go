// Package ndfl checks a 3-НДФЛ declaration: required fields, INN, period, and the
// arithmetic (incomes by tax base, deductions within their limits and backed by
// documents, the tax on each base at the rates of the period, tax withheld, tax payable
// or refundable). Every problem names its field. Amounts are kopecks.
//
// The rules, by period (Tax Code, chapter 23):
//
//   - Bases. 2023–2024: incomes from the sale of property, gifts and insurance payments
//     are taxed at 13 % whatever their size; every other income at 13 %, and 15 % on the
//     part above 5 M ₽ (art. 224 p.1). From 2025 the main base (salary, contracts,
//     business, other) is taxed on the 5-step scale 13/15/18/20/22 % at 2.4/5/20/50 M ₽
//     (art. 224 p.1), and the sale of property, gifts, insurance payments and securities
//     form separate bases (art. 210 p.2.1) taxed together at 13 % up to 2.4 M ₽ and 15 %
//     above (art. 224 p.1.1), with dividends (art. 214) and deposit interest (art. 214.2):
//     a threshold of their own, independent of the main scale's. In 2023–2024 dividends
//     and securities were bases of their own sharing the main scale's 5 M threshold, and
//     deposit interest was part of the main base. Deposit interest is taxed above 1 M ₽ ×
//     the highest key rate on the 1st of a month of the year (art. 214.2 p.1).
//   - Deductions (art. 218–220, 219.1) are declared as the actual expenses and applied
//     as min(expenses, limit): expenses above a limit are not an error (the sheet asks
//     for what was spent). They reduce the main base; what exceeds it reduces the
//     bases of property sale, gifts and insurance (art. 210 p.3) — in 2023–2024 those
//     incomes were part of the main base, which comes to the same. The property-sale
//     deduction (art. 220 p.1 subp.1, p.2) reduces only the sale income. The unused part
//     of a property-purchase or mortgage-interest deduction carries over to the next
//     years (art. 220 p.9); any other unused deduction is lost.
//   - Rounding (art. 52 p.6): the exact tax of each tax base (the main base on its scale;
//     the separate bases together on theirs) is rounded to full roubles once — less than
//     50 kopecks dropped, 50 and more rounded up — and each is paid on its own budget
//     line; the declaration's tax is their sum.
//   - Periods: a past year in Moscow time; a refund or a deduction only for the 3
//     preceding years (art. 78 p.7).
package ndfl

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/term"
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
	// Kind: salary, contract, business, other (the main base); property_sale, gift,
	// insurance, securities, dividends, deposit_interest (the separate bases of art. 210
	// p.2.1 from 2025; see the package doc for 2023–2024). For deposit_interest: all the
	// interest of the year; the non-taxable amount is taken off here.
	Kind   string `json:"kind" xml:"kind"`
	Amount int64  `json:"amount_kopecks" xml:"amount_kopecks"`
	// Monthly optionally splits a main-base income by month (12 amounts, January first);
	// it decides for how many months the child deductions apply (art. 218 p.1 subp.4).
	// Without it the income is taken as earned evenly over the year.
	Monthly []int64 `json:"monthly_kopecks,omitempty" xml:"monthly_kopecks>month,omitempty"`
}

// Deduction is a tax deduction claimed [004:124]. Amount is what the taxpayer declares
// for the period: for a social, investment, property or mortgage-interest deduction the
// actual expenses (contributions, purchase price, interest paid), for the property-sale
// deduction "expenses" the documented purchase price; the deduction applied is the
// amount within the limit (art. 219–220), the rest is not an error.
type Deduction struct {
	// Kind: standard (art. 218), social (art. 219), investment (art. 219.1), property
	// (purchase of housing, art. 220 p.3), mortgage_interest (art. 220 p.4),
	// property_sale (art. 220 p.1 subp.1, p.2).
	Kind   string `json:"kind" xml:"kind"`
	Type   string `json:"type,omitempty" xml:"type,omitempty"` // see Types
	Amount int64  `json:"amount_kopecks" xml:"amount_kopecks"`
	// Months: a monthly standard deduction (children, self) claimed for so many months.
	Months int `json:"months,omitempty" xml:"months,omitempty"`
	// Child: the child's place among the taxpayer's children (1, 2, 3 …) for the standard
	// child deduction; the child's number for child education (a limit per child).
	Child int `json:"child,omitempty" xml:"child,omitempty"`
	// PriorUsed: property or mortgage-interest deduction already used in earlier years
	// (both limits are for life).
	PriorUsed int64    `json:"prior_used_kopecks,omitempty" xml:"prior_used_kopecks,omitempty"`
	Documents []string `json:"documents" xml:"documents>document"` // supporting documents (ids)
}

// Types of each deduction kind; "" is the first one listed (the generic case).
var Types = map[string][]string{
	"standard":          {"child", "disabled_child", "self_3000", "self_500", "gto"},
	"social":            {"", "treatment", "education", "fitness", "pension", "insurance", "qualification", "child_education", "expensive_treatment", "charity"},
	"investment":        {""},
	"property":          {""},
	"mortgage_interest": {""},
	"property_sale":     {"housing", "other", "expenses"},
}

// Band is one step of a progressive scale: income above From (kopecks) is taxed at RateBP.
type Band struct {
	From   int64
	RateBP int64
}

// Separate is the tax of the incomes outside the main scale (see the package doc).
type Separate struct {
	Kinds []string
	Scale []Band
}

// Limits are the deduction limits of a period, in kopecks (monthly ones per month).
type Limits struct {
	SocialCombined   int64   // art. 219 p.2: treatment, education, fitness, pension, insurance, qualification
	ChildEducation   int64   // art. 219 p.1 subp.2: per child
	CharityShareBP   int64   // art. 219 p.1 subp.1: of the income
	Investment       int64   // art. 219.1 p.3
	Property         int64   // art. 220 p.3 subp.1: for life
	MortgageInterest int64   // art. 220 p.4: for life
	SaleHousing      int64   // art. 220 p.2 subp.1: housing and land, a year
	SaleOther        int64   // art. 220 p.2 subp.1: other property, a year
	Child            []int64 // art. 218 p.1 subp.4: 1st, 2nd, 3rd and each next child, a month
	DisabledChild    int64   // art. 218 p.1 subp.4: a month, on top of the above
	ChildIncomeLimit int64   // art. 218 p.1 subp.4: main-base income since January
	Self3000         int64   // art. 218 p.1 subp.1, a month
	Self500          int64   // art. 218 p.1 subp.2, a month
	GTO              int64   // art. 218 p.1 subp.5 (from 2025), a year; 0: not available
}

// Rules are the rates and limits of tax periods, each by the first period it applies to.
type Rules struct {
	Scales    map[int][]Band
	Separates map[int]Separate
	Limits    map[int]Limits
	// DepositExempt: the deposit interest not taxed in a period, by the period itself
	// (art. 214.2 p.1: 1 M ₽ × the highest key rate on the 1st of a month of the year; it
	// is known only once the year has ended, so a period missing here is refused).
	DepositExempt map[int]int64
}

func rub(r int64) int64 { return r * 100 }

// exemptAll is a non-taxable amount no income reaches.
const exemptAll = int64(1) << 60

// DefaultRules: see the package doc for the rates; the limits are those of art. 218–220
// for 2023, 2024 (social 150 000 ₽, child education 110 000 ₽) and 2025 (children
// 1 400 / 2 800 / 6 000 ₽ with a 450 000 ₽ income limit; the GTO deduction).
func DefaultRules() Rules {
	l2023 := Limits{
		SocialCombined: rub(120_000), ChildEducation: rub(50_000), CharityShareBP: 2500, Investment: rub(400_000),
		Property: rub(2_000_000), MortgageInterest: rub(3_000_000), SaleHousing: rub(1_000_000), SaleOther: rub(250_000),
		Child: []int64{rub(1_400), rub(1_400), rub(3_000)}, DisabledChild: rub(12_000), ChildIncomeLimit: rub(350_000),
		Self3000: rub(3_000), Self500: rub(500),
	}
	l2024 := l2023
	l2024.SocialCombined, l2024.ChildEducation = rub(150_000), rub(110_000)
	l2025 := l2024
	l2025.Child, l2025.ChildIncomeLimit, l2025.GTO = []int64{rub(1_400), rub(2_800), rub(6_000)}, rub(450_000), rub(18_000)
	return Rules{
		Scales: map[int][]Band{
			2001: {{0, 1300}},
			2021: {{0, 1300}, {rub(5_000_000), 1500}},
			2025: {{0, 1300}, {rub(2_400_000), 1500}, {rub(5_000_000), 1800}, {rub(20_000_000), 2000}, {rub(50_000_000), 2200}},
		},
		Separates: map[int]Separate{
			2001: {Kinds: []string{"property_sale", "gift", "insurance"}, Scale: []Band{{0, 1300}}},
			2025: {Kinds: []string{"property_sale", "gift", "insurance", "securities", "dividends", "deposit_interest"}, Scale: []Band{{0, 1300}, {rub(2_400_000), 1500}}},
		},
		Limits: map[int]Limits{2001: l2023, 2024: l2024, 2025: l2025},
		// Key rate on the 1st of a month, highest: 2023 — 15 % (1 Nov, 1 Dec 2023); 2024 —
		// 21 % (1 Nov, 1 Dec 2024); 2025 — 21 % (1 Jan – 1 Jun 2025). 2021–2022: exempt in
		// full (Federal Law No. 67-FZ of 26.03.2022).
		DepositExempt: map[int]int64{2021: exemptAll, 2022: exemptAll, 2023: rub(150_000), 2024: rub(210_000), 2025: rub(210_000)},
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

// exact is the tax on base by scale, in kopecks × 10 000 (basis points), unrounded.
func exact(scale []Band, base int64) int64 {
	var tax int64
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
	return tax
}

// roubles rounds an exact tax (kopecks × 10 000) to full roubles once (art. 52 p.6):
// under 50 kopecks dropped, 50 and more rounded up. The result is in kopecks.
func roubles(exact int64) int64 {
	const rouble = 100 * 10_000
	return (exact + rouble/2) / rouble * 100
}

// Tax is the tax on a main base of the period, rounded to full roubles once (art. 52
// p.6): 1 003,81 ₽ × 13 % = 130,4953 ₽ → 130 ₽.
func (r Rules) Tax(base int64, period int) int64 {
	scale, _ := latest(r.Scales, period)
	return roubles(exact(scale, base))
}

// Computed is our arithmetic.
type Computed struct {
	Income     int64 `json:"income_kopecks"`
	Deductions int64 `json:"deductions_kopecks"` // the deductions applied this period
	Base       int64 `json:"base_kopecks"`       // MainBase + SeparateBase
	Tax        int64 `json:"tax_kopecks"`
	Withheld   int64 `json:"withheld_kopecks"`
	Payable    int64 `json:"payable_kopecks"`
	Refund     int64 `json:"refund_kopecks"`
	// MainBase is taxed on the progressive scale; SeparateBase at the separate rates.
	MainBase     int64 `json:"main_base_kopecks"`
	SeparateBase int64 `json:"separate_base_kopecks"`
	// Carryover: property and mortgage-interest deduction left for later years (art. 220 p.9).
	Carryover int64 `json:"carryover_kopecks,omitempty"`
	// MainTax and SeparateTax: the tax of each base, each in full roubles (art. 52 p.6);
	// Tax is their sum.
	MainTax     int64 `json:"main_tax_kopecks"`
	SeparateTax int64 `json:"separate_tax_kopecks"`
}

var mainKinds = map[string]bool{"salary": true, "contract": true, "business": true, "other": true}

// otherKinds are the incomes outside the main base: the separate bases of art. 210 p.2.1
// from 2025 (see Separate), and before it incomes at a flat 13 % (sale, gift, insurance),
// bases of their own on the main scale (securities, dividends) or, for deposit interest,
// part of the main base above the non-taxable amount (art. 214.2).
var otherKinds = map[string]bool{"property_sale": true, "gift": true, "insurance": true, "securities": true, "dividends": true, "deposit_interest": true}

// fixedKinds are never reduced by the deductions of art. 218–221 (art. 210 p.3).
var fixedKinds = map[string]bool{"securities": true, "dividends": true}

const incomeKindsText = "salary, contract, business, other, property_sale, gift, insurance, securities, dividends or deposit_interest"

// depositYears lists the periods whose deposit-interest non-taxable amount is on record.
func depositYears(m map[int]int64) string {
	years := slices.Sorted(maps.Keys(m))
	if len(years) == 0 {
		return "no period"
	}
	return fmt.Sprintf("%d-%d", years[0], years[len(years)-1])
}

// RefundWindowYears: a refund or a deduction is claimed for the 3 preceding years (art. 78 p.7).
const RefundWindowYears = 3

// Check validates the declaration; problems are empty when it passes. now decides which
// years are past, in Moscow time.
func (r Rules) Check(d Declaration, now time.Time) (Computed, []domain.FieldError) {
	var problems []domain.FieldError
	add := func(field, reason string) {
		problems = append(problems, domain.FieldError{Field: field, Reason: reason})
	}
	if err := domain.ValidateINN("inn", d.INN, true); err != nil {
		problems = append(problems, err.(domain.FieldError))
	}
	year := term.Year(now)
	if d.Period < 2001 || d.Period >= year {
		add("period", fmt.Sprintf("must be a past tax year, 2001-%d (Moscow time)", year-1))
	}
	if len(d.Incomes) == 0 {
		add("incomes", "at least one income is required")
	}
	sep, _ := latest(r.Separates, d.Period)
	separate := map[string]bool{}
	for _, k := range sep.Kinds {
		separate[k] = true
	}
	var c Computed
	// fixed: incomes deductions never reduce (art. 210 p.3), on the main scale (fixedMain)
	// or in the separate bases (sepFixed).
	var mainIncome, fixedMain, sepIncome, sepFixed, saleIncome, deposit int64
	depositAt := -1              // the first deposit-interest income, for a problem's field
	monthly := make([]int64, 12) // main-base income by month, for the child deductions
	for i, in := range d.Incomes {
		f := fmt.Sprintf("incomes[%d]", i)
		if in.Source == "" {
			add(f+".source", "must name the payer")
		}
		known := mainKinds[in.Kind] || otherKinds[in.Kind]
		if !known {
			add(f+".kind", "must be "+incomeKindsText)
		}
		if in.Amount <= 0 {
			add(f+".amount_kopecks", "must be greater than 0")
		}
		amount := max(in.Amount, 0)
		c.Income += amount
		switch {
		case !known:
		case in.Kind == "deposit_interest": // taxed above the year's non-taxable amount, below
			deposit += amount
			if depositAt < 0 {
				depositAt = i
			}
		case separate[in.Kind]:
			sepIncome += amount
			if in.Kind == "property_sale" {
				saleIncome += amount
			}
			if fixedKinds[in.Kind] {
				sepFixed += amount
			}
		case fixedKinds[in.Kind]:
			fixedMain += amount // on the main scale, but deductions never reduce it
		default:
			mainIncome += amount
			spread(monthly, in, amount, f, add)
		}
	}
	if deposit > 0 {
		// Art. 214.2 p.1: deposit interest is income above 1 M ₽ × the highest key rate
		// on the 1st of a month of the year; 2021–2022 interest is exempt (Federal Law
		// No. 67-FZ of 26.03.2022). In 2023–2024 it is part of the main base; from 2025 it
		// joins the separate bases (art. 224 p.1.1) and deductions never reduce it.
		exempt, ok := r.DepositExempt[d.Period]
		if !ok {
			add(fmt.Sprintf("incomes[%d].kind", depositAt), fmt.Sprintf("deposit interest is declared here for %s; for %d the non-taxable amount of art. 214.2 is not on record",
				depositYears(r.DepositExempt), d.Period))
		}
		taxable := max(deposit-exempt, 0)
		c.Income -= deposit - taxable
		if separate["deposit_interest"] {
			sepIncome += taxable
			sepFixed += taxable
		} else {
			mainIncome += taxable
		}
	}
	if d.Withheld < 0 {
		add("withheld_kopecks", "must not be negative")
	}
	limits, _ := latest(r.Limits, d.Period)
	ded := r.deductions(d, limits, c.Income, monthly, add)

	// The property-sale deduction reduces the sale income only (art. 220 p.2).
	saleDed := min(ded.sale, saleIncome)
	sepBase := sepIncome - saleDed
	// Every other deduction reduces the main base, then the bases of sale, gifts and
	// insurance (art. 210 p.3); securities, dividends (and, from 2025, deposit interest)
	// are never reduced by them.
	general := ded.lost + ded.carried
	mainBase := max(mainIncome-general, 0)
	rest := general - (mainIncome - mainBase)
	fromSep := min(rest, max(sepBase-sepFixed, 0))
	sepBase -= fromSep
	rest -= fromSep
	mainBase += fixedMain
	// What no base absorbed: the property deductions' part carries over (art. 220 p.9);
	// property deductions are applied last, so they are the first to be left over.
	c.Carryover = min(rest, ded.carried)
	c.Deductions = saleDed + general - rest
	c.MainBase, c.SeparateBase, c.Base = mainBase, sepBase, mainBase+sepBase

	// Art. 52 p.6 with art. 225: each tax base's tax in full roubles — the main base on
	// its scale, the separate bases together on theirs — each paid on its own budget line;
	// the total is their sum, never a rounding of the exact sum (the audit's 26 000 ₽ vs 26 001).
	scale, _ := latest(r.Scales, d.Period)
	c.MainTax, c.SeparateTax = roubles(exact(scale, mainBase)), roubles(exact(sep.Scale, sepBase))
	c.Tax = c.MainTax + c.SeparateTax
	c.Withheld = max(d.Withheld, 0)
	if c.Tax >= c.Withheld {
		c.Payable = c.Tax - c.Withheld
	} else {
		c.Refund = c.Withheld - c.Tax
	}
	if (c.Refund > 0 || len(d.Deductions) > 0) && d.Period < year-RefundWindowYears && d.Period >= 2001 {
		add("period", fmt.Sprintf("a refund or a deduction may be claimed for the %d preceding years only, %d-%d (Tax Code art. 78 p.7)",
			RefundWindowYears, year-RefundWindowYears, year-1))
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

// spread adds a main-base income to the months it was earned in.
func spread(monthly []int64, in Income, amount int64, f string, add func(string, string)) {
	if len(in.Monthly) == 0 {
		for m := range monthly {
			monthly[m] += amount / 12
		}
		monthly[11] += amount % 12
		return
	}
	var total int64
	for _, v := range in.Monthly {
		total += v
	}
	if len(in.Monthly) != 12 || total != amount {
		add(f+".monthly_kopecks", "must be 12 monthly amounts adding up to amount_kopecks")
		return
	}
	for m, v := range in.Monthly {
		monthly[m] += v
	}
}

// allowed sums the deductions that may be applied: lost (standard, social, investment:
// what the bases cannot absorb is lost), carried (property, mortgage interest) and sale.
type allowed struct{ lost, carried, sale int64 }

func (r Rules) deductions(d Declaration, l Limits, income int64, monthly []int64, add func(string, string)) allowed {
	var a allowed
	var social, saleHousing, saleOther, charity, investment, property, mortgage int64
	childEducation := map[int]int64{}
	eligible := childMonths(monthly, l.ChildIncomeLimit)
	for i, dd := range d.Deductions {
		f := fmt.Sprintf("deductions[%d]", i)
		types, known := Types[dd.Kind]
		switch {
		case !known:
			add(f+".kind", "must be standard, social, investment, property, mortgage_interest or property_sale")
			continue
		case !slices.Contains(types, dd.Type):
			add(f+".type", fmt.Sprintf("a %s deduction's type must be one of %q", dd.Kind, types))
			continue
		case dd.Amount <= 0:
			add(f+".amount_kopecks", "must be greater than 0")
			continue
		case len(dd.Documents) == 0:
			add(f+".documents", "a deduction needs supporting documents [004:124]")
		}
		// The sheet asks for the actual expenses; the deduction is min(expenses, limit)
		// (art. 219 p.1, 2; art. 219.1 p.3; art. 220 p.2, 3, 4). Expenses above a limit are
		// not an error: the part above it is simply not deducted.
		capped := func(sum *int64, limit int64) int64 {
			before := *sum
			*sum += dd.Amount
			return max(min(*sum, limit)-min(before, limit), 0)
		}
		amount := dd.Amount
		switch dd.Kind {
		case "standard":
			amount = r.standard(dd, l, eligible, f, add)
		case "social":
			switch dd.Type {
			case "expensive_treatment": // art. 219 p.2: no limit
			case "child_education": // art. 219 p.1 subp.2: a limit per child
				if dd.Child <= 0 {
					add(f+".child", "name the child (1, 2 …): the limit is per child (art. 219 p.1 subp.2)")
				}
				sum := childEducation[dd.Child]
				amount = capped(&sum, l.ChildEducation)
				childEducation[dd.Child] = sum
			case "charity": // art. 219 p.1 subp.1: 25 % of the income
				amount = capped(&charity, income*l.CharityShareBP/10_000)
			default: // art. 219 p.2: one limit for them all
				amount = capped(&social, l.SocialCombined)
			}
		case "investment": // art. 219.1 p.3
			amount = capped(&investment, l.Investment)
		case "property", "mortgage_interest": // art. 220 p.3, 4: for life
			limit, sum := l.Property, &property
			if dd.Kind == "mortgage_interest" {
				limit, sum = l.MortgageInterest, &mortgage
			}
			if dd.PriorUsed < 0 || dd.PriorUsed > limit {
				add(f+".prior_used_kopecks", fmt.Sprintf("must be 0-%s", domain.Kopecks(limit)))
				amount = 0
			} else {
				amount = capped(sum, limit-dd.PriorUsed)
			}
		case "property_sale": // art. 220 p.2 subp.1: a year
			switch dd.Type {
			case "housing":
				amount = capped(&saleHousing, l.SaleHousing)
			case "other":
				amount = capped(&saleOther, l.SaleOther)
			}
		}
		switch dd.Kind {
		case "property", "mortgage_interest":
			a.carried += amount
		case "property_sale":
			a.sale += amount
		default:
			a.lost += amount
		}
	}
	return a
}

// standard checks a standard deduction (art. 218) and returns what may be applied.
func (r Rules) standard(dd Deduction, l Limits, eligible int, f string, add func(string, string)) int64 {
	var monthly int64
	switch dd.Type {
	case "gto":
		if l.GTO == 0 {
			add(f+".type", "the GTO deduction exists from the 2025 period (art. 218 p.1 subp.5)")
			return 0
		}
		if dd.Amount > l.GTO {
			add(f+".amount_kopecks", fmt.Sprintf("the GTO deduction is %s a year (art. 218 p.1 subp.5)", domain.Kopecks(l.GTO)))
			return l.GTO
		}
		return dd.Amount
	case "self_3000":
		monthly = l.Self3000
	case "self_500":
		monthly = l.Self500
	case "child", "disabled_child":
		if dd.Child <= 0 {
			add(f+".child", "give the child's place among the children: 1, 2, 3 … (art. 218 p.1 subp.4)")
			return 0
		}
		monthly = l.Child[min(dd.Child, len(l.Child))-1]
		if dd.Type == "disabled_child" {
			monthly = l.DisabledChild
		}
		if dd.Months > eligible {
			add(f+".months", fmt.Sprintf("the child deduction stops in the month the income since January passes %s: %d months (art. 218 p.1 subp.4)",
				domain.Kopecks(l.ChildIncomeLimit), eligible))
		}
	}
	if dd.Months < 1 || dd.Months > 12 {
		add(f+".months", "must be 1-12")
		return 0
	}
	months := dd.Months
	if dd.Type == "child" || dd.Type == "disabled_child" {
		months = min(months, eligible)
	}
	if dd.Amount > monthly*int64(dd.Months) {
		add(f+".amount_kopecks", fmt.Sprintf("is more than %s a month for %d months (art. 218)", domain.Kopecks(monthly), dd.Months))
	}
	return min(dd.Amount, monthly*int64(months))
}

// childMonths counts the months, from January, while the main-base income since January
// stays within the limit (art. 218 p.1 subp.4).
func childMonths(monthly []int64, limit int64) int {
	var cum int64
	for m, v := range monthly {
		cum += v
		if cum > limit {
			return m
		}
	}
	return 12
}
