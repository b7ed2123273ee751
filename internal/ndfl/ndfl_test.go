package ndfl

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// Cases worked out by hand.
func TestTaxGolden(t *testing.T) {
	r := DefaultRules()
	cases := []struct {
		base   int64
		period int
		want   int64
	}{
		// 1 000 000 ₽ × 13 % = 130 000 ₽
		{rub(1_000_000), 2025, rub(130_000)},
		// 2025: 2 400 000 × 13 % = 312 000; 600 000 × 15 % = 90 000 → 402 000 ₽
		{rub(3_000_000), 2025, rub(402_000)},
		// 2025: 312 000 + 2 600 000 × 15 % (390 000) + 1 000 000 × 18 % (180 000) = 882 000 ₽
		{rub(6_000_000), 2025, rub(882_000)},
		// 2024: 3 000 000 × 13 % = 390 000 ₽ (15 % only above 5 M)
		{rub(3_000_000), 2024, rub(390_000)},
		// 2024: 5 000 000 × 13 % = 650 000; 1 000 000 × 15 % = 150 000 → 800 000 ₽
		{rub(6_000_000), 2024, rub(800_000)},
		// 2020: flat 13 %: 6 000 000 × 13 % = 780 000 ₽
		{rub(6_000_000), 2020, rub(780_000)},
		// rounding to full roubles: 1 234,56 ₽ × 13 % = 160,4928 ₽ → 160 ₽
		{123_456, 2025, rub(160)},
		// 1 238,47 ₽ × 13 % = 161,0011 → 161 ₽; 1 242,31 × 13 % = 161,5003 → 162 ₽
		{123_847, 2025, rub(161)},
		{124_231, 2025, rub(162)},
		{0, 2025, 0},
	}
	for _, c := range cases {
		if got := r.Tax(c.base, c.period); got != c.want {
			t.Errorf("tax on %d kopecks in %d = %d, want %d", c.base, c.period, got, c.want)
		}
	}
}

func valid() Declaration {
	// Salary 1 200 000 ₽, 156 000 ₽ withheld (13 %); social deduction 100 000 ₽:
	// base 1 100 000, tax 143 000, refund 13 000 ₽.
	return Declaration{INN: "500100732259", Period: 2025,
		Incomes:     []Income{{Source: "ООО Ромашка", Kind: "salary", Amount: rub(1_200_000)}},
		Withheld:    rub(156_000),
		Deductions:  []Deduction{{Kind: "social", Amount: rub(100_000), Documents: []string{"receipt-1"}}},
		DeclaredTax: rub(143_000), DeclaredRefund: rub(13_000)}
}

func TestCheckValid(t *testing.T) {
	c, problems := DefaultRules().Check(valid(), now)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := Computed{Income: rub(1_200_000), Deductions: rub(100_000), Base: rub(1_100_000), MainBase: rub(1_100_000), Tax: rub(143_000), MainTax: rub(143_000), Withheld: rub(156_000), Refund: rub(13_000)}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

func TestCheckProblemsByField(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Declaration)
		field  string
		reason string
	}{
		{"inn", func(d *Declaration) { d.INN = "500100732258" }, "inn", "check digits"},
		{"future period", func(d *Declaration) { d.Period = 2026 }, "period", "past tax year"},
		{"no income", func(d *Declaration) { d.Incomes = nil }, "incomes", "at least one"},
		{"income kind", func(d *Declaration) { d.Incomes[0].Kind = "lottery" }, "incomes[0].kind", "salary"},
		{"no documents", func(d *Declaration) { d.Deductions[0].Documents = nil }, "deductions[0].documents", "supporting documents"},
		{"wrong arithmetic", func(d *Declaration) { d.DeclaredTax = rub(140_000) }, "declared_tax_kopecks", "143000.00"},
		{"wrong refund", func(d *Declaration) { d.DeclaredRefund = rub(16_000) }, "declared_refund_kopecks", "13000.00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := valid()
			c.mutate(&d)
			_, problems := DefaultRules().Check(d, now)
			for _, p := range problems {
				if p.Field == c.field && strings.Contains(p.Reason, c.reason) {
					return
				}
			}
			t.Fatalf("want %s: %q, got %v", c.field, c.reason, problems)
		})
	}
}

// Art. 52 p.6: the exact tax is rounded to full roubles once. The issue: 1 003,81 ₽ ×
// 13 % = 130,4953 ₽ was rounded to 130,50 ₽ and then to 131 ₽.
func TestTaxRoundedOnceArt52p6(t *testing.T) {
	for _, c := range []struct {
		base, want int64
	}{
		{100_381, rub(130)}, // 130.4953 → 130 (the code gave 131)
		{100_385, rub(131)}, // 130.5005 → 131
		{384, 0},            // 0.4992 → 0
		{385, rub(1)},       // 0.5005 → 1
	} {
		if got := DefaultRules().Tax(c.base, 2025); got != c.want {
			t.Errorf("tax on %d kopecks = %d, want %d", c.base, got, c.want)
		}
	}
}

func decl(period int, incomes []Income, deductions ...Deduction) Declaration {
	return Declaration{INN: "500100732259", Period: period, Incomes: incomes, Deductions: deductions}
}

func salary(r int64) Income {
	return Income{Source: "ООО Ромашка", Kind: "salary", Amount: rub(r)}
}
func sale(r int64) Income {
	return Income{Source: "Покупатель", Kind: "property_sale", Amount: rub(r)}
}
func docs(d Deduction) Deduction { d.Documents = []string{"doc-1"}; return d }
func ded(kind, typ string, r int64) Deduction {
	return docs(Deduction{Kind: kind, Type: typ, Amount: rub(r)})
}

// Art. 210 p.2.1, art. 224 p.1, 1.1: from 2025 the sale of property is a separate base
// at 13/15 % (2.4 M ₽); the 5-step scale applies to the main base only. In 2023–2024 the
// sale is taxed at 13 % whatever its size.
func TestSeparateBasesArt210Art224(t *testing.T) {
	cases := []struct {
		name string
		d    Declaration
		tax  int64
	}{
		// The issue: salary 2 M + flat sale 10 M. Code: the scale on 12 M = 1 962 000.
		// Main 2 M × 13 % = 260 000; sale 2.4 M × 13 % + 7.6 M × 15 % = 312 000 + 1 140 000.
		{"2025 salary and sale", decl(2025, []Income{salary(2_000_000), sale(10_000_000)}), rub(1_712_000)},
		// 2024: 2 M × 13 % + 10 M × 13 % (the sale is outside the 5 M threshold) = 1 560 000.
		// Code: 5 M × 13 % + 7 M × 15 % = 1 700 000.
		{"2024 salary and sale", decl(2024, []Income{salary(2_000_000), sale(10_000_000)}), rub(1_560_000)},
		// 2025: a gift of 3 M and insurance of 1 M share the separate base with the sale.
		// 4 M: 2.4 M × 13 % + 1.6 M × 15 % = 312 000 + 240 000 = 552 000; salary 1 M: 130 000.
		{"2025 gift and insurance", decl(2025, []Income{salary(1_000_000), {Source: "Даритель", Kind: "gift", Amount: rub(3_000_000)},
			{Source: "СК", Kind: "insurance", Amount: rub(1_000_000)}}), rub(682_000)},
	}
	for _, c := range cases {
		got, problems := DefaultRules().Check(c.d, now)
		if got.Tax != c.tax {
			t.Errorf("%s: tax %d, want %d (%+v %v)", c.name, got.Tax, c.tax, got, problems)
		}
	}
}

// Deductions of art. 218–220 and their limits; art. 78 p.7 (3 preceding years); Moscow year.
func TestDeductionRules(t *testing.T) {
	cases := []struct {
		name   string
		d      Declaration
		now    time.Time
		field  string // "" = no problem but the declared figures
		reason string
	}{
		{"mortgage interest 3 M (art. 220 p.4)", decl(2025, []Income{salary(30_000_000)}, ded("mortgage_interest", "", 3_000_000)), now, "", ""},
		{"expensive treatment has no limit (art. 219 p.2)", decl(2025, []Income{salary(3_000_000)}, ded("social", "expensive_treatment", 1_000_000)), now, "", ""},
		{"two children, 110 k each", decl(2024, []Income{salary(3_000_000)},
			docs(Deduction{Kind: "social", Type: "child_education", Child: 1, Amount: rub(110_000)}),
			docs(Deduction{Kind: "social", Type: "child_education", Child: 2, Amount: rub(110_000)})), now, "", ""},
		// 600 000 a year = 50 000 a month: within 450 000 for 9 months (art. 218 p.1 subp.4)
		{"child deduction stops at 450 k (2025)", decl(2025, []Income{salary(600_000)},
			docs(Deduction{Kind: "standard", Type: "child", Child: 2, Months: 12, Amount: rub(33_600)})), now, "deductions[0].months", "9 months"},
		{"second child 2 800 a month in 2025", decl(2025, []Income{salary(300_000)},
			docs(Deduction{Kind: "standard", Type: "child", Child: 2, Months: 12, Amount: rub(33_600)})), now, "", ""},
		{"second child 1 400 a month in 2024", decl(2024, []Income{salary(300_000)},
			docs(Deduction{Kind: "standard", Type: "child", Child: 2, Months: 12, Amount: rub(33_600)})), now, "deductions[0].amount_kopecks", "1400.00"},
		{"GTO only from 2025", decl(2024, []Income{salary(300_000)}, ded("standard", "gto", 18_000)), now, "deductions[0].type", "2025"},
		{"sale of a car 250 k", decl(2025, []Income{sale(400_000)}, ded("property_sale", "other", 250_000)), now, "", ""},
		// art. 78 p.7: in 2026 deductions are claimed for 2023–2025 only
		{"a deduction for 2022 in 2026", decl(2022, []Income{salary(1_000_000)}, ded("social", "treatment", 50_000)), now, "period", "art. 78 p.7"},
		{"a deduction for 2023 in 2026", decl(2023, []Income{salary(1_000_000)}, ded("social", "treatment", 50_000)), now, "", ""},
		// The issue: filed at 01:30 MSK on 1 January 2026 (22:30 UTC on 31 December 2025).
		{"2025 filed on 1 January 2026 MSK", decl(2025, []Income{salary(1_000_000)}), time.Date(2025, 12, 31, 22, 30, 0, 0, time.UTC), "", ""},
		{"2025 filed on 31 December 2025 MSK", decl(2025, []Income{salary(1_000_000)}), time.Date(2025, 12, 31, 20, 30, 0, 0, time.UTC), "period", "past tax year"},
	}
	for _, c := range cases {
		got, problems := DefaultRules().Check(c.d, c.now)
		var other []string
		found := c.field == ""
		for _, p := range problems {
			switch {
			case p.Field == c.field && strings.Contains(p.Reason, c.reason):
				found = true
			case !strings.HasPrefix(p.Field, "declared_"):
				other = append(other, p.Error())
			}
		}
		if !found || (c.field == "" && len(other) > 0) {
			t.Errorf("%s: want %s %q; got %v (computed %+v)", c.name, c.field, c.reason, problems, got)
		}
	}
}

// Art. 219 p.2, art. 219 p.1 subp.1, 2, art. 219.1 p.3, art. 220 p.2, 3, 4: the 3-НДФЛ
// sheet asks for the actual expenses and the deduction is min(expenses, limit). Expenses
// above a limit are not an error: the audit's education expenses of 180 000 ₽ sent the
// declaration to clarification.
func TestExpensesAboveLimitAreCappedArt219Art220(t *testing.T) {
	cases := []struct {
		name    string
		d       Declaration
		applied int64 // deductions applied
		tax     int64
	}{
		// 2025: salary 1 200 000; education 180 000 → 150 000 (art. 219 p.2); base 1 050 000; tax 136 500.
		{"education 180 000 in 2025 (art. 219 p.2)", decl(2025, []Income{salary(1_200_000)}, ded("social", "education", 180_000)),
			rub(150_000), rub(136_500)},
		// 2023: treatment 100 000 + fitness 30 000 → 120 000 in all; base 2 880 000; tax 374 400.
		{"social 130 000 in 2023 (art. 219 p.2)", decl(2023, []Income{salary(3_000_000)}, ded("social", "treatment", 100_000), ded("social", "fitness", 30_000)),
			rub(120_000), rub(374_400)},
		// 2024: one child's education 120 000 → 110 000 (art. 219 p.1 subp.2); base 2 890 000; tax 375 700.
		{"child education 120 000 in 2024 (art. 219 p.1 subp.2)", decl(2024, []Income{salary(3_000_000)},
			docs(Deduction{Kind: "social", Type: "child_education", Child: 1, Amount: rub(120_000)})), rub(110_000), rub(375_700)},
		// 2025: charity 400 000 on an income of 1 000 000 → 25 % = 250 000 (art. 219 p.1 subp.1); base 750 000; tax 97 500.
		{"charity above 25 % (art. 219 p.1 subp.1)", decl(2025, []Income{salary(1_000_000)}, ded("social", "charity", 400_000)),
			rub(250_000), rub(97_500)},
		// 2025: IIS contributions 500 000 → 400 000 (art. 219.1 p.3); base 2 600 000; tax 312 000 + 200 000 × 15 % = 342 000.
		{"investment 500 000 (art. 219.1 p.3)", decl(2025, []Income{salary(3_000_000)}, ded("investment", "", 500_000)),
			rub(400_000), rub(342_000)},
		// 2025: a flat bought for 6 000 000 → 2 000 000 for life (art. 220 p.3); base 28 000 000:
		// 312 000 + 390 000 + 2 700 000 + 8 000 000 × 20 % (1 600 000) = 5 002 000.
		{"flat bought for 6 M (art. 220 p.3)", decl(2025, []Income{salary(30_000_000)}, ded("property", "", 6_000_000)),
			rub(2_000_000), rub(5_002_000)},
		// 1 500 000 used before: 500 000 left of 2 000 000; base 2 500 000: 312 000 + 100 000 × 15 % = 327 000.
		{"property with prior use (art. 220 p.3)", decl(2025, []Income{salary(3_000_000)},
			docs(Deduction{Kind: "property", Amount: rub(600_000), PriorUsed: rub(1_500_000)})), rub(500_000), rub(327_000)},
		// Mortgage interest 3 200 000 → 3 000 000 for life (art. 220 p.4); base 27 000 000:
		// 312 000 + 390 000 + 2 700 000 + 7 000 000 × 20 % (1 400 000) = 4 802 000.
		{"mortgage interest 3.2 M (art. 220 p.4)", decl(2025, []Income{salary(30_000_000)}, ded("mortgage_interest", "", 3_200_000)),
			rub(3_000_000), rub(4_802_000)},
		// Housing sold for 3 000 000, 1 200 000 claimed → 1 000 000 (art. 220 p.2 subp.1);
		// separate base 2 000 000 × 13 % = 260 000.
		{"sale of housing above 1 M (art. 220 p.2)", decl(2025, []Income{sale(3_000_000)}, ded("property_sale", "housing", 1_200_000)),
			rub(1_000_000), rub(260_000)},
		// 2023: one child's education 60 000 → 50 000 (art. 219 p.1 subp.2); base 2 950 000; tax 383 500.
		{"child education 60 000 in 2023 (art. 219 p.1 subp.2)", decl(2023, []Income{salary(3_000_000)},
			docs(Deduction{Kind: "social", Type: "child_education", Child: 1, Amount: rub(60_000)})), rub(50_000), rub(383_500)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			got, _ := DefaultRules().Check(d, now)
			d.DeclaredTax, d.DeclaredRefund = got.Tax, got.Refund
			got, problems := DefaultRules().Check(d, now)
			if len(problems) > 0 || got.Deductions != c.applied || got.Tax != c.tax {
				t.Errorf("deductions %d tax %d problems %v; want deductions %d tax %d, no problem", got.Deductions, got.Tax, problems, c.applied, c.tax)
			}
		})
	}
}

func income(kind string, kopecks int64) Income {
	return Income{Source: "Плательщик", Kind: kind, Amount: kopecks}
}

// Art. 52 p.6 with art. 225: the tax is computed in full roubles for each tax base (the
// main base on its scale, the bases of art. 210 p.2.1 together at 13/15 %), and each is
// paid on its own budget line. The audit's example: 100 003,10 ₽ of salary and as much
// of a gift: 13 000,403 + 13 000,403 → 13 000 + 13 000 = 26 000 ₽, not round(26 000,806) = 26 001.
func TestTaxRoundedPerBaseArt52p6(t *testing.T) {
	cases := []struct {
		name string
		d    Declaration
		tax  int64
	}{
		{"salary and a gift", decl(2025, []Income{income("salary", 10_000_310), income("gift", 10_000_310)}), rub(26_000)},
		// 0,60 ₽ + 0,60 ₽ of tax: each base rounds up to 1 ₽.
		{"two bases each rounded up", decl(2025, []Income{income("salary", 462), income("gift", 462)}), rub(2)},
		// 2024: a sale is taxed at 13 % outside the scale; salary 100 003,10, sale 100 003,10.
		{"2024 salary and a sale", decl(2024, []Income{income("salary", 10_000_310), income("property_sale", 10_000_310)}), rub(26_000)},
	}
	for _, c := range cases {
		if got, _ := DefaultRules().Check(c.d, now); got.Tax != c.tax {
			t.Errorf("%s: tax %d, want %d", c.name, got.Tax, c.tax)
		}
	}
}

// Art. 210 p.2.1, art. 224 p.1, 1.1, art. 214, 214.2: dividends and deposit interest.
// From 2025 both join the bases taxed together at 13 % up to 2.4 M ₽ and 15 % above,
// a threshold independent of the main scale's 2.4 M; deductions never reduce them. Deposit
// interest is taxed above 1 M ₽ × the highest key rate on the 1st of a month of the year
// (art. 214.2 p.1): 150 000 ₽ for 2023 (15 %), 210 000 ₽ for 2024 and 2025 (21 %). In
// 2023–2024 dividends share the 5 M threshold with the main base (art. 224 p.1 as then in
// force) and deposit interest is part of the main base.
func TestDividendsAndDepositInterestArt214Art224(t *testing.T) {
	cases := []struct {
		name       string
		d          Declaration
		tax, apply int64
	}{
		// main 3 M: 312 000 + 90 000; dividends 1 M: 130 000 → 532 000
		{"2025 dividends: their own 2.4 M threshold", decl(2025, []Income{salary(3_000_000), income("dividends", rub(1_000_000))}), rub(532_000), 0},
		// separate 2 000 000 + (710 000 - 210 000) = 2 500 000: 312 000 + 15 000; main 130 000 → 457 000
		{"2025 dividends and deposit interest together", decl(2025, []Income{salary(1_000_000), income("dividends", rub(2_000_000)),
			income("deposit_interest", rub(710_000))}), rub(457_000), 0},
		// a treatment deduction finds no main base: dividends are never reduced (art. 210 p.3)
		{"2025 a deduction does not reduce dividends", decl(2025, []Income{income("dividends", rub(1_000_000))}, ded("social", "treatment", 100_000)),
			rub(130_000), 0},
		// deposit interest within 210 000: no tax
		{"2025 deposit interest within the non-taxable amount", decl(2025, []Income{income("deposit_interest", rub(210_000))}), 0, 0},
		// 2024: 4.5 M + 1 M dividends share the 5 M threshold: 650 000 + 75 000
		{"2024 dividends share the 5 M threshold", decl(2024, []Income{salary(4_500_000), income("dividends", rub(1_000_000))}), rub(725_000), 0},
		// 2024: 1 M + (500 000 - 210 000) - 100 000 = 1 190 000 × 13 % = 154 700
		{"2024 deposit interest in the main base", decl(2024, []Income{salary(1_000_000), income("deposit_interest", rub(500_000))},
			ded("social", "treatment", 100_000)), rub(154_700), rub(100_000)},
		// 2023: 200 000 - 150 000 = 50 000 × 13 % = 6 500
		{"2023 deposit interest above 150 000", decl(2023, []Income{income("deposit_interest", rub(200_000))}), rub(6_500), 0},
	}
	for _, c := range cases {
		got, problems := DefaultRules().Check(c.d, now)
		var other []string
		for _, p := range problems {
			if !strings.HasPrefix(p.Field, "declared_") {
				other = append(other, p.Error())
			}
		}
		if got.Tax != c.tax || got.Deductions != c.apply || len(other) > 0 {
			t.Errorf("%s: tax %d deductions %d problems %v; want tax %d deductions %d", c.name, got.Tax, got.Deductions, other, c.tax, c.apply)
		}
	}
}
