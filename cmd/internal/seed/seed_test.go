package seed

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/functions/esigncheck"
	"github.com/taxflow/taxflow/functions/identity"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/unblock"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func day(s string) time.Time {
	t, err := time.ParseInLocation(time.DateOnly, s, calendar.Moscow)
	if err != nil {
		panic(err)
	}
	return t
}

func TestGenerateIsValidRealisticAndRepeatable(t *testing.T) {
	d, err := Generate(day("2026-11-23"), 400, 42)
	if err != nil {
		t.Fatal(err)
	}
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
	again, err := Generate(day("2026-11-23"), 400, 42)
	if err != nil {
		t.Fatal(err)
	}
	if again.Taxpayers[17].INN != d.Taxpayers[17].INN || len(again.Ledger) != len(d.Ledger) {
		t.Fatal("the same seed made different data")
	}
	if !reflect.DeepEqual(again.Taxpayers, d.Taxpayers) || !reflect.DeepEqual(again.Ledger, d.Ledger) ||
		!reflect.DeepEqual(again.Obligations, d.Obligations) || !reflect.DeepEqual(again.Declarations, d.Declarations) {
		t.Fatal("the same day, count and seed made different data")
	}
	other, _ := Generate(day("2026-11-23"), 400, 43)
	if other.Taxpayers[0].INN == d.Taxpayers[0].INN {
		t.Fatal("another seed made the same data")
	}
}

// The dates a fixed dataset broke on: year ends, the January holidays, a leap day, a
// date next year; and today.
var dates = []string{"2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06",
	"2026-01-07", "2026-01-08", "2026-12-31", "2027-01-01", "2028-02-29", "2027-06-15"}

func TestEveryScenarioFindsItsSubjectOnAnyDate(t *testing.T) {
	days := []time.Time{Day(time.Now())}
	for _, s := range dates {
		days = append(days, day(s))
	}
	for _, today := range days {
		t.Run(today.Format(time.DateOnly), func(t *testing.T) {
			d, err := Generate(today, DefaultTaxpayers, DefaultSeed)
			if err != nil {
				t.Fatal(err)
			}
			if d.LastPeriod != today.Year()-1 || !slices.Equal(d.Periods, []int{today.Year() - 4, today.Year() - 3, today.Year() - 2, today.Year() - 1}) ||
				!slices.Equal(d.RefundPeriods, d.Periods[1:]) {
				t.Fatalf("periods %d %v %v", d.LastPeriod, d.Periods, d.RefundPeriods)
			}
			for _, s := range d.Scenarios() {
				if _, err := d.Find(s); err != nil {
					t.Errorf("%s: %v", s.Name, err)
				}
			}
			checkDates(t, d)
			checkRefunds(t, d)
			checkIdentities(t, d)
			checkDeclarations(t, d)
			checkAccounts(t, d)
			checkReminders(t, d)
		})
	}
}

// Nothing is dated after the reference day that cannot be: ledger entries and consents
// are in the past, obligations in the future.
func checkDates(t *testing.T, d Dataset) {
	t.Helper()
	for _, e := range d.Ledger {
		if !e.Date.Before(d.Today) || e.Date.Year() < e.Period {
			t.Fatalf("ledger entry of period %d dated %s (reference day %s)", e.Period, e.Date.Format(time.DateOnly), d.Today.Format(time.DateOnly))
		}
	}
	for _, tp := range d.Taxpayers {
		if tp.ConsentAt != nil && !tp.ConsentAt.Before(d.Today) {
			t.Fatalf("consent given on %s, after the reference day", tp.ConsentAt.Format(time.DateOnly))
		}
		if issued, _ := time.Parse(time.DateOnly, tp.Passport.IssuedOn); issued.After(d.Today) {
			t.Fatalf("passport issued on %s, after the reference day", tp.Passport.IssuedOn)
		}
	}
	for _, o := range d.Obligations {
		if o.DueDate <= d.Today.Format(time.DateOnly) || o.DueMonth != o.DueDate[:7] || strings.Contains(o.ObligationID, o.INN) {
			t.Fatalf("obligation %+v", o)
		}
	}
}

func checkRefunds(t *testing.T, d Dataset) {
	t.Helper()
	all := d.FindAll(RefundEligible)
	if len(all) < 3 {
		t.Fatalf("%d refund subjects: a demo run on the same data uses one up", len(all))
	}
	for _, s := range all {
		if s.Period != d.LastPeriod || s.Balance.Refundable < RefundMin || s.Taxpayer.PendingBank != nil || s.Taxpayer.Bank == nil {
			t.Fatalf("refund subject %+v", s.Balance)
		}
	}
	s, _ := d.Find(RefundWithOffset)
	if s.Balance.Debts == 0 || s.Balance.Refundable != s.Balance.Overpaid-s.Balance.Debts {
		t.Fatalf("offset %+v", s.Balance)
	}
}

func registry(t *testing.T, d Dataset) *storetest.DB {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}, "obligations": {PK: "obligation_id"}, "outbox": {PK: "notification_id"},
		"api_idempotency": {PK: "key"}})
	for _, tp := range d.Taxpayers {
		if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn", tp); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range d.Obligations {
		if _, err := store.PutNew(context.Background(), db, "obligations", "obligation_id", o); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// Each identity case gets the answer it is built for from the real checks, at noon of
// the reference day.
func checkIdentities(t *testing.T, d Dataset) {
	t.Helper()
	ctx := context.Background()
	at := d.Today.Add(12 * time.Hour)
	db := registry(t, d)
	match := identity.Handler{DB: db, Taxpayers: "taxpayers"}
	s3 := storetest.NewS3()
	ca, err := esigntest.NewCA(at)
	if err != nil {
		t.Fatal(err)
	}
	s3.Put(esigncheck.RootsKey, ca.RootPEM())
	// a current revocation list: without one the check is inconclusive (fails closed)
	crl, err := ca.CRL(at)
	if err != nil {
		t.Fatal(err)
	}
	s3.Put(esigncheck.CRLKey, crl)
	check := &esigncheck.Handler{S3: s3, Bucket: "documents", DB: db, Taxpayers: "taxpayers", Nonces: "api_idempotency"}
	verifier := esign.Verifier{DB: db, Nonces: "api_idempotency", Taxpayers: "taxpayers"}
	methods := map[string]bool{}
	for i, c := range d.Identities {
		methods[c.Method] = true
		tp, _ := d.Taxpayer(c.INN)
		if _, errs := identity.Validate(c.Person); len(errs) > 0 {
			t.Fatalf("%s: the submitted data are not valid: %v", c.Name, errs)
		}
		got := ""
		switch c.Method {
		case contract.MethodDocuments:
			res, err := match.Match(ctx, contract.IdentityMatchInput{Person: c.Person, At: at})
			if err != nil {
				t.Fatal(err)
			}
			got = res.Outcome
		case contract.MethodESignature:
			cert, key, err := ca.IssueWithKey(int64(i+2), tp.INN, tp.SNILS, c.CertNotBefore, c.CertNotAfter)
			if err != nil {
				t.Fatal(err)
			}
			// The proof of possession the API's verifier makes for the case.
			nonce, caseID := fmt.Sprintf("n-%d", i), fmt.Sprintf("identity-seed-%d", i)
			if _, err := store.PutNew(ctx, db, "api_idempotency", "key", esign.Challenge{Key: "nonce#" + nonce, Tenant: "seed", ExpiresAt: time.Now().Add(time.Hour).Unix()}); err != nil {
				t.Fatal(err)
			}
			sig, _ := esigntest.Sign(key, []byte(nonce))
			proven, err := verifier.Prove(ctx, esign.Claim{Tenant: "seed", CaseID: caseID, INN: tp.INN, Certificate: cert, Nonce: nonce, Signature: sig})
			if err != nil {
				t.Fatal(err)
			}
			res, err := check.Check(ctx, contract.ESignCheckInput{Certificate: cert, INN: tp.INN, SNILS: tp.SNILS, At: at, CaseID: caseID, Proof: proven.Proof()})
			if err != nil {
				t.Fatal(err)
			}
			got = map[bool]string{true: contract.MatchYes, false: contract.MatchNo}[res.Valid]
		case contract.MethodBank:
			got = map[bool]string{true: contract.MatchYes, false: contract.MatchNo}[tp.BankIdentified]
		case contract.MethodVideo:
			got = contract.MatchInconclusive // the workflow sends every video verification to an operator
		}
		if got != c.Expect {
			t.Errorf("%s: %s, built to be %s", c.Name, got, c.Expect)
		}
	}
	for _, m := range []string{contract.MethodDocuments, contract.MethodESignature, contract.MethodBank, contract.MethodVideo} {
		if !methods[m] {
			t.Errorf("no identity case for method %s", m)
		}
	}
}

func checkDeclarations(t *testing.T, d Dataset) {
	t.Helper()
	rules := ndfl.DefaultRules()
	kinds := map[string]bool{}
	for _, c := range d.Declarations {
		_, problems := rules.Check(c.Declaration, d.Today)
		var fields []string
		for _, p := range problems {
			fields = append(fields, p.Field)
		}
		if !slices.Equal(fields, c.Problems) {
			t.Errorf("%s: the check names %v, the case says %v", c.Name, fields, c.Problems)
		}
		if len(problems) == 0 {
			for _, dd := range c.Declaration.Deductions {
				kinds[dd.Kind] = true
			}
		}
		final := c.Declaration
		if c.Corrected != nil {
			final = *c.Corrected
		}
		computed, problems := rules.Check(final, d.Today)
		if len(problems) > 0 {
			t.Errorf("%s: the final version does not pass: %v", c.Name, problems)
		}
		// The ledger holds what the declaration says: tax charged, tax withheld paid.
		b := overpayment.Balance(d.LedgerOf(c.INN), d.LastPeriod)
		if b.Refundable != computed.Refund || b.Debts != computed.Payable {
			t.Errorf("%s: ledger %+v, declaration %+v", c.Name, b, computed)
		}
	}
	for _, k := range DeductionKinds(d.LastPeriod) {
		if !kinds[k] {
			t.Errorf("no declaration that passes with a %s deduction", k)
		}
	}
}

func checkAccounts(t *testing.T, d Dataset) {
	t.Helper()
	h := unblock.Handler{DB: registry(t, d), Taxpayers: "taxpayers"}
	for _, s := range d.FindAll(AccountNearLock) {
		res, err := h.Check(context.Background(), contract.UnblockCheckInput{INN: s.Taxpayer.INN, FullName: CabinetName(s.Taxpayer),
			PassportSeries: s.Taxpayer.Passport.Series})
		if err != nil || !res.Match {
			t.Fatalf("self-service data of an account subject: %+v %v", res, err)
		}
	}
	// The demo's fallbacks: many, each unblockable by self-service, none the subject of
	// another scenario (locking its account must disturb no other walk-through).
	others := map[string]bool{}
	for _, sc := range d.Scenarios() {
		for _, s := range d.FindAll(sc) {
			others[s.Taxpayer.INN] = true
		}
	}
	fallbacks := d.FindAll(AccountSelfService)
	if len(fallbacks) < 10 {
		t.Fatalf("%d accounts for the demo to fall back on, want at least 10", len(fallbacks))
	}
	for _, s := range fallbacks {
		if others[s.Taxpayer.INN] {
			t.Fatalf("a fallback account is the subject of another scenario")
		}
		res, err := h.Check(context.Background(), contract.UnblockCheckInput{INN: s.Taxpayer.INN, FullName: CabinetName(s.Taxpayer),
			PassportSeries: s.Taxpayer.Passport.Series})
		if err != nil || !res.Match || s.Account.FailedLogins > LockThreshold {
			t.Fatalf("self-service data of a fallback account: %+v %v", res, err)
		}
	}
}

// The reminder sweep of the reference day sends a reminder for each unpaid scenario
// obligation on its lead time, and none for a paid one.
func checkReminders(t *testing.T, d Dataset) {
	t.Helper()
	db := registry(t, d)
	h := reminders.Handler{DB: db, Obligations: "obligations", Taxpayers: "taxpayers", Outbox: "outbox"}
	sent := 0
	for _, lead := range ReminderLeads {
		res, err := h.Sweep(context.Background(), contract.SweepPage{Date: d.Today.Format(time.DateOnly), LeadDays: lead, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		sent += res.Sent
	}
	outbox := map[string]bool{}
	for _, it := range db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil {
			t.Fatal(err)
		}
		outbox[n.NotificationID] = true
	}
	for _, lead := range ReminderLeads {
		for _, paid := range []bool{false, true} {
			s, err := d.Find(ObligationDue(lead, paid))
			if err != nil {
				t.Fatal(err)
			}
			if id := fmt.Sprintf("reminder#%s#%d", s.Obligation.ObligationID, lead); outbox[id] == paid {
				t.Errorf("obligation due in %d days, paid=%v: reminder sent=%v", lead, paid, outbox[id])
			}
		}
	}
	if sent < len(ReminderLeads) || sent != len(outbox) {
		t.Fatalf("%d reminders sent, %d in the outbox", sent, len(outbox))
	}
}

// A lookup that finds nothing says what it looked for, in which dataset.
func TestFindSaysWhatItLookedFor(t *testing.T) {
	d, err := Generate(day("2026-01-01"), DefaultTaxpayers, DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	d.ledger = map[string][]contract.LedgerEntry{} // no overpayments anywhere
	_, err = d.Find(RefundEligible)
	want := "seed: no taxpayer with an active confirmed account, no pending requisites and a refundable overpayment ≥ 20000.00 ₽ for period 2025 in a dataset of 500 taxpayers (seed 2026, date 2026-01-01)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	d.Identities = nil
	if _, err := d.Find(IdentityDocuments); err == nil || !strings.Contains(err.Error(), "method documents") {
		t.Fatalf("identity: %v", err)
	}
	for _, tp := range d.Taxpayers {
		if strings.Contains(want, tp.INN) {
			t.Fatal("the message names a taxpayer")
		}
	}
}

func TestGenerateRefusesBadCounts(t *testing.T) {
	for _, n := range []int{-1, 0, MinTaxpayers - 1, MaxTaxpayers + 1} {
		if _, err := Generate(day("2026-01-01"), n, 1); err == nil || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("%d taxpayers: %v", n, err)
		}
	}
}
