package seed

import (
	"testing"

	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
)

func TestGenerateIsValidRealisticAndRepeatable(t *testing.T) {
	d := Generate(400, 42)
	if len(d.Taxpayers) != 400 {
		t.Fatalf("%d taxpayers", len(d.Taxpayers))
	}
	byINN := map[string][]contract.LedgerEntry{}
	for _, e := range d.Ledger {
		byINN[e.INN] = append(byINN[e.INN], e)
	}
	var overpaid, withDebt, blocked int
	for _, tp := range d.Taxpayers {
		if err := domain.ValidateINN("inn", tp.INN, true); err != nil {
			t.Fatalf("invalid INN generated: %v", err)
		}
		if err := domain.ValidateAccount("account", tp.Bank.Account, tp.Bank.BIK); err != nil {
			t.Fatalf("invalid account generated: %v", err)
		}
		if _, err := domain.NormalizeSNILS("snils", tp.SNILS); err != nil {
			t.Fatalf("invalid SNILS generated: %v", err)
		}
		if _, err := domain.ParsePassport("passport", tp.Passport.Series+tp.Passport.Number); err != nil {
			t.Fatalf("invalid passport generated: %v", err)
		}
		b := overpayment.Balance(byINN[tp.INN], 0)
		if b.Overpaid > 0 {
			overpaid++
		}
		if b.Debts > 0 {
			withDebt++
		}
		if tp.AccountState != "active" {
			blocked++
		}
	}
	if overpaid < 150 || withDebt < 20 || blocked == 0 {
		t.Fatalf("unrealistic mix: %d overpaid, %d with debts, %d blocked", overpaid, withDebt, blocked)
	}
	again := Generate(400, 42)
	if again.Taxpayers[17].INN != d.Taxpayers[17].INN || len(again.Ledger) != len(d.Ledger) {
		t.Fatal("the same seed made different data")
	}
}
