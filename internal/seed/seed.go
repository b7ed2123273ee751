// Package seed makes and loads a realistic demo dataset: taxpayers with valid INNs and
// bank requisites, and ledgers of charges and payments with overpayments and debts.
// The same seed value always makes the same data.
package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
)

var (
	surnames   = []string{"ИВАНОВ", "СМИРНОВ", "КУЗНЕЦОВ", "ПОПОВ", "ВАСИЛЬЕВ", "ПЕТРОВ", "СОКОЛОВ", "МИХАЙЛОВ", "НОВИКОВ", "ФЁДОРОВ", "МОРОЗОВ", "ВОЛКОВ"}
	firstNames = []string{"АЛЕКСАНДР", "СЕРГЕЙ", "ДМИТРИЙ", "АНДРЕЙ", "АЛЕКСЕЙ", "МАКСИМ", "ЕВГЕНИЙ", "ИВАН", "МИХАИЛ", "АРТЁМ"}
	patronyms  = []string{"АЛЕКСАНДРОВИЧ", "СЕРГЕЕВИЧ", "ДМИТРИЕВИЧ", "АНДРЕЕВИЧ", "ИВАНОВИЧ", "ПЕТРОВИЧ", "МИХАЙЛОВИЧ"}
	biks       = []string{"044525225", "044525593", "044525974", "044030653", "046577674", "045004641"}
	regions    = []string{"77", "78", "50", "66", "54", "16", "23", "63"}
	taxes      = []string{"ndfl", "property", "transport", "land"}
)

// Dataset is what Generate makes.
type Dataset struct {
	Taxpayers []contract.Taxpayer
	Ledger    []contract.LedgerEntry
}

// Generate makes n taxpayers. About 60 % have an overpayment of income tax, 15 % also
// owe property or land tax, 10 % are blocked or unconfirmed, 8 % have a requisites
// change pending.
func Generate(n int, seed uint64) Dataset {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var d Dataset
	seen := map[string]bool{}
	for len(d.Taxpayers) < n {
		first10 := regions[rng.IntN(len(regions))] + fmt.Sprintf("%08d", rng.IntN(100_000_000))
		inn := domain.CompleteINN12(first10)
		if seen[inn] {
			continue
		}
		seen[inn] = true
		bik := biks[rng.IntN(len(biks))]
		account := domain.CompleteAccount(fmt.Sprintf("40817810%012d", rng.Int64N(1_000_000_000_000)), bik)
		sur, first, pat := surnames[rng.IntN(len(surnames))], firstNames[rng.IntN(len(firstNames))], patronyms[rng.IntN(len(patronyms))]
		birth := time.Date(1950+rng.IntN(55), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		issued := birth.AddDate(45, 1+rng.IntN(6), 0)
		if issued.After(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			issued = birth.AddDate(20, 1+rng.IntN(6), 0)
		}
		nine := fmt.Sprintf("%09d", 2_000_000+rng.IntN(997_000_000))
		consentAt := time.Date(2024, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		tp := contract.Taxpayer{
			INN:          inn,
			Name:         sur + " " + first + " " + pat,
			AccountState: "active", Confirmed: true, INNLinked: true,
			Bank:     &contract.BankRequisites{BIK: bik, Account: account},
			Channels: []string{"cabinet", "email"},
			SNILS:    nine + domain.SNILSControl(nine), SNILSLinked: true,
			Surname: sur, FirstName: first, Patronymic: pat, BirthDate: birth.Format(time.DateOnly),
			Passport: &contract.PassportRecord{Series: regions[rng.IntN(len(regions))] + fmt.Sprintf("%02d", rng.IntN(30)),
				Number: fmt.Sprintf("%06d", rng.IntN(1_000_000)), IssuedOn: issued.Format(time.DateOnly)},
			BankIdentified: rng.IntN(100) < 30,
			Consent:        rng.IntN(100) < 90,
			ConsentAt:      &consentAt,
		}
		switch r := rng.IntN(100); {
		case r < 5:
			tp.AccountState = "blocked"
		case r < 10:
			tp.Confirmed = false
		case r < 18:
			nb := biks[rng.IntN(len(biks))]
			tp.PendingBank = &contract.BankRequisites{BIK: nb, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rng.Int64N(1_000_000_000_000)), nb)}
		}
		d.Taxpayers = append(d.Taxpayers, tp)
		d.Ledger = append(d.Ledger, ledger(rng, inn)...)
	}
	return d
}

func ledger(rng *rand.Rand, inn string) []contract.LedgerEntry {
	var out []contract.LedgerEntry
	n := 0
	add := func(kind, tax string, period int, amount int64) {
		n++
		out = append(out, contract.LedgerEntry{INN: inn, EntryID: fmt.Sprintf("%d#%s#%03d", period, tax, n), Kind: kind, Tax: tax,
			Period: period, Amount: amount, Date: time.Date(period+1, time.Month(1+rng.IntN(11)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)})
	}
	for _, period := range []int{2023, 2024, 2025} {
		income := int64(30_000_000 + rng.IntN(300_000_000)) // 300 000 – 3 300 000 ₽ a year
		ndfl := income * 13 / 100
		add("charge", "ndfl", period, ndfl)
		paid := ndfl
		if period == 2025 && rng.IntN(100) < 60 {
			paid += int64(100_000 + rng.IntN(20_000_000)) // overpaid 1 000 – 201 000 ₽
		}
		add("payment", "ndfl", period, paid)
		tax := taxes[1+rng.IntN(len(taxes)-1)]
		charge := int64(50_000 + rng.IntN(3_000_000))
		add("charge", tax, period, charge)
		if period < 2025 || rng.IntN(100) >= 15 {
			add("payment", tax, period, charge)
		}
	}
	return out
}

// Load writes the dataset in batches of 25 (DynamoDB's limit), retrying unprocessed items.
func Load(ctx context.Context, db *dynamodb.Client, taxpayersTable, ledgerTable string, d Dataset) error {
	var reqs []types.WriteRequest
	var tables []string
	for _, tp := range d.Taxpayers {
		item, err := store.Marshal(tp)
		if err != nil {
			return err
		}
		reqs, tables = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}), append(tables, taxpayersTable)
	}
	for _, e := range d.Ledger {
		item, err := store.Marshal(e)
		if err != nil {
			return err
		}
		reqs, tables = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}), append(tables, ledgerTable)
	}
	for i := 0; i < len(reqs); i += 25 {
		batch := map[string][]types.WriteRequest{}
		for j := i; j < min(i+25, len(reqs)); j++ {
			batch[tables[j]] = append(batch[tables[j]], reqs[j])
		}
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 10 {
				return fmt.Errorf("load seed data: items still unprocessed after %d attempts", attempt)
			}
			out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: batch})
			if err != nil {
				return fmt.Errorf("load seed data: %w", err)
			}
			batch = out.UnprocessedItems
			if len(batch) > 0 {
				time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
			}
		}
	}
	return nil
}
