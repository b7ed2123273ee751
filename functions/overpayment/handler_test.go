package overpayment

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
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
			contract.OverpaymentResult{Overpaid: 50_000, Refundable: 50_000, Taxes: []contract.TaxBalance{{Tax: "ndfl", Balance: 50_000}}}},
		{"debt offset first", []contract.LedgerEntry{
			e("1", "charge", "ndfl", 2025, 100_000), e("2", "payment", "ndfl", 2025, 150_000),
			e("3", "charge", "property", 2025, 20_000)}, 0,
			contract.OverpaymentResult{Overpaid: 50_000, Debts: 20_000, Refundable: 30_000,
				Taxes: []contract.TaxBalance{{Tax: "ndfl", Balance: 50_000}, {Tax: "property", Balance: -20_000}}}},
		{"debts exceed", []contract.LedgerEntry{e("1", "payment", "ndfl", 2025, 10_000), e("2", "charge", "land", 2024, 30_000)}, 0,
			contract.OverpaymentResult{Overpaid: 10_000, Debts: 30_000, Refundable: 0,
				Taxes: []contract.TaxBalance{{Tax: "land", Balance: -30_000}, {Tax: "ndfl", Balance: 10_000}}}},
		{"period filter keeps older debts", []contract.LedgerEntry{
			e("1", "payment", "ndfl", 2024, 70_000), e("2", "payment", "ndfl", 2025, 40_000), e("3", "charge", "land", 2023, 5_000)}, 2025,
			contract.OverpaymentResult{Overpaid: 40_000, Debts: 5_000, Refundable: 35_000,
				Taxes: []contract.TaxBalance{{Tax: "land", Balance: -5_000}, {Tax: "ndfl", Balance: 40_000}}}},
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

func TestComputeReadsLedger(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"l": {PK: "inn", SK: "entry_id"}})
	for _, x := range []contract.LedgerEntry{e("2025#ndfl#1", "charge", "ndfl", 2025, 100_000), e("2025#ndfl#2", "payment", "ndfl", 2025, 130_000)} {
		store.PutNew(context.Background(), db, "l", "entry_id", x)
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
