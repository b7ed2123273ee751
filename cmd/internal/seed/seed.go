// Package seed makes and loads a realistic demo dataset: taxpayers with valid INNs and
// bank requisites, ledgers of charges and payments with overpayments and debts, tax
// obligations falling due, identity submissions, 3-НДФЛ declarations and accounts near
// the lock threshold.
//
// The dataset is relative to a reference day ("today", in Moscow): the tax periods are
// the last completed year and the three before it, obligations fall due 1, 7 and 30
// days after it. The same day, count and seed always make the same data. The first
// taxpayers are built deliberately, one or more for each scenario (see Scenario), so
// every process finds its subject on any day; the rest are random.
package seed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
)

// Defaults of `taxflow seed`, `taxflow dev` and `taxflow demo`.
const (
	DefaultSeed      uint64 = 2026
	DefaultTaxpayers int    = 500
	// MaxTaxpayers bounds a dataset: more takes minutes to load into DynamoDB Local and
	// shows nothing that 100 000 do not.
	MaxTaxpayers = 100_000
	// CabinetTenant is the tenant the seeded consent was given through: the demo's
	// integrator (the taxpayers' cabinet), whose relationship with them the INN routes ask.
	CabinetTenant = "demo-cabinet"
)

var (
	surnames   = []string{"ИВАНОВ", "СМИРНОВ", "КУЗНЕЦОВ", "ПОПОВ", "ВАСИЛЬЕВ", "ПЕТРОВ", "СОКОЛОВ", "МИХАЙЛОВ", "НОВИКОВ", "ФЁДОРОВ", "МОРОЗОВ", "ВОЛКОВ"}
	firstNames = []string{"АЛЕКСАНДР", "СЕРГЕЙ", "ДМИТРИЙ", "АНДРЕЙ", "АЛЕКСЕЙ", "МАКСИМ", "ЕВГЕНИЙ", "ИВАН", "МИХАИЛ", "АРТЁМ"}
	femaleName = []string{"АННА", "ЕЛЕНА", "ОЛЬГА", "НАТАЛЬЯ", "ЕКАТЕРИНА", "МАРИЯ", "ТАТЬЯНА", "ИРИНА"}
	patronyms  = []string{"АЛЕКСАНДРОВИЧ", "СЕРГЕЕВИЧ", "ДМИТРИЕВИЧ", "АНДРЕЕВИЧ", "ИВАНОВИЧ", "ПЕТРОВИЧ", "МИХАЙЛОВИЧ"}
	biks       = []string{"044525225", "044525593", "044525974", "044030653", "046577674", "045004641"}
	regions    = []string{"77", "78", "50", "66", "54", "16", "23", "63"}
	taxes      = []string{"ndfl", "property", "transport", "land"}
)

// Dataset is what Generate makes.
type Dataset struct {
	Today time.Time // the reference day: midnight in Moscow
	Seed  uint64

	LastPeriod    int   // the last completed tax year
	Periods       []int // the ledger's periods: LastPeriod-3 … LastPeriod
	RefundPeriods []int // periods still refundable (art. 78 p.7: three years): LastPeriod-2 … LastPeriod

	Taxpayers    []contract.Taxpayer
	Ledger       []contract.LedgerEntry
	Obligations  []contract.Obligation
	Identities   []IdentityCase
	Declarations []DeclarationCase
	Accounts     []AccountCase

	byINN  map[string]int
	ledger map[string][]contract.LedgerEntry
}

// Day returns the reference day of t: its date in Moscow, at midnight Moscow time.
func Day(t time.Time) time.Time {
	m := t.In(calendar.Moscow)
	return time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, calendar.Moscow)
}

// Generate makes n taxpayers relative to the day of today (in Moscow). The first are the
// scenario subjects (about 30, see Dataset.Scenarios); of the random rest about 60 % overpaid
// income tax for the last period, 15 % also owe property or land tax, 10 % are blocked
// or unconfirmed, 8 % have a requisites change pending.
func Generate(today time.Time, n int, seed uint64) (Dataset, error) {
	if n < MinTaxpayers || n > MaxTaxpayers {
		return Dataset{}, fmt.Errorf("seed: %d taxpayers: must be %d-%d", n, MinTaxpayers, MaxTaxpayers)
	}
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seen: map[string]bool{}}
	g.d = Dataset{Today: Day(today), Seed: seed, byINN: map[string]int{}, ledger: map[string][]contract.LedgerEntry{}}
	g.d.LastPeriod = g.d.Today.Year() - 1
	for p := g.d.LastPeriod - 3; p <= g.d.LastPeriod; p++ {
		g.d.Periods = append(g.d.Periods, p)
	}
	g.d.RefundPeriods = g.d.Periods[1:]
	g.scenarios()
	if len(g.d.Taxpayers) > MinTaxpayers/2 {
		// a defect of this package, caught by its tests: the random taxpayers must stay the majority
		return Dataset{}, fmt.Errorf("seed: %d scenario subjects, more than half of the smallest dataset", len(g.d.Taxpayers))
	}
	for len(g.d.Taxpayers) < n {
		tp := g.person()
		tp.Consent = g.rng.IntN(100) < 90
		if !tp.Consent {
			tp.ConsentTenant = ""
		}
		switch r := g.rng.IntN(100); {
		case r < 5:
			tp.AccountState = "blocked"
		case r < 10:
			tp.Confirmed = false
		case r < 18:
			nb := biks[g.rng.IntN(len(biks))]
			tp.PendingBank = &contract.BankRequisites{BIK: nb, Account: g.account(nb)}
		}
		g.add(tp)
		g.randomLedger(tp.INN)
		if g.rng.IntN(100) < 20 {
			g.randomObligation(tp.INN)
		}
	}
	return g.d, nil
}

type gen struct {
	rng  *rand.Rand
	seen map[string]bool
	d    Dataset
	obs  int
}

func (g *gen) add(tp contract.Taxpayer) {
	g.d.byINN[tp.INN] = len(g.d.Taxpayers)
	g.d.Taxpayers = append(g.d.Taxpayers, tp)
}

func (g *gen) inn() string {
	for {
		inn := domain.CompleteINN12(regions[g.rng.IntN(len(regions))] + fmt.Sprintf("%08d", g.rng.IntN(100_000_000)))
		if !g.seen[inn] {
			g.seen[inn] = true
			return inn
		}
	}
}

func (g *gen) account(bik string) string {
	return domain.CompleteAccount(fmt.Sprintf("40817810%012d", g.rng.Int64N(1_000_000_000_000)), bik)
}

// day returns a random day between lo and hi (inclusive), both reference days.
func (g *gen) day(lo, hi time.Time) time.Time {
	days := int(hi.Sub(lo).Hours()/24 + 0.5)
	if days <= 0 {
		return lo
	}
	return lo.AddDate(0, 0, g.rng.IntN(days+1))
}

// person makes an active, confirmed taxpayer with valid identifiers, consent, requisites
// and a passport valid on the reference day; callers change what their scenario needs.
func (g *gen) person() contract.Taxpayer {
	today := g.d.Today
	inn := g.inn()
	bik := biks[g.rng.IntN(len(biks))]
	sur, first, pat := surnames[g.rng.IntN(len(surnames))], firstNames[g.rng.IntN(len(firstNames))], patronyms[g.rng.IntN(len(patronyms))]
	if g.rng.IntN(2) == 0 {
		sur, first, pat = sur+"А", femaleName[g.rng.IntN(len(femaleName))], strings.TrimSuffix(pat, "ИЧ")+"НА"
	}
	// 21 to 75 years old on the reference day
	birth := g.day(today.AddDate(-75, 0, 0), today.AddDate(-21, 0, 0))
	issued := birth.AddDate(45, 1+g.rng.IntN(6), 0) // replaced at 45 where that has happened
	if issued.After(today) {
		issued = birth.AddDate(20, 1+g.rng.IntN(6), 0)
	}
	nine := fmt.Sprintf("%09d", 2_000_000+g.rng.IntN(997_000_000))
	consentAt := g.day(today.AddDate(-2, 0, 0), today.AddDate(0, 0, -30))
	return contract.Taxpayer{
		INN:          inn,
		Name:         sur + " " + first + " " + pat,
		AccountState: "active", Confirmed: true, INNLinked: true,
		Bank:     &contract.BankRequisites{BIK: bik, Account: g.account(bik)},
		Channels: []string{"cabinet", "email"},
		SNILS:    nine + domain.SNILSControl(nine), SNILSLinked: true,
		Surname: sur, FirstName: first, Patronymic: pat, BirthDate: birth.Format(time.DateOnly),
		Passport: &contract.PassportRecord{Series: regions[g.rng.IntN(len(regions))] + fmt.Sprintf("%02d", g.rng.IntN(30)),
			Number: fmt.Sprintf("%06d", g.rng.IntN(1_000_000)), IssuedOn: issued.Format(time.DateOnly)},
		BankIdentified: g.rng.IntN(100) < 30,
		Consent:        true,
		ConsentTenant:  CabinetTenant,
		ConsentAt:      &consentAt,
		LastActivity:   g.day(today.AddDate(0, 0, -540), today).Format(time.DateOnly),
	}
}

// entry adds a ledger entry of a period, dated when such an entry is made (in the year
// after the period, or within it when that year has not begun yet), never after the day
// before the reference day.
func (g *gen) entry(inn, kind, tax string, period int, amount int64) {
	yesterday := g.d.Today.AddDate(0, 0, -1)
	lo := time.Date(period+1, 1, 1, 0, 0, 0, 0, calendar.Moscow)
	hi := time.Date(period+1, 11, 30, 0, 0, 0, 0, calendar.Moscow)
	if hi.After(yesterday) {
		hi = yesterday
	}
	if hi.Before(lo) {
		lo = time.Date(period, 1, 1, 0, 0, 0, 0, calendar.Moscow)
	}
	n := len(g.d.ledger[inn]) + 1
	e := contract.LedgerEntry{INN: inn, EntryID: fmt.Sprintf("%d#%s#%03d", period, tax, n), Kind: kind, Tax: tax,
		Period: period, Amount: amount, Date: g.day(lo, hi)}
	g.d.ledger[inn] = append(g.d.ledger[inn], e)
	g.d.Ledger = append(g.d.Ledger, e)
}

func (g *gen) randomLedger(inn string) {
	last := g.d.LastPeriod
	for _, period := range g.d.Periods {
		income := int64(30_000_000 + g.rng.IntN(300_000_000)) // 300 000 – 3 300 000 ₽ a year
		ndfl := income * 13 / 100
		g.entry(inn, "charge", "ndfl", period, ndfl)
		paid := ndfl
		if period == last && g.rng.IntN(100) < 60 {
			paid += int64(100_000 + g.rng.IntN(20_000_000)) // overpaid 1 000 – 201 000 ₽
		}
		g.entry(inn, "payment", "ndfl", period, paid)
		tax := taxes[1+g.rng.IntN(len(taxes)-1)]
		charge := int64(50_000 + g.rng.IntN(3_000_000))
		g.entry(inn, "charge", tax, period, charge)
		if period < last || g.rng.IntN(100) >= 15 {
			g.entry(inn, "payment", tax, period, charge)
		}
	}
}

// obligation adds a tax due days after the reference day.
func (g *gen) obligation(inn, tax string, amount int64, days int, paid bool) contract.Obligation {
	due := g.d.Today.AddDate(0, 0, days)
	g.obs++
	// An opaque id (no INN): the seed, the reference day and a sequence number.
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d/%s/%d", g.d.Seed, g.d.Today.Format(time.DateOnly), g.obs)))
	o := contract.Obligation{ObligationID: "ob-" + hex.EncodeToString(sum[:8]), INN: inn, Tax: tax, Amount: amount,
		DueDate: due.Format(time.DateOnly), DueMonth: due.Format("2006-01"), Status: contract.ObligationDue, Kind: contract.ObligationPayment}
	if paid {
		o.Status = contract.ObligationPaid
	}
	g.d.Obligations = append(g.d.Obligations, o)
	return o
}

func (g *gen) randomObligation(inn string) {
	g.obligation(inn, taxes[1+g.rng.IntN(len(taxes)-1)], int64(50_000+g.rng.IntN(3_000_000)), 1+g.rng.IntN(60), g.rng.IntN(100) < 30)
}

// Tables names the tables Load writes.
type Tables struct {
	Taxpayers, Ledger, Obligations string
}

// Load writes the taxpayers, ledgers and obligations in batches of 25 (DynamoDB's
// limit), retrying unprocessed items. Loading the same dataset again overwrites it.
func Load(ctx context.Context, db *dynamodb.Client, t Tables, d Dataset) error {
	var reqs []types.WriteRequest
	var tables []string
	put := func(table string, v any) error {
		item, err := store.Marshal(v)
		if err != nil {
			return err
		}
		reqs, tables = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}), append(tables, table)
		return nil
	}
	for _, tp := range d.Taxpayers {
		if err := put(t.Taxpayers, tp); err != nil {
			return err
		}
	}
	for _, e := range d.Ledger {
		if err := put(t.Ledger, e); err != nil {
			return err
		}
	}
	for _, o := range d.Obligations {
		if err := put(t.Obligations, o); err != nil {
			return err
		}
	}
	// DynamoDB Local answers a batch in tens of milliseconds: several at once.
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < len(reqs); i += 25 {
		batch := map[string][]types.WriteRequest{}
		for j := i; j < min(i+25, len(reqs)); j++ {
			batch[tables[j]] = append(batch[tables[j]], reqs[j])
		}
		g.Go(func() error {
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
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return nil
}
