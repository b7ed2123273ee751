package payout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

var bank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}

type fixture struct {
	h      lambda.Handler
	db     *storetest.DB
	ledger ledger.Ledger
	// crashAfterTransfer makes the next transfer happen and then fail, as a crash
	// between the treasury and the ledger would.
	crashAfterTransfer bool
}

// crashingTreasury wraps the treasury to lose the answer of one transfer that happened.
type crashingTreasury struct {
	Treasury
	f *fixture
}

func (c crashingTreasury) Transfer(ctx context.Context, t Transfer) (Receipt, error) {
	r, err := c.Treasury.Transfer(ctx, t)
	if err == nil && c.f.crashAfterTransfer {
		c.f.crashAfterTransfer = false
		return Receipt{}, errors.New("connection reset after the transfer")
	}
	return r, err
}

// setup registers tp and an overpayment of 100 000 kopecks for 2025, and reserves
// reserve kopecks for case "refund-1" (none when 0).
func setup(t *testing.T, tp contract.Taxpayer, reserve int64) *fixture {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}, "tr": {PK: "payout_key"}, "res": {PK: "key"},
		"ledger": {PK: "inn", SK: "entry_id"},
		// the case's record, for the steps that ride in the posting (step_test.go)
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"},
		"t-events": {PK: "case_id", SK: "seq"}})
	ctx := context.Background()
	if _, err := store.PutNew(ctx, db, "tp", "inn", tp); err != nil {
		t.Fatal(err)
	}
	for _, e := range []contract.LedgerEntry{
		{INN: inn, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 400_000},
		{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 500_000},
	} {
		if _, err := store.PutNew(ctx, db, "ledger", "entry_id", e); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{db: db}
	f.ledger = ledger.Ledger{DB: db, Table: "res", Entries: "ledger"}
	if reserve > 0 {
		res, err := f.ledger.Reserve(ctx, contract.LedgerInput{Op: contract.LedgerReserve, Key: "refund-1", INN: inn, Period: 2025, Amount: reserve})
		if err != nil || res.State != contract.ReservationReserved {
			t.Fatalf("reserve: %+v %v", res, err)
		}
	}
	tr := DynamoTreasury{DB: db, Table: "tr", MaxTransfer: 1_000_000, Now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }}
	f.h = lambda.NewHandler(fn.Handler(Handler{DB: db, Taxpayers: "tp", Treasury: crashingTreasury{tr, f}, Ledger: f.ledger}.Handle))
	return f
}

func payee() string { return taxpayer.PayeeRef(*bank) }

func payIn(key string, principal, interest int64) string {
	return fmt.Sprintf(`{"payout_key":%q,"case_id":"refund-1","inn":%q,"amount_kopecks":%d,"principal_kopecks":%d,"interest_kopecks":%d,"payee":%q,"reservation":"refund-1"}`,
		key, inn, principal+interest, principal, interest, payee())
}

func cancelIn(key string, void bool) string {
	return fmt.Sprintf(`{"op":"cancel","payout_key":%q,"case_id":"refund-1","reservation":"refund-1","void":%v,"void_reason":"final failure"}`, key, void)
}

func (f *fixture) call(t *testing.T, in string) (contract.PayoutResult, error) {
	t.Helper()
	out, err := f.h.Invoke(context.Background(), []byte(in))
	var res contract.PayoutResult
	if err == nil {
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
	}
	return res, err
}

func errType(err error) string {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie.Type
	}
	return ""
}

func (f *fixture) reservation(t *testing.T) (ledger.Reservation, ledger.Balance) {
	t.Helper()
	r, b, found, err := f.ledger.Get(context.Background(), "refund-1")
	if err != nil || !found {
		t.Fatalf("reservation: %v %v", found, err)
	}
	return r, b
}

func (f *fixture) transfers(t *testing.T) (n int, principal int64) {
	t.Helper()
	for _, it := range f.db.Items("tr") {
		var r Record
		if err := store.Unmarshal(it, &r); err != nil {
			t.Fatal(err)
		}
		if r.Transferred() {
			n++
			principal += r.Principal
		}
	}
	return n, principal
}

func TestPayExactlyOnceAndPostsTheReservation(t *testing.T) {
	f := setup(t, contract.Taxpayer{INN: inn, AccountState: "active", Bank: bank}, 50_000)
	first, err := f.call(t, payIn("refund-1/payout/1", 50_000, 120))
	if err != nil || first.Duplicate || first.AccountLast4 != "****5982" || first.Amount != 50_120 || first.Interest != 120 {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := f.call(t, payIn("refund-1/payout/1", 50_000, 120))
	if err != nil || !second.Duplicate || second.TransferID != first.TransferID {
		t.Fatalf("second: %+v %v", second, err)
	}
	r, b := f.reservation(t)
	if r.State != contract.ReservationPosted || b.Paid != 50_000 || b.Reserved != 0 {
		t.Fatalf("ledger after payout: %+v %+v", r, b)
	}
	writesBefore := f.db.Writes
	// the same key with other content (interest recomputed) is KeyReused, and changes nothing
	if _, err := f.call(t, payIn("refund-1/payout/1", 50_000, 170)); errType(err) != fnerr.TypeKeyReused || f.db.Writes != writesBefore {
		t.Fatalf("want KeyReused and no write, got %v", err)
	}
	// another key for a paid reservation is refused: a case is paid once
	if _, err := f.call(t, payIn("refund-1/payout/2", 50_000, 120)); errType(err) != fnerr.TypeConflict {
		t.Fatalf("second key after payment: %v", err)
	}
	if n, p := f.transfers(t); n != 1 || p != 50_000 {
		t.Fatalf("transfers %d principal %d", n, p)
	}
}

func TestPayRefusals(t *testing.T) {
	other := &contract.BankRequisites{BIK: "044525225", Account: "40817810000000012345"}
	ok := contract.Taxpayer{INN: inn, Bank: bank}
	cases := []struct {
		name     string
		tp       contract.Taxpayer
		reserve  int64
		in       string
		wantType string
	}{
		{"requisites pending", contract.Taxpayer{INN: inn, Bank: bank, PendingBank: other}, 5, payIn("k", 5, 0), fnerr.TypeRequisitesChanged},
		{"no requisites", contract.Taxpayer{INN: inn}, 5, payIn("k", 5, 0), fnerr.TypeRequisitesChanged},
		{"verified account changed", contract.Taxpayer{INN: inn, Bank: other}, 5, payIn("k", 5, 0), fnerr.TypeRequisitesChanged},
		{"no reservation", ok, 0, payIn("k", 5, 0), fnerr.TypeConflict},
		{"principal differs from the reservation", ok, 5, payIn("k", 6, 0), fnerr.TypeKeyReused},
		{"over treasury limit", ok, 99_000, `{"payout_key":"k","case_id":"refund-1","inn":"` + inn + `","amount_kopecks":1000001,"principal_kopecks":99000,"interest_kopecks":901001,"payee":"` + payee() + `","reservation":"refund-1"}`, fnerr.TypeRejected},
		{"zero amount", ok, 5, payIn("k", 0, 0), fnerr.TypeInvalidInput},
		{"amount is not principal plus interest", ok, 5, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":9,"principal_kopecks":5,"interest_kopecks":1,"payee":"p","reservation":"refund-1"}`, fnerr.TypeInvalidInput},
		{"no key", ok, 5, `{"inn":"` + inn + `","amount_kopecks":5,"principal_kopecks":5,"payee":"p","reservation":"refund-1"}`, fnerr.TypeInvalidInput},
		{"no payee", ok, 5, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":5,"principal_kopecks":5,"reservation":"refund-1"}`, fnerr.TypeInvalidInput},
		{"unknown taxpayer", contract.Taxpayer{INN: "7707083893"}, 5, payIn("k", 5, 0), fnerr.TypeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, c.tp, c.reserve)
			if _, err := f.call(t, c.in); errType(err) != c.wantType {
				t.Fatalf("want %s, got %v", c.wantType, err)
			}
			if n, _ := f.transfers(t); n != 0 {
				t.Fatal("a refused payout transferred money")
			}
		})
	}
}

func TestSecondKeyWaitsUntilTheFirstIsCancelled(t *testing.T) {
	f := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 50_000)
	f.crashAfterTransfer = true
	if _, err := f.call(t, payIn("refund-1/payout/1", 50_000, 0)); err == nil || errType(err) == "" {
		// a transient (non-business) failure: the money left but the answer was lost
		if err == nil {
			t.Fatal("want the crash to surface")
		}
	}
	// a new key while the first is in flight is refused
	if _, err := f.call(t, payIn("refund-1/payout/2", 50_000, 0)); errType(err) != fnerr.TypeConflict {
		t.Fatalf("second key while the first is in flight: %v", err)
	}
	// cancelling the first finds the transfer and posts it, whatever the caller believed
	res, err := f.call(t, cancelIn("refund-1/payout/1", true))
	if err != nil || !res.Transferred || res.Cancelled || res.Voided || res.Principal != 50_000 {
		t.Fatalf("cancel after a lost answer: %+v %v", res, err)
	}
	if r, b := f.reservation(t); r.State != contract.ReservationPosted || b.Paid != 50_000 {
		t.Fatalf("ledger %+v %+v", r, b)
	}
	if n, _ := f.transfers(t); n != 1 {
		t.Fatalf("%d transfers", n)
	}
}

func TestCancelFencesTheKeyAndVoids(t *testing.T) {
	f := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 50_000)
	f.db.Replace("tp", "inn", contract.Taxpayer{INN: inn, Bank: bank, PendingBank: bank})
	if _, err := f.call(t, payIn("refund-1/payout/1", 50_000, 0)); errType(err) != fnerr.TypeRequisitesChanged {
		t.Fatalf("held: %v", err)
	}
	res, err := f.call(t, cancelIn("refund-1/payout/1", false))
	if err != nil || !res.Cancelled || res.Transferred {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	f.db.Replace("tp", "inn", contract.Taxpayer{INN: inn, Bank: bank})
	// a late retry under the cancelled key can never transfer
	if _, err := f.call(t, payIn("refund-1/payout/1", 50_000, 0)); errType(err) != fnerr.TypeConflict {
		t.Fatalf("late attempt under a cancelled key: %v", err)
	}
	// the next key pays
	if _, err := f.call(t, payIn("refund-1/payout/2", 50_000, 0)); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.transfers(t); n != 1 {
		t.Fatalf("%d transfers", n)
	}

	// a final failure: cancel with void releases the reservation
	g := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 70_000)
	res, err = g.call(t, cancelIn("refund-1/payout/1", true))
	if err != nil || !res.Cancelled || !res.Voided {
		t.Fatalf("cancel and void: %+v %v", res, err)
	}
	if r, b := g.reservation(t); r.State != contract.ReservationVoided || b.Reserved != 0 || b.Paid != 0 {
		t.Fatalf("ledger %+v %+v", r, b)
	}
	// and nothing is paid for a voided reservation
	if _, err := g.call(t, payIn("refund-1/payout/2", 70_000, 0)); errType(err) != fnerr.TypeConflict {
		t.Fatalf("payout of a voided reservation: %v", err)
	}
}

// countingTreasury counts the transfers asked of the treasury, whatever their outcome.
type countingTreasury struct {
	Treasury
	n *int
}

func (c countingTreasury) Transfer(ctx context.Context, t Transfer) (Receipt, error) {
	*c.n++
	return c.Treasury.Transfer(ctx, t)
}

// A refund is paid only into an individual's rouble account (domain.ValidatePayoutAccount;
// Tax Code art. 78 p.6 pays it "to the taxpayer's account"): an organisation's, an
// entrepreneur's or a currency account is a business refusal for an operator, before the
// reservation is claimed and with no transfer asked of the treasury.
func TestPayRefusesAnAccountThatIsNotAnIndividualsRoubleAccount(t *testing.T) {
	for _, c := range []struct{ name, account, want string }{
		{"organisation", "40702810438160925982", "not an individual's"},
		{"currency", "40817840238160925982", "not a rouble account"},
		{"entrepreneur", "40802810338160925982", "entrepreneur's business account"},
	} {
		t.Run(c.name, func(t *testing.T) {
			acct := &contract.BankRequisites{BIK: "044525225", Account: c.account}
			f := setup(t, contract.Taxpayer{INN: inn, Bank: acct}, 50_000)
			var asked int
			f.h = lambda.NewHandler(fn.Handler(Handler{DB: f.db, Taxpayers: "tp", Ledger: f.ledger,
				Treasury: countingTreasury{DynamoTreasury{DB: f.db, Table: "tr", MaxTransfer: 1_000_000}, &asked}}.Handle))
			in := fmt.Sprintf(`{"payout_key":"refund-1/payout/1","case_id":"refund-1","inn":%q,"amount_kopecks":50000,"principal_kopecks":50000,"payee":%q,"reservation":"refund-1"}`,
				inn, taxpayer.PayeeRef(*acct))
			_, err := f.call(t, in)
			if errType(err) != fnerr.TypeRejected || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.account) {
				t.Fatalf("want a rejection saying %q without the account, got %v", c.want, err)
			}
			if r, _ := f.reservation(t); asked != 0 || r.PayoutKey != "" || r.State != contract.ReservationReserved {
				t.Fatalf("transfers asked %d, reservation %s claimed by %q", asked, r.State, r.PayoutKey)
			}
		})
	}
}

// A payout above the treasury's single-transfer limit can never succeed: it is refused,
// naming the limit, before the reservation is claimed or the treasury asked.
func TestPayAboveTheTreasuryLimitRefusedBeforeTrying(t *testing.T) {
	f := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 50_000)
	var asked int
	f.h = lambda.NewHandler(fn.Handler(Handler{DB: f.db, Taxpayers: "tp", Ledger: f.ledger,
		Treasury: countingTreasury{DynamoTreasury{DB: f.db, Table: "tr", MaxTransfer: 40_000}, &asked}}.Handle))
	_, err := f.call(t, payIn("refund-1/payout/1", 50_000, 0))
	if errType(err) != fnerr.TypeRejected || !strings.Contains(err.Error(), "single-transfer limit of 400.00 ₽") || !strings.Contains(err.Error(), "operator") {
		t.Fatalf("want a rejection naming the limit, got %v", err)
	}
	if r, _ := f.reservation(t); asked != 0 || r.PayoutKey != "" || r.State != contract.ReservationReserved {
		t.Fatalf("transfers asked %d, reservation %s claimed by %q", asked, r.State, r.PayoutKey)
	}
}
