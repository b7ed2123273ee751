package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

// newLedger has a refundable overpayment of 1 699 074 kopecks (16 990.74 ₽) for 2025.
func newLedger(t *testing.T) (Ledger, *storetest.DB, lambda.Handler) {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"res": {PK: "key"}, "ledger": {PK: "inn", SK: "entry_id"}})
	addEntry(t, db, "2025#ndfl#1", "charge", 5_000_000)
	addEntry(t, db, "2025#ndfl#2", "payment", 6_699_074)
	l := Ledger{DB: db, Table: "res", Entries: "ledger", Now: func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }}
	return l, db, lambda.NewHandler(fn.Handler(Handler{Ledger: l}.Handle))
}

func addEntry(t *testing.T, db *storetest.DB, id, kind string, amount int64) {
	t.Helper()
	if _, err := store.PutNew(context.Background(), db, "ledger", "entry_id",
		contract.LedgerEntry{INN: inn, EntryID: id, Kind: kind, Tax: "ndfl", Period: 2025, Amount: amount}); err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, h lambda.Handler, in contract.LedgerInput) (contract.LedgerResult, error) {
	t.Helper()
	b, _ := json.Marshal(in)
	out, err := h.Invoke(context.Background(), b)
	var res contract.LedgerResult
	if err == nil {
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
	}
	return res, err
}

// mustCall is call for a step that sets a test up: it must succeed.
func mustCall(t *testing.T, h lambda.Handler, in contract.LedgerInput) contract.LedgerResult {
	t.Helper()
	res, err := call(t, h, in)
	if err != nil {
		t.Fatalf("%s %s: %v", in.Op, in.Key, err)
	}
	return res
}

func reserve(key string, amount int64) contract.LedgerInput {
	return contract.LedgerInput{Op: contract.LedgerReserve, Key: key, CaseID: key, INN: inn, Period: 2025, Amount: amount}
}

func errType(err error) string {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie.Type
	}
	return ""
}

func balanceOf(t *testing.T, l Ledger) Balance {
	t.Helper()
	b, _, err := l.balance(context.Background(), BalanceKey(inn, 2025))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The case: three claims of 9 000 ₽ against 16 990.74 ₽ refundable.
func TestThreeClaimsAgainstOneOverpaymentReserveAtMostTheOverpayment(t *testing.T) {
	l, _, h := newLedger(t)
	first, err := call(t, h, reserve("refund-a", 900_000))
	if err != nil || first.State != contract.ReservationReserved || first.Amount != 900_000 || first.Capped {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := call(t, h, reserve("refund-b", 900_000))
	if err != nil || second.State != contract.ReservationReserved || second.Amount != 799_074 || !second.Capped ||
		!strings.Contains(second.Reason, "capped to 7990.74 ₽") {
		t.Fatalf("second: %+v %v", second, err)
	}
	third, err := call(t, h, reserve("refund-c", 900_000))
	if err != nil || third.State != contract.ReservationRefused || third.Amount != 0 || !strings.Contains(third.Reason, "nothing left") {
		t.Fatalf("third: %+v %v", third, err)
	}
	if b := balanceOf(t, l); b.Reserved != 1_699_074 || b.Paid != 0 || b.Refundable != 1_699_074 {
		t.Fatalf("balance %+v", b)
	}
	if _, _, found, _ := l.Get(context.Background(), "refund-c"); found {
		t.Fatal("a refused claim stored a reservation")
	}
}

func TestReserveIsIdempotentByKey(t *testing.T) {
	_, db, h := newLedger(t)
	first, _ := call(t, h, reserve("refund-a", 100_000))
	writes := db.Writes
	again, err := call(t, h, reserve("refund-a", 100_000))
	if err != nil || !again.Duplicate || again.Amount != first.Amount || db.Writes != writes {
		t.Fatalf("again: %+v %v (writes %d → %d)", again, err, writes, db.Writes)
	}
	if _, err := call(t, h, reserve("refund-a", 200_000)); errType(err) != fnerr.TypeKeyReused {
		t.Fatalf("same key, other amount: %v", err)
	}
	other := reserve("refund-a", 100_000)
	other.Period = 2024
	if _, err := call(t, h, other); errType(err) != fnerr.TypeKeyReused {
		t.Fatalf("same key, other period: %v", err)
	}
}

func TestReserveValidates(t *testing.T) {
	_, db, h := newLedger(t)
	before := db.Writes
	for name, in := range map[string]contract.LedgerInput{
		"zero":     reserve("k", 0),
		"negative": reserve("k", -5),
		"no key":   reserve("", 5),
		"bad inn":  {Op: contract.LedgerReserve, Key: "k", INN: "123", Period: 2025, Amount: 5},
		"period":   {Op: contract.LedgerReserve, Key: "k", INN: inn, Period: 25, Amount: 5},
		"op":       {Op: "steal", Key: "k"},
	} {
		if _, err := call(t, h, in); errType(err) != fnerr.TypeInvalidInput {
			t.Errorf("%s: want InvalidInput, got %v", name, err)
		}
	}
	if db.Writes != before {
		t.Fatal("an invalid request wrote")
	}
}

func TestVoidReleasesOnceAndNeverAPostedOrInFlightReservation(t *testing.T) {
	l, _, h := newLedger(t)
	mustCall(t, h, reserve("refund-a", 1_000_000))
	mustCall(t, h, reserve("refund-b", 600_000))
	v, err := call(t, h, contract.LedgerInput{Op: contract.LedgerVoid, Key: "refund-a", Reason: "rejected by the reviewer"})
	if err != nil || v.State != contract.ReservationVoided || v.Reserved != 600_000 {
		t.Fatalf("void: %+v %v", v, err)
	}
	again, err := call(t, h, contract.LedgerInput{Op: contract.LedgerVoid, Key: "refund-a"})
	if err != nil || !again.Duplicate || again.Reserved != 600_000 {
		t.Fatalf("void again: %+v %v", again, err)
	}
	if none, err := call(t, h, contract.LedgerInput{Op: contract.LedgerVoid, Key: "never"}); err != nil || none.State != contract.ReservationNone {
		t.Fatalf("void of nothing: %+v %v", none, err)
	}
	// what was voided is available again
	if c, _ := call(t, h, reserve("refund-c", 1_099_074)); c.Amount != 1_099_074 || c.Capped {
		t.Fatalf("after void: %+v", c)
	}
	ctx := context.Background()
	if _, err := l.ClaimPayout(ctx, "refund-b", "refund-b/payout/1", 600_000); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, h, contract.LedgerInput{Op: contract.LedgerVoid, Key: "refund-b"}); errType(err) != fnerr.TypeConflict {
		t.Fatalf("void with a payout in flight: %v", err)
	}
	if _, err := l.Post(ctx, "refund-b", "refund-b/payout/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, h, contract.LedgerInput{Op: contract.LedgerVoid, Key: "refund-b"}); errType(err) != fnerr.TypeConflict {
		t.Fatalf("void of a posted reservation: %v", err)
	}
	if b := balanceOf(t, l); b.Paid != 600_000 || b.Reserved != 1_099_074 || b.Reserved+b.Paid > b.Refundable {
		t.Fatalf("balance %+v", b)
	}
}

func TestPostOnceUnderTheClaimedKeyOnly(t *testing.T) {
	l, _, h := newLedger(t)
	ctx := context.Background()
	mustCall(t, h, reserve("refund-a", 500_000))
	if _, err := l.Post(ctx, "refund-a", "refund-a/payout/1"); !isType(err, fnerr.TypeConflict) {
		t.Fatalf("post before a claim: %v", err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-a", "refund-a/payout/1", 500_000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-a", "refund-a/payout/2", 500_000); !isType(err, fnerr.TypeConflict) {
		t.Fatalf("a second key while one is in flight: %v", err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-a", "refund-a/payout/1", 400_000); !isType(err, fnerr.TypeKeyReused) {
		t.Fatalf("another principal: %v", err)
	}
	p, err := l.Post(ctx, "refund-a", "refund-a/payout/1")
	if err != nil || p.State != contract.ReservationPosted || p.Paid != 500_000 || p.Reserved != 0 {
		t.Fatalf("post: %+v %v", p, err)
	}
	again, err := l.Post(ctx, "refund-a", "refund-a/payout/1")
	if err != nil || !again.Duplicate || again.Paid != 500_000 {
		t.Fatalf("post again: %+v %v", again, err)
	}
	if _, err := l.Post(ctx, "refund-a", "refund-a/payout/2"); !isType(err, fnerr.TypeConflict) {
		t.Fatalf("post under another key: %v", err)
	}
	// release then another key: allowed only while not posted
	mustCall(t, h, reserve("refund-b", 100_000))
	if _, err := l.ClaimPayout(ctx, "refund-b", "refund-b/payout/1", 100_000); err != nil {
		t.Fatal(err)
	}
	if err := l.ReleasePayout(ctx, "refund-b", "refund-b/payout/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-b", "refund-b/payout/2", 100_000); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

func isType(err error, typ string) bool {
	var fe *fnerr.Error
	return errors.As(err, &fe) && fe.Type == typ
}

// The ledger changes: a new payment makes more available; a new charge refuses new
// claims but takes nothing back, and the stored balance never breaks the invariant.
func TestRefundableIsRecomputedOnEveryReservation(t *testing.T) {
	l, db, h := newLedger(t)
	mustCall(t, h, reserve("refund-a", 1_699_074))
	addEntry(t, db, "2025#ndfl#3", "payment", 300_000)
	b, err := call(t, h, reserve("refund-b", 500_000))
	if err != nil || b.Amount != 300_000 || !b.Capped || b.Refundable != 1_999_074 {
		t.Fatalf("after a new payment: %+v %v", b, err)
	}
	addEntry(t, db, "2025#ndfl#4", "charge", 1_000_000)
	c, err := call(t, h, reserve("refund-c", 100))
	if err != nil || c.State != contract.ReservationRefused || c.Refundable != 999_074 {
		t.Fatalf("after a new charge: %+v %v", c, err)
	}
	bal := balanceOf(t, l)
	if bal.Refundable != 1_999_074 || bal.Reserved != 1_999_074 {
		t.Fatalf("the stored balance must keep the refundable its reservations were granted against: %+v", bal)
	}
}

func TestConcurrentReservationsNeverExceedRefundable(t *testing.T) {
	l, _, _ := newLedger(t)
	var wg sync.WaitGroup
	results := make([]contract.LedgerResult, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Reserve(context.Background(), reserve(fmt.Sprintf("refund-%d", i), 300_000))
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	var total int64
	full, capped, refused := 0, 0, 0
	for _, r := range results {
		total += r.Amount
		switch {
		case r.State == contract.ReservationRefused:
			refused++
		case r.Capped:
			capped++
		default:
			full++
		}
	}
	if total != 1_699_074 || full != 5 || capped != 1 || refused != 4 {
		t.Fatalf("total %d: %d full, %d capped, %d refused", total, full, capped, refused)
	}
	if b := balanceOf(t, l); b.Reserved != total {
		t.Fatalf("balance %+v", b)
	}
}

func TestExpireVoidsOnlyExpiredReservationsWithoutAPayout(t *testing.T) {
	l, _, h := newLedger(t)
	ctx := context.Background()
	past, future := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for key, exp := range map[string]time.Time{"refund-old": past, "refund-paying": past, "refund-live": future} {
		in := reserve(key, 100_000)
		in.ExpiresAt = exp
		if _, err := call(t, h, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ClaimPayout(ctx, "refund-paying", "refund-paying/payout/1", 100_000); err != nil {
		t.Fatal(err)
	}
	res, err := call(t, h, contract.LedgerInput{Op: contract.LedgerExpire, Now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil || res.Voided != 1 || res.InFlight != 1 {
		t.Fatalf("expire: %+v %v", res, err)
	}
	for key, want := range map[string]string{"refund-old": contract.ReservationVoided, "refund-paying": contract.ReservationReserved, "refund-live": contract.ReservationReserved} {
		if r, _, _, _ := l.Get(ctx, key); r.State != want {
			t.Errorf("%s: %s, want %s", key, r.State, want)
		}
	}
	if b := balanceOf(t, l); b.Reserved != 200_000 {
		t.Fatalf("balance %+v", b)
	}
}
