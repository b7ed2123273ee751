package seed

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/ndfl"
)

// MinTaxpayers is the smallest dataset: the scenario subjects come first and fill about
// a third of it.
const MinTaxpayers = 100

// RefundMin is the refundable overpayment the RefundEligible subjects have at least
// (20 000 ₽): enough for the demo, which claims a little more, and for the tests.
const RefundMin int64 = 2_000_000

// LockThreshold is the default of TAXFLOW_LOCK_THRESHOLD: more than 5 consecutive
// failures lock [001:175]; the AccountNearLock subjects have exactly 5 on record, so
// one more failed login locks.
const LockThreshold = 5

// IdentityCase is a verification to submit: the method, the data as the taxpayer types
// it in the cabinet, and what the automatic check must answer (contract.MatchYes, MatchNo
// or MatchInconclusive).
type IdentityCase struct {
	Name   string
	INN    string
	Method string
	Person contract.PersonData
	Expect string
	// Esignature: the validity of the certificate to issue for the taxpayer.
	CertNotBefore, CertNotAfter time.Time
}

// DeclarationCase is a 3-НДФЛ to submit for the last period. Problems lists the fields
// the automatic check names in the first submission (none: it passes); Corrected is the
// correction that passes where there are problems.
type DeclarationCase struct {
	Name        string
	INN         string
	Declaration ndfl.Declaration
	Corrected   *ndfl.Declaration
	Problems    []string
}

// AccountCase is an account with failed logins on record (FailedLogins in a row, not yet
// sent to the account's workflow: the caller replays them).
type AccountCase struct {
	INN          string
	FailedLogins int
}

// Subject is what a scenario found: a taxpayer and the case built for it.
type Subject struct {
	Taxpayer    contract.Taxpayer
	Period      int
	Balance     contract.OverpaymentResult // for Period (0: every period)
	Identity    *IdentityCase
	Declaration *DeclarationCase
	Account     *AccountCase
	Obligation  *contract.Obligation
}

// Scenario is what a process needs from the data; Find returns its subjects.
type Scenario struct {
	Name string
	want func(d *Dataset) string
	find func(d *Dataset) []Subject
}

// Want says what the scenario looks for in this dataset.
func (s Scenario) Want(d Dataset) string { return s.want(&d) }

// FindAll returns every subject of the scenario, in dataset order.
func (d Dataset) FindAll(s Scenario) []Subject { return s.find(&d) }

// Find returns the first subject of the scenario, or an error that says what was
// looked for, in which dataset.
func (d Dataset) Find(s Scenario) (Subject, error) {
	if all := s.find(&d); len(all) > 0 {
		return all[0], nil
	}
	return Subject{}, fmt.Errorf("seed: no %s in a dataset of %d taxpayers (seed %d, date %s)",
		s.want(&d), len(d.Taxpayers), d.Seed, d.Today.Format(time.DateOnly))
}

// Taxpayer returns the taxpayer with an INN.
func (d Dataset) Taxpayer(inn string) (contract.Taxpayer, bool) {
	i, ok := d.byINN[inn]
	if !ok {
		return contract.Taxpayer{}, false
	}
	return d.Taxpayers[i], true
}

// LedgerOf returns a taxpayer's ledger entries.
func (d Dataset) LedgerOf(inn string) []contract.LedgerEntry { return d.ledger[inn] }

// eligible: the refund's preconditions [004:200] and verified requisites with no change pending.
func eligible(tp contract.Taxpayer) bool {
	return tp.AccountState == "active" && tp.Confirmed && tp.INNLinked && tp.Bank != nil && tp.PendingBank == nil
}

// byBalance makes a scenario over taxpayers and their balance for a period.
func byBalance(name string, period func(d *Dataset) int, want func(d *Dataset) string,
	ok func(tp contract.Taxpayer, b contract.OverpaymentResult) bool) Scenario {
	return Scenario{Name: name, want: want, find: func(d *Dataset) []Subject {
		var out []Subject
		p := period(d)
		for _, tp := range d.Taxpayers {
			if b := overpayment.Balance(d.ledger[tp.INN], p); ok(tp, b) {
				out = append(out, Subject{Taxpayer: tp, Period: p, Balance: b})
			}
		}
		return out
	}}
}

func lastPeriod(d *Dataset) int      { return d.LastPeriod }
func oldestRefund(d *Dataset) int    { return d.RefundPeriods[0] }
func everyPeriod(_ *Dataset) int     { return 0 }
func kopecks(k int64) domain.Kopecks { return domain.Kopecks(k) }

// Refund scenarios.
var (
	RefundEligible = byBalance("refund-eligible", lastPeriod, func(d *Dataset) string {
		return fmt.Sprintf("taxpayer with an active confirmed account, no pending requisites and a refundable overpayment ≥ %s for period %d",
			kopecks(RefundMin), d.LastPeriod)
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return eligible(tp) && b.Refundable >= RefundMin
	})

	RefundEligibleOldest = byBalance("refund-eligible-oldest-period", oldestRefund, func(d *Dataset) string {
		return fmt.Sprintf("taxpayer with an active confirmed account, no pending requisites and a refundable overpayment ≥ %s for period %d (the oldest still refundable)",
			kopecks(RefundMin), d.RefundPeriods[0])
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return eligible(tp) && b.Refundable >= RefundMin
	})

	RefundWithOffset = byBalance("refund-with-debt-offset", lastPeriod, func(d *Dataset) string {
		return fmt.Sprintf("eligible taxpayer whose overpayment for period %d is partly offset against a debt and still refundable", d.LastPeriod)
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return eligible(tp) && b.Debts > 0 && b.Refundable > 0
	})

	RefundPendingRequisites = byBalance("refund-pending-requisites", lastPeriod, func(d *Dataset) string {
		return fmt.Sprintf("taxpayer with a refundable overpayment ≥ %s for period %d and a change of bank requisites pending", kopecks(RefundMin), d.LastPeriod)
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return tp.AccountState == "active" && tp.Confirmed && tp.INNLinked && tp.PendingBank != nil && b.Refundable >= RefundMin
	})

	RefundBlockedAccount = byBalance("refund-blocked-account", lastPeriod, func(d *Dataset) string {
		return fmt.Sprintf("taxpayer with a blocked account and a refundable overpayment for period %d", d.LastPeriod)
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return tp.AccountState == "blocked" && b.Refundable > 0
	})

	ArrearsOnly = byBalance("arrears-only", everyPeriod, func(*Dataset) string {
		return "taxpayer with a debt and no overpayment in any period"
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool { return b.Debts > 0 && b.Overpaid == 0 })

	NothingOwed = byBalance("nothing-owed", everyPeriod, func(*Dataset) string {
		return "taxpayer with a ledger in which every charge is paid and nothing overpaid"
	}, func(tp contract.Taxpayer, b contract.OverpaymentResult) bool {
		return b.Debts == 0 && b.Overpaid == 0 && len(b.Taxes) > 0
	})
)

func identityScenario(name, method, expect string, consent bool, what string) Scenario {
	return Scenario{Name: name, want: func(*Dataset) string { return what }, find: func(d *Dataset) []Subject {
		var out []Subject
		for i := range d.Identities {
			c := &d.Identities[i]
			tp, ok := d.Taxpayer(c.INN)
			if ok && c.Method == method && c.Expect == expect && tp.Consent == consent {
				out = append(out, Subject{Taxpayer: tp, Identity: c})
			}
		}
		return out
	}}
}

// Identity scenarios: one for every method, with the outcomes each can have.
var (
	IdentityDocuments         = identityScenario("identity-documents", contract.MethodDocuments, contract.MatchYes, true, "taxpayer with consent whose submitted data and passport match the registry (method documents)")
	IdentityDocumentsMismatch = identityScenario("identity-documents-mismatch", contract.MethodDocuments, contract.MatchNo, true, "taxpayer with consent whose submitted data do not match the registry (method documents)")
	IdentityOneLetterOff      = identityScenario("identity-one-letter-off", contract.MethodDocuments, contract.MatchInconclusive, true, "taxpayer with consent whose submitted name is one letter off the registry (method documents)")
	IdentityESignature        = identityScenario("identity-esignature", contract.MethodESignature, contract.MatchYes, true, "taxpayer with consent and a valid qualified certificate to issue (method esignature)")
	IdentityESignatureExpired = identityScenario("identity-esignature-expired", contract.MethodESignature, contract.MatchNo, true, "taxpayer with consent and an expired certificate to issue (method esignature)")
	IdentityBank              = identityScenario("identity-bank", contract.MethodBank, contract.MatchYes, true, "taxpayer with consent identified by a partner bank (method bank)")
	IdentityBankUnknown       = identityScenario("identity-bank-unknown", contract.MethodBank, contract.MatchNo, true, "taxpayer with consent that no partner bank identified (method bank)")
	IdentityInPerson          = identityScenario("identity-in-person", contract.MethodVideo, contract.MatchInconclusive, true, "taxpayer with consent to be identified in person by an operator (method video)")
	IdentityNoConsent         = identityScenario("identity-no-consent", contract.MethodDocuments, contract.MatchYes, false, "taxpayer without consent to personal-data processing on record")
)

// declarationScenario finds declarations whose first submission the rules of the
// reference day judge as wanted (problems or none) and whose correction passes.
func declarationScenario(name, what string, ok func(c *DeclarationCase, problems []domain.FieldError) bool) Scenario {
	return Scenario{Name: name, want: func(d *Dataset) string { return fmt.Sprintf(what, d.LastPeriod) }, find: func(d *Dataset) []Subject {
		var out []Subject
		rules := ndfl.DefaultRules()
		for i := range d.Declarations {
			c := &d.Declarations[i]
			tp, found := d.Taxpayer(c.INN)
			_, problems := rules.Check(c.Declaration, d.Today)
			if c.Corrected != nil {
				if _, p := rules.Check(*c.Corrected, d.Today); len(p) > 0 {
					continue
				}
			}
			if found && c.Declaration.Period == d.LastPeriod && ok(c, problems) {
				out = append(out, Subject{Taxpayer: tp, Period: d.LastPeriod, Declaration: c})
			}
		}
		return out
	}}
}

// Declaration scenarios.
var (
	DeclarationPasses = declarationScenario("declaration-passes", "3-НДФЛ for %d that passes the automatic check",
		func(_ *DeclarationCase, p []domain.FieldError) bool { return len(p) == 0 })
	DeclarationClarification = declarationScenario("declaration-clarification",
		"3-НДФЛ for %d whose declared tax the automatic check disputes, with a correction that passes",
		func(c *DeclarationCase, p []domain.FieldError) bool {
			return c.Corrected != nil && slices.ContainsFunc(p, func(f domain.FieldError) bool { return f.Field == "declared_tax_kopecks" })
		})
	DeclarationMissingDocuments = declarationScenario("declaration-missing-documents",
		"3-НДФЛ for %d claiming a deduction without supporting documents, with a correction that passes",
		func(c *DeclarationCase, p []domain.FieldError) bool {
			return c.Corrected != nil && slices.ContainsFunc(p, func(f domain.FieldError) bool { return strings.HasSuffix(f.Field, ".documents") })
		})
)

// DeclarationDeduction is a 3-НДФЛ that passes and claims a deduction of the kind.
func DeclarationDeduction(kind string) Scenario {
	return declarationScenario("declaration-deduction-"+kind, "3-НДФЛ for %d that passes and claims a "+kind+" deduction",
		func(c *DeclarationCase, p []domain.FieldError) bool {
			return len(p) == 0 && slices.ContainsFunc(c.Declaration.Deductions, func(dd ndfl.Deduction) bool { return dd.Kind == kind })
		})
}

// DeductionKinds lists the deduction kinds the rules know (ndfl.Types), sorted; the
// dataset has a declaration that passes with each of them.
func DeductionKinds(int) []string {
	var kinds []string
	for k := range ndfl.Types {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// sampleDeduction is a deduction of the kind that the rules of the period allow in
// full: share (0..1] of the kind's limit, with its supporting document. A property-sale
// deduction comes with the sale income it reduces.
func sampleDeduction(kind string, period int, share float64) (ndfl.Deduction, []ndfl.Income) {
	rules := ndfl.DefaultRules()
	best := 0
	for from := range rules.Limits {
		if from <= period && from > best {
			best = from
		}
	}
	l := rules.Limits[best]
	part := func(limit int64) int64 { return max(100, int64(float64(limit)*share)/100*100) }
	d := ndfl.Deduction{Kind: kind, Documents: []string{kind + "-document-1"}}
	var incomes []ndfl.Income
	switch kind {
	case "standard": // art. 218 p.1 subp.2: 500 ₽ a month
		d.Type, d.Months, d.Amount = "self_500", 12, l.Self500*12
	case "social":
		d.Type, d.Amount = "treatment", part(l.SocialCombined)
	case "investment":
		d.Amount = part(l.Investment)
	case "property":
		d.Amount = part(l.Property)
	case "mortgage_interest":
		d.Amount = part(l.MortgageInterest)
	case "property_sale":
		d.Type, d.Amount = "housing", part(l.SaleHousing)
		incomes = append(incomes, ndfl.Income{Source: "продажа квартиры", Kind: "property_sale", Amount: d.Amount + 50_000_000})
	}
	return d, incomes
}

// AccountNearLock is an active account one failed login short of the lock threshold.
var AccountNearLock = Scenario{Name: "account-near-lock",
	want: func(*Dataset) string {
		return fmt.Sprintf("active taxpayer with %d failed logins in a row on record, a passport and a full name for self-service", LockThreshold)
	},
	find: func(d *Dataset) []Subject {
		var out []Subject
		for i := range d.Accounts {
			c := &d.Accounts[i]
			tp, ok := d.Taxpayer(c.INN)
			if ok && tp.AccountState == "active" && tp.Passport != nil && c.FailedLogins == LockThreshold {
				out = append(out, Subject{Taxpayer: tp, Account: c})
			}
		}
		return out
	}}

// AccountSelfService is any active taxpayer whose account a self-service unblock can open
// (a passport and a full name on record) and who is the subject of no other scenario, so
// locking their account disturbs no other walk-through: the demo falls back on these once
// earlier runs on the same data have used the near-lock ones (three locks within 24 h
// leave only a specialist's unblock). Their failed logins on record are those of their
// AccountCase, none without one.
var AccountSelfService = Scenario{Name: "account-self-service",
	want: func(*Dataset) string {
		return "active taxpayer, subject of no other scenario, with a passport and a full name for self-service"
	},
	find: func(d *Dataset) []Subject {
		taken := map[string]bool{}
		for _, sc := range d.Scenarios() {
			for _, s := range sc.find(d) {
				taken[s.Taxpayer.INN] = true
			}
		}
		accounts := map[string]*AccountCase{}
		for i := range d.Accounts {
			accounts[d.Accounts[i].INN] = &d.Accounts[i]
		}
		var out []Subject
		for _, tp := range d.Taxpayers {
			if taken[tp.INN] || tp.AccountState != "active" || tp.Passport == nil {
				continue
			}
			c := accounts[tp.INN]
			if c == nil {
				c = &AccountCase{INN: tp.INN}
			}
			if c.FailedLogins <= LockThreshold {
				out = append(out, Subject{Taxpayer: tp, Account: c})
			}
		}
		return out
	}}

// ObligationDue is a tax falling due days after the reference day, paid or not.
func ObligationDue(days int, paid bool) Scenario {
	state := map[bool]string{true: "already paid", false: "unpaid"}[paid]
	return Scenario{Name: fmt.Sprintf("obligation-due-%dd-%s", days, map[bool]string{true: "paid", false: "unpaid"}[paid]),
		want: func(d *Dataset) string {
			return fmt.Sprintf("tax obligation, %s, due on %s (%d days after the reference day)", state, d.Today.AddDate(0, 0, days).Format(time.DateOnly), days)
		},
		find: func(d *Dataset) []Subject {
			var out []Subject
			due := d.Today.AddDate(0, 0, days).Format(time.DateOnly)
			for i := range d.Obligations {
				o := &d.Obligations[i]
				if tp, ok := d.Taxpayer(o.INN); ok && o.DueDate == due && o.Paid() == paid {
					out = append(out, Subject{Taxpayer: tp, Obligation: o})
				}
			}
			return out
		}}
}

// ReminderLeads are the reminder lead times the scheduled job uses by default (30, 7
// and 1 days before the due date).
var ReminderLeads = []int{30, 7, 1}

// Scenarios lists every scenario of the dataset: the ones above, a DeclarationDeduction
// for each deduction kind of the last period, and an ObligationDue, paid and unpaid, for
// each reminder lead time.
func (d Dataset) Scenarios() []Scenario {
	out := []Scenario{RefundEligible, RefundEligibleOldest, RefundWithOffset, RefundPendingRequisites, RefundBlockedAccount,
		ArrearsOnly, NothingOwed,
		IdentityDocuments, IdentityDocumentsMismatch, IdentityOneLetterOff, IdentityESignature, IdentityESignatureExpired,
		IdentityBank, IdentityBankUnknown, IdentityInPerson, IdentityNoConsent,
		DeclarationPasses, DeclarationClarification, DeclarationMissingDocuments, AccountNearLock}
	for _, k := range DeductionKinds(d.LastPeriod) {
		out = append(out, DeclarationDeduction(k))
	}
	for _, lead := range ReminderLeads {
		out = append(out, ObligationDue(lead, false), ObligationDue(lead, true))
	}
	return out
}

// CabinetName is the full name as a taxpayer types it: "Иванов Иван Иванович".
func CabinetName(tp contract.Taxpayer) string {
	return strings.TrimSpace(title(tp.Surname) + " " + title(tp.FirstName) + " " + title(tp.Patronymic))
}

// CabinetPerson is the registry's data as a taxpayer types them in the cabinet.
func CabinetPerson(tp contract.Taxpayer) contract.PersonData {
	p := contract.PersonData{INN: tp.INN, SNILS: domain.FormatSNILS(tp.SNILS), Surname: title(tp.Surname), FirstName: title(tp.FirstName),
		Patronymic: title(tp.Patronymic)}
	if b, err := time.Parse(time.DateOnly, tp.BirthDate); err == nil {
		p.BirthDate = b.Format("02.01.2006")
	}
	if tp.Passport != nil {
		p.PassportSeries, p.PassportNumber = tp.Passport.Series, tp.Passport.Number
	}
	return p
}

func title(s string) string {
	r := []rune(strings.ToLower(s))
	if len(r) > 0 {
		r[0] = []rune(strings.ToUpper(string(r[0])))[0]
	}
	return string(r)
}

// scenarios builds the scenario subjects: the first taxpayers of every dataset.
func (g *gen) scenarios() {
	last := g.d.LastPeriod
	subject := func(change func(tp *contract.Taxpayer)) contract.Taxpayer {
		tp := g.subjectPerson()
		if change != nil {
			change(&tp)
		}
		g.add(tp)
		return tp
	}
	overpaid := func(inn string, period int, charge, over int64) {
		g.entry(inn, "charge", "ndfl", period, charge)
		g.entry(inn, "payment", "ndfl", period, charge+over)
	}
	rub := func(lo, hi int) int64 { return int64(lo+g.rng.IntN(hi-lo+1)) * 100 }

	// Refunds: the ledger holds the claimed period only, so no other period's entries
	// change the balance the refund reads.
	for i := 0; i < 3; i++ { // several: each demo run on the same data may use one up
		tp := subject(nil)
		overpaid(tp.INN, last, rub(150_000, 400_000), rub(25_000, 60_000))
	}
	tp := subject(nil)
	overpaid(tp.INN, g.d.RefundPeriods[0], rub(150_000, 400_000), rub(25_000, 60_000))
	tp = subject(nil) // overpaid income tax, unpaid property tax: offset first
	overpaid(tp.INN, last, rub(150_000, 400_000), rub(30_000, 40_000))
	g.entry(tp.INN, "charge", "property", last, rub(3_000, 9_000))
	tp = subject(func(tp *contract.Taxpayer) {
		nb := biks[g.rng.IntN(len(biks))]
		tp.PendingBank = &contract.BankRequisites{BIK: nb, Account: g.account(nb)}
	})
	overpaid(tp.INN, last, rub(150_000, 400_000), rub(25_000, 60_000))
	tp = subject(func(tp *contract.Taxpayer) { tp.AccountState = "blocked" })
	overpaid(tp.INN, last, rub(150_000, 400_000), rub(25_000, 60_000))
	tp = subject(nil) // arrears only
	overpaid(tp.INN, last, rub(150_000, 400_000), 0)
	g.entry(tp.INN, "charge", "transport", last, rub(2_000, 15_000))
	tp = subject(nil) // nothing owed, nothing overpaid
	overpaid(tp.INN, last, rub(150_000, 400_000), 0)
	charge := rub(1_000, 9_000)
	g.entry(tp.INN, "charge", "property", last, charge)
	g.entry(tp.INN, "payment", "property", last, charge)

	g.identities()
	g.declarations()

	// Accounts: near the lock threshold (several, as for refunds), and one quiet.
	for i := 0; i < 3; i++ {
		tp := subject(nil)
		g.d.Accounts = append(g.d.Accounts, AccountCase{INN: tp.INN, FailedLogins: LockThreshold})
	}
	tp = subject(nil)
	g.d.Accounts = append(g.d.Accounts, AccountCase{INN: tp.INN})

	// Obligations due soon: unpaid ones on every reminder lead and one on none; paid ones
	// on every lead, which get no reminder.
	unpaid, paid := subject(nil), subject(nil)
	for _, days := range append(slices.Clone(ReminderLeads), 5) {
		g.obligation(unpaid.INN, taxes[1+g.rng.IntN(len(taxes)-1)], rub(500, 30_000), days, false)
	}
	for _, days := range ReminderLeads {
		g.obligation(paid.INN, taxes[1+g.rng.IntN(len(taxes)-1)], rub(500, 30_000), days, true)
	}
}

// subjectPerson is a person for a scenario: active in the last month, so the inactivity
// job leaves it alone.
func (g *gen) subjectPerson() contract.Taxpayer {
	tp := g.person()
	tp.LastActivity = g.day(g.d.Today.AddDate(0, 0, -30), g.d.Today).Format(time.DateOnly)
	return tp
}

func (g *gen) identities() {
	today := g.d.Today
	// aged makes the person the given age range on the reference day, with the passport
	// of their age: issued at 20 and valid until 45 (plus 90 days), or issued at 45.
	aged := func(tp *contract.Taxpayer, lo, hi int, replacedAt45 bool) {
		birth := g.day(today.AddDate(-hi, 0, 0), today.AddDate(-lo, 0, 0))
		issued := birth.AddDate(20, 1+g.rng.IntN(6), 0)
		if replacedAt45 {
			issued = birth.AddDate(45, 1+g.rng.IntN(3), 0)
		}
		tp.BirthDate, tp.Passport.IssuedOn = birth.Format(time.DateOnly), issued.Format(time.DateOnly)
	}
	add := func(name, method, expect string, change func(tp *contract.Taxpayer), submit func(p *contract.PersonData)) *IdentityCase {
		tp := g.subjectPerson()
		tp.Confirmed, tp.ConfirmedAt, tp.ConfirmedMethod, tp.BankIdentified = false, nil, "", false
		aged(&tp, 25, 40, false) // valid for years around the reference day
		if change != nil {
			change(&tp)
		}
		g.add(tp)
		p := CabinetPerson(tp)
		if submit != nil {
			submit(&p)
		}
		g.d.Identities = append(g.d.Identities, IdentityCase{Name: name, INN: tp.INN, Method: method, Person: p, Expect: expect})
		return &g.d.Identities[len(g.d.Identities)-1]
	}
	add("documents", contract.MethodDocuments, contract.MatchYes, nil, nil)
	add("documents, another surname", contract.MethodDocuments, contract.MatchNo, nil, func(p *contract.PersonData) {
		other := "Кузнецов"
		if strings.HasPrefix(domain.NormalizeName(p.Surname), "КУЗНЕЦОВ") {
			other = "Смирнов"
		}
		if strings.HasSuffix(p.Surname, "а") { // every seeded surname ends in -ов/-ев, -ова/-ева
			other += "а"
		}
		p.Surname = other
	})
	add("documents, passport expired at 45", contract.MethodDocuments, contract.MatchNo, func(tp *contract.Taxpayer) { aged(tp, 47, 60, false) }, nil)
	add("documents, surname one letter off", contract.MethodDocuments, contract.MatchInconclusive, nil, func(p *contract.PersonData) {
		// a typing slip: the first о typed as а (Иванов → Иванав), or е as и (Васильев → Васильив)
		if i := strings.Index(p.Surname, "о"); i >= 0 {
			p.Surname = p.Surname[:i] + "а" + p.Surname[i+len("о"):]
		} else {
			p.Surname = strings.Replace(p.Surname, "е", "и", 1)
		}
	})
	c := add("esignature", contract.MethodESignature, contract.MatchYes, nil, nil)
	c.CertNotBefore, c.CertNotAfter = today.AddDate(0, -1, 0), today.AddDate(1, 0, 0)
	c = add("esignature, certificate expired", contract.MethodESignature, contract.MatchNo, nil, nil)
	c.CertNotBefore, c.CertNotAfter = today.AddDate(-2, 0, 0), today.AddDate(0, 0, -10)
	add("bank", contract.MethodBank, contract.MatchYes, func(tp *contract.Taxpayer) { tp.BankIdentified = true }, nil)
	add("bank, not identified by any bank", contract.MethodBank, contract.MatchNo, nil, nil)
	add("in person (video)", contract.MethodVideo, contract.MatchInconclusive, nil, nil)
	add("no consent", contract.MethodDocuments, contract.MatchYes, func(tp *contract.Taxpayer) { tp.Consent, tp.ConsentAt = false, nil }, nil)
}

func (g *gen) declarations() {
	last := g.d.LastPeriod
	rules := ndfl.DefaultRules()
	rub := func(lo, hi int) int64 { return int64(lo+g.rng.IntN(hi-lo+1)) * 100 }
	// settle fills in the declared figures from our own arithmetic.
	settle := func(d *ndfl.Declaration) {
		c, _ := rules.Check(*d, g.d.Today)
		d.DeclaredTax, d.DeclaredRefund = c.Tax, c.Refund
	}
	add := func(name string, d ndfl.Declaration, corrected *ndfl.Declaration) {
		tp := g.subjectPerson()
		d.INN = tp.INN
		if corrected != nil {
			corrected.INN = tp.INN
		}
		g.add(tp)
		final := d
		if corrected != nil {
			final = *corrected
		}
		// The ledger agrees with the declaration: the tax charged, the tax withheld paid.
		c, _ := rules.Check(final, g.d.Today)
		g.entry(tp.INN, "charge", "ndfl", last, c.Tax)
		g.entry(tp.INN, "payment", "ndfl", last, c.Withheld)
		var problems []string
		_, ps := rules.Check(d, g.d.Today)
		for _, p := range ps {
			problems = append(problems, p.Field)
		}
		g.d.Declarations = append(g.d.Declarations, DeclarationCase{Name: name, INN: tp.INN, Declaration: d, Corrected: corrected, Problems: problems})
	}
	salary := func() (ndfl.Income, int64) {
		amount := rub(900_000, 2_000_000)
		return ndfl.Income{Source: "ООО «Ромашка»", Kind: "salary", Amount: amount}, (amount*13/100 + 50) / 100 * 100
	}
	for _, kind := range DeductionKinds(last) { // one that passes for each kind
		in, withheld := salary()
		dd, extra := sampleDeduction(kind, last, float64(50+g.rng.IntN(51))/100)
		d := ndfl.Declaration{Period: last, Incomes: append([]ndfl.Income{in}, extra...), Withheld: withheld,
			Deductions: []ndfl.Deduction{dd}}
		settle(&d)
		add("deduction "+kind, d, nil)
	}
	{ // passes, no deduction, tax to pay on a rent income nobody withheld
		in, withheld := salary()
		d := ndfl.Declaration{Period: last, Incomes: []ndfl.Income{in, {Source: "аренда квартиры", Kind: "other", Amount: rub(120_000, 600_000)}}, Withheld: withheld}
		settle(&d)
		add("tax to pay", d, nil)
	}
	kinds := DeductionKinds(last)
	{ // the declared tax is wrong; the correction fixes it
		in, withheld := salary()
		dd, extra := sampleDeduction(kinds[0], last, 0.5)
		good := ndfl.Declaration{Period: last, Incomes: append([]ndfl.Income{in}, extra...), Withheld: withheld,
			Deductions: []ndfl.Deduction{dd}}
		settle(&good)
		bad := good
		bad.DeclaredTax -= 30_000 // 300 ₽ short
		add("declared tax wrong", bad, &good)
	}
	{ // a deduction without documents; the correction attaches them
		in, withheld := salary()
		dd, extra := sampleDeduction(kinds[len(kinds)-1], last, 0.25)
		good := ndfl.Declaration{Period: last, Incomes: append([]ndfl.Income{in}, extra...), Withheld: withheld,
			Deductions: []ndfl.Deduction{dd}}
		settle(&good)
		bad := good
		undocumented := dd
		undocumented.Documents = nil
		bad.Deductions = []ndfl.Deduction{undocumented}
		add("deduction without documents", bad, &good)
	}
}
