package ndfl

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func rub(r int64) int64 { return r * 100 }

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
	want := Computed{Income: rub(1_200_000), Deductions: rub(100_000), Base: rub(1_100_000), Tax: rub(143_000), Withheld: rub(156_000), Refund: rub(13_000)}
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
		{"income kind", func(d *Declaration) { d.Incomes[0].Kind = "gift" }, "incomes[0].kind", "salary"},
		{"no documents", func(d *Declaration) { d.Deductions[0].Documents = nil }, "deductions[0].documents", "supporting documents"},
		{"over the limit", func(d *Declaration) { d.Deductions[0].Amount = rub(200_000) }, "deductions[0].amount_kopecks", "exceed the limit"},
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
