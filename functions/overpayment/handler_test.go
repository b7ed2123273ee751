package overpayment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/internal/term"
)

const inn = "500100732259"

func e(id, kind, tax string, period int, amount int64) contract.LedgerEntry {
	return contract.LedgerEntry{INN: inn, EntryID: id, Kind: kind, Tax: tax, Period: period, Amount: amount}
}

func TestBalance(t *testing.T) {
	cases := []struct {
		name    string
		entries []contract.LedgerEntry
		period  int
		want    contract.OverpaymentResult
	}{
		{"overpaid", []contract.LedgerEntry{e("1", "charge", "ndfl", 2025, 100_000), e("2", "payment", "ndfl", 2025, 150_000)}, 0,
			contract.OverpaymentResult{Overpaid: 50_000, Refundable: 50_000, Taxes: []contract.TaxBalance{{Tax: "ndfl", Balance: 50_000}},
				Periods: []contract.TaxBalance{{Tax: "ndfl", Period: 2025, Balance: 50_000}}}},
		{"debt offset first", []contract.LedgerEntry{
			e("1", "charge", "ndfl", 2025, 100_000), e("2", "payment", "ndfl", 2025, 150_000),
			e("3", "charge", "property", 2025, 20_000)}, 0,
			contract.OverpaymentResult{Overpaid: 50_000, Debts: 20_000, Refundable: 30_000,
				Taxes:   []contract.TaxBalance{{Tax: "ndfl", Balance: 50_000}, {Tax: "property", Balance: -20_000}},
				Periods: []contract.TaxBalance{{Tax: "ndfl", Period: 2025, Balance: 50_000}, {Tax: "property", Period: 2025, Balance: -20_000}}}},
		{"debts exceed", []contract.LedgerEntry{e("1", "payment", "ndfl", 2025, 10_000), e("2", "charge", "land", 2024, 30_000)}, 0,
			contract.OverpaymentResult{Overpaid: 10_000, Debts: 30_000, Refundable: 0,
				Taxes:   []contract.TaxBalance{{Tax: "land", Balance: -30_000}, {Tax: "ndfl", Balance: 10_000}},
				Periods: []contract.TaxBalance{{Tax: "land", Period: 2024, Balance: -30_000}, {Tax: "ndfl", Period: 2025, Balance: 10_000}}}},
		{"period filter keeps older debts", []contract.LedgerEntry{
			e("1", "payment", "ndfl", 2024, 70_000), e("2", "payment", "ndfl", 2025, 40_000), e("3", "charge", "land", 2023, 5_000)}, 2025,
			contract.OverpaymentResult{Overpaid: 40_000, Debts: 5_000, Refundable: 35_000,
				Taxes: []contract.TaxBalance{{Tax: "land", Balance: -5_000}, {Tax: "ndfl", Balance: 40_000}},
				Periods: []contract.TaxBalance{{Tax: "land", Period: 2023, Balance: -5_000}, {Tax: "ndfl", Period: 2024, Balance: 70_000},
					{Tax: "ndfl", Period: 2025, Balance: 40_000}}}},
		// The issue: 2024 charged 1 000 ₽ and paid 1 000 ₽, 2025 overpaid 500 ₽. The code
		// skipped the 2024 payment but kept its charge: "period 2025: refundable 0".
		{"a fully paid earlier year is no debt", []contract.LedgerEntry{
			e("1", "charge", "ndfl", 2024, 100_000), e("2", "payment", "ndfl", 2024, 100_000),
			e("3", "charge", "ndfl", 2025, 100_000), e("4", "payment", "ndfl", 2025, 150_000)}, 2025,
			contract.OverpaymentResult{Overpaid: 50_000, Refundable: 50_000, Taxes: []contract.TaxBalance{{Tax: "ndfl", Balance: 50_000}},
				Periods: []contract.TaxBalance{{Tax: "ndfl", Period: 2024, Balance: 0}, {Tax: "ndfl", Period: 2025, Balance: 50_000}}}},
		// An unpaid earlier year still is a debt, offset first (domain.md §3).
		{"an unpaid earlier year is a debt", []contract.LedgerEntry{
			e("1", "charge", "ndfl", 2024, 100_000), e("2", "payment", "ndfl", 2024, 60_000),
			e("3", "charge", "ndfl", 2025, 100_000), e("4", "payment", "ndfl", 2025, 150_000)}, 2025,
			contract.OverpaymentResult{Overpaid: 50_000, Debts: 40_000, Refundable: 10_000, Taxes: []contract.TaxBalance{{Tax: "ndfl", Balance: 10_000}},
				Periods: []contract.TaxBalance{{Tax: "ndfl", Period: 2024, Balance: -40_000}, {Tax: "ndfl", Period: 2025, Balance: 50_000}}}},
		{"nothing", nil, 0, contract.OverpaymentResult{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Balance(c.entries, c.period)
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(c.want)
			if string(a) != string(b) {
				t.Fatalf("got %s, want %s", a, b)
			}
		})
	}
}

func paid(id string, period int, amount int64, date string) contract.LedgerEntry {
	x := e(id, "payment", "ndfl", period, amount)
	x.Date, _ = time.Parse(time.RFC3339, date)
	return x
}

// Tax Code art. 78 p.7: an overpayment is refundable within 3 years of the payment.
func TestBalanceThreeYearWindow(t *testing.T) {
	claim := time.Date(2026, 11, 23, 12, 0, 0, 0, term.Moscow)
	cases := []struct {
		name                          string
		entries                       []contract.LedgerEntry
		period                        int
		claimAt                       time.Time
		overpaid, expired, refundable int64
	}{
		{"paid more than 3 years ago", []contract.LedgerEntry{e("1", "charge", "ndfl", 2022, 100_000),
			paid("2", 2022, 100_000, "2023-07-14T10:00:00+03:00"), paid("3", 2022, 50_000, "2023-07-15T10:00:00+03:00")}, 2022, claim, 0, 50_000, 0},
		// 15 Jul 2026 + 24:00 MSK is the last moment (art. 6.1 p.3, 8)
		{"claimed on the last day", []contract.LedgerEntry{e("1", "charge", "ndfl", 2022, 100_000),
			paid("2", 2022, 100_000, "2023-07-14T10:00:00+03:00"), paid("3", 2022, 50_000, "2023-07-15T10:00:00+03:00")}, 2022,
			time.Date(2026, 7, 15, 23, 30, 0, 0, term.Moscow), 50_000, 0, 50_000},
		// the overpayment is made of the latest payments: 30 000 of 2026 is refundable, 20 000 of 2023 is not
		{"old and new payments", []contract.LedgerEntry{e("1", "charge", "ndfl", 2023, 100_000),
			paid("2", 2023, 120_000, "2023-06-01T10:00:00+03:00"), paid("3", 2023, 30_000, "2026-01-10T10:00:00+03:00")}, 0, claim, 30_000, 20_000, 30_000},
		{"no claim time: no window", []contract.LedgerEntry{e("1", "charge", "ndfl", 2022, 100_000),
			paid("2", 2022, 150_000, "2020-07-14T10:00:00+03:00")}, 2022, time.Time{}, 50_000, 0, 50_000},
	}
	for _, c := range cases {
		got := BalanceAt(c.entries, c.period, c.claimAt)
		if got.Overpaid != c.overpaid || got.Expired != c.expired || got.Refundable != c.refundable {
			t.Errorf("%s: got %+v; want overpaid %d expired %d refundable %d", c.name, got, c.overpaid, c.expired, c.refundable)
		}
	}
}

// art. 78 p.7 with art. 6.1 p.3, 7, 8: 3 years to the same date, moved off non-working
// days, until 24:00 Moscow time.
func TestRefundClaimWithinLimit(t *testing.T) {
	msk := func(s string) time.Time { x, _ := time.Parse(time.RFC3339, s); return x }
	for _, c := range []struct {
		paid, claim string
		ok          bool
	}{
		{"2023-07-15T10:00:00+03:00", "2026-07-15T23:59:00+03:00", true},
		{"2023-07-15T10:00:00+03:00", "2026-07-16T00:00:00+03:00", false},
		// 28 Feb 2026 is a Saturday: the term ends on Monday 2 March
		{"2023-02-28T10:00:00+03:00", "2026-03-02T18:00:00+03:00", true},
		{"2023-02-28T10:00:00+03:00", "2026-03-03T00:00:01+03:00", false},
		// a leap day: 28 Feb 2027 is a Sunday → 1 March 2027
		{"2024-02-29T10:00:00+03:00", "2027-03-01T12:00:00+03:00", true},
		// 23:30 UTC on 15 Jul 2023 is already 16 Jul in Moscow
		{"2023-07-15T23:30:00Z", "2026-07-16T12:00:00+03:00", true},
	} {
		if got := RefundClaimWithinLimit(msk(c.paid), msk(c.claim)); got != c.ok {
			t.Errorf("paid %s, claimed %s: %v, want %v", c.paid, c.claim, got, c.ok)
		}
	}
}

func TestComputeReadsLedger(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"l": {PK: "inn", SK: "entry_id"}})
	for _, x := range []contract.LedgerEntry{e("2025#ndfl#1", "charge", "ndfl", 2025, 100_000), e("2025#ndfl#2", "payment", "ndfl", 2025, 130_000)} {
		if _, err := store.PutNew(context.Background(), db, "l", "entry_id", x); err != nil {
			t.Fatal(err)
		}
	}
	h := lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "l"}.Compute))
	out, err := h.Invoke(context.Background(), []byte(`{"inn":"`+inn+`"}`))
	var got contract.OverpaymentResult
	if err != nil || json.Unmarshal(out, &got) != nil || got.Refundable != 30_000 {
		t.Fatalf("got %s %v", out, err)
	}
	for _, bad := range []string{`{"inn":"123"}`, `{"inn":"` + inn + `","period":1999}`} {
		_, err := h.Invoke(context.Background(), []byte(bad))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput {
			t.Errorf("%s: want InvalidInput, got %v", bad, err)
		}
	}
}

func BenchmarkBalance(b *testing.B) {
	var entries []contract.LedgerEntry
	for i := 0; i < 60; i++ {
		entries = append(entries, e("x", []string{"charge", "payment"}[i%2], []string{"ndfl", "land", "property"}[i%3], 2020+i%6, int64(1000*i)))
	}
	for b.Loop() {
		Balance(entries, 0)
	}
}

// Tax Code art. 78 p.7: the overpayment a 3-НДФЛ creates arises when the declaration is
// filed, so the 3 years count from the filing, not from each of the employer's payments.
// A 2023 declaration filed on 5 Dec 2026 (property deduction: 130 000 ₽ of the 130 000 ₽
// withheld, paid by the employer month by month in 2023) keeps its whole refund; counted
// from each payment only December's 10 833.33 ₽ would be left.
func TestBalanceDeclarationOverpaymentArisesAtFilingArt78p7(t *testing.T) {
	entries := []contract.LedgerEntry{e("2023#ndfl#c", "charge", "ndfl", 2023, 13_000_000)}
	var sum int64
	for m := 1; m <= 12; m++ {
		amount := int64(1_083_333)
		if m == 12 {
			amount = 13_000_000 - sum
		}
		sum += amount
		entries = append(entries, paid(fmt.Sprintf("2023#ndfl#p%02d", m), 2023, amount, fmt.Sprintf("2023-%02d-28T10:00:00+03:00", m)))
	}
	filed := time.Date(2026, 12, 5, 11, 0, 0, 0, term.Moscow)
	reduction := contract.LedgerEntry{INN: inn, EntryID: "2023#ndfl#decl-d1#1", Kind: contract.LedgerReduction, Tax: "ndfl", Period: 2023,
		Amount: 13_000_000, Date: filed, CaseID: "declaration-d1"}
	decided := time.Date(2027, 2, 15, 12, 0, 0, 0, term.Moscow)
	got := BalanceAt(append(entries, reduction), 2023, decided)
	if got.Overpaid != 13_000_000 || got.Expired != 0 || got.Refundable != 13_000_000 {
		t.Fatalf("late-filed declaration: %+v; want the whole 130 000 ₽ refundable", got)
	}
	// The window still applies, from the filing: a declaration filed on 1 Feb 2024 and
	// claimed on 3 Mar 2027 is out of it.
	old := reduction
	old.Date = time.Date(2024, 2, 1, 11, 0, 0, 0, term.Moscow)
	got = BalanceAt(append(entries, old), 2023, time.Date(2027, 3, 3, 12, 0, 0, 0, term.Moscow))
	if got.Refundable != 0 || got.Expired != 13_000_000 {
		t.Fatalf("filed more than 3 years before the claim: %+v", got)
	}
	// Without a claim time there is no window (Balance): the reduction counts as a credit.
	if b := Balance(append(entries, reduction), 2023); b.Refundable != 13_000_000 {
		t.Fatalf("Balance: %+v", b)
	}
}
