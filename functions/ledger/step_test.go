package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var stepAt = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// countingDB counts the transactions sent, to tell a refusal from a contention loop.
type countingDB struct {
	*storetest.DB
	tx atomic.Int64
}

func (c *countingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.tx.Add(1)
	return c.DB.TransactWriteItems(ctx, in, o...)
}

// stepLedger is newLedger's ledger with a step writer, and case refund-a's step 1
// (received) recorded, so that its `approved` step is seq 2.
func stepLedger(t *testing.T) (Ledger, *countingDB) {
	t.Helper()
	l, _, _ := newLedger(t)
	db := storetest.New(map[string]storetest.Key{"res": {PK: "key"}, "ledger": {PK: "inn", SK: "entry_id"},
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"},
		"t-events": {PK: "case_id", SK: "seq"}})
	addEntry(t, db, "2025#ndfl#1", "charge", 5_000_000)
	addEntry(t, db, "2025#ndfl#2", "payment", 6_699_074)
	cdb := &countingDB{DB: db}
	l.DB = cdb
	l.Steps = &transition.Handler{DB: cdb, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox", Events: "t-events"}
	if _, err := l.Steps.Record(context.Background(), caseStep("refund-a", 1, "", "received")); err != nil {
		t.Fatal(err)
	}
	return l, cdb
}

func caseStep(caseID string, seq int64, from, to string) contract.RecordInput {
	return contract.RecordInput{CaseID: caseID, Seq: seq,
		Entries: []contract.AuditEntry{{At: stepAt, Actor: "system", Action: "status_changed", From: from, To: to, Reason: to + " in full"}},
		Case:    &contract.CaseRecord{Process: "refund", Status: to, Label: to, UpdatedAt: stepAt},
		Notifications: []contract.Notification{{Recipient: "taxpayer", INN: inn, Template: "refund." + to, At: stepAt,
			Params: map[string]string{"label": to}}},
	}
}

func reserveStep(key string, amount int64) contract.LedgerInput {
	in := reserve(key, amount)
	s := caseStep(key, 2, "received", "approved")
	in.Step = &s
	return in
}

// stepItems counts the journal entries, projections and notifications written under a
// step's key.
func stepItems(t *testing.T, db *countingDB, key string) (journal, projection, outbox int) {
	t.Helper()
	count := func(table string) int {
		n := 0
		for _, it := range db.Items(table) {
			if s, ok := it[transition.AttrKey].(*types.AttributeValueMemberS); ok && s.Value == key {
				n++
			}
		}
		return n
	}
	return count("t-audit"), count("t-cases"), count("t-outbox")
}

// checkRecord asserts the case's record holds the step at seq exactly once (written) or
// not at all, and the projection is at the version of the last step.
func checkRecord(t *testing.T, l Ledger, db *countingDB, caseID string, seq int64, written bool) {
	t.Helper()
	key := contract.RecordKey(caseID, seq)
	j, p, o := stepItems(t, db, key)
	rec, _, err := cases.Get(context.Background(), db, "t-cases", caseID)
	if err != nil {
		t.Fatal(err)
	}
	want, version := 0, seq-1
	if written {
		want, version = 1, seq
	}
	events := 0 // the step's integrator event rides in the same transaction
	for _, it := range db.Items("t-events") {
		if s, ok := it[transition.AttrKey].(*types.AttributeValueMemberS); ok && s.Value == key {
			events++
		}
	}
	if events != want {
		t.Fatalf("step %s: %d events, want %d", key, events, want)
	}
	if j != want || p != want || o != want || rec.Version != version {
		t.Fatalf("step %s: %d journal entries, %d projections, %d notifications (want %d each); projection at version %d, want %d",
			key, j, p, o, want, rec.Version, version)
	}
}

// The whole amount reserved: the reservation, its balance and the step in one
// transaction; a retry answers the same, with the step found written.
func TestReserveWithStepWritesTheStepInTheReservationsTransaction(t *testing.T) {
	l, db := stepLedger(t)
	ctx := context.Background()
	before := db.tx.Load()
	res, err := l.Reserve(ctx, reserveStep("refund-a", 500_000))
	if err != nil || res.State != contract.ReservationReserved || res.Amount != 500_000 || res.Step == nil ||
		*res.Step != (contract.StepOutcome{Written: true, Reason: "approved in full"}) {
		t.Fatalf("reserve: %+v %+v %v", res, res.Step, err)
	}
	if n := db.tx.Load() - before; n != 1 {
		t.Fatalf("%d transactions, want the one", n)
	}
	checkRecord(t, l, db, "refund-a", 2, true)
	writes := db.Writes
	again, err := l.Reserve(ctx, reserveStep("refund-a", 500_000))
	if err != nil || !again.Duplicate || again.Amount != 500_000 || again.Step == nil || !again.Step.Written || !again.Step.Duplicate {
		t.Fatalf("again: %+v %+v %v", again, again.Step, err)
	}
	if db.Writes != writes {
		t.Fatalf("the retry wrote %d items", db.Writes-writes)
	}
	checkRecord(t, l, db, "refund-a", 2, true)
	if b := balanceOf(t, l); b.Reserved != 500_000 {
		t.Fatalf("balance %+v", b)
	}
	// The step rode with the digest record-transition gives it: a plain record of the
	// same step is a duplicate.
	if r, err := l.Steps.Record(ctx, *reserveStep("refund-a", 500_000).Step); err != nil || !r.Duplicate {
		t.Fatalf("record-transition of the folded step: %+v %v", r, err)
	}
	d, _ := transition.Digest(*reserveStep("refund-a", 500_000).Step)
	for _, it := range db.Items("t-audit") {
		if it[transition.AttrKey].(*types.AttributeValueMemberS).Value == "refund-a/2" && it[transition.AttrDigest].(*types.AttributeValueMemberS).Value != d {
			t.Fatal("the folded step's digest is not transition.Digest of its input")
		}
	}
}

// The same reservation with its step, many times at once: one reservation, one step,
// and every caller told the step is written.
func TestReserveWithStepConcurrentlyReservesAndRecordsOnce(t *testing.T) {
	l, db := stepLedger(t)
	var wg sync.WaitGroup
	results := make([]contract.LedgerResult, 8)
	errs := make([]error, len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = l.Reserve(context.Background(), reserveStep("refund-a", 500_000))
		}()
	}
	wg.Wait()
	fresh := 0
	for i, r := range results {
		if errs[i] != nil || r.State != contract.ReservationReserved || r.Amount != 500_000 || r.Step == nil || !r.Step.Written || r.Step.Refused != "" {
			t.Fatalf("caller %d: %+v %+v %v", i, r, r.Step, errs[i])
		}
		if !r.Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d callers reserved anew, want 1", fresh)
	}
	if b := balanceOf(t, l); b.Reserved != 500_000 {
		t.Fatalf("balance %+v", b)
	}
	checkRecord(t, l, db, "refund-a", 2, true)
}

// A capped or refused reservation is not what the `approved` step says: no step item is
// written, now or on a retry, and the step's seq stays free.
func TestReserveWithStepCappedOrRefusedWritesNoStep(t *testing.T) {
	l, db := stepLedger(t)
	ctx := context.Background()
	capped, err := l.Reserve(ctx, reserveStep("refund-a", 2_000_000))
	if err != nil || !capped.Capped || capped.Amount != 1_699_074 || capped.Step == nil || *capped.Step != (contract.StepOutcome{}) {
		t.Fatalf("capped: %+v %+v %v", capped, capped.Step, err)
	}
	checkRecord(t, l, db, "refund-a", 2, false)
	again, err := l.Reserve(ctx, reserveStep("refund-a", 2_000_000))
	if err != nil || !again.Duplicate || again.Step == nil || *again.Step != (contract.StepOutcome{}) {
		t.Fatalf("capped again: %+v %+v %v", again, again.Step, err)
	}
	checkRecord(t, l, db, "refund-a", 2, false)
	if _, err := l.Steps.Record(ctx, caseStep("refund-b", 1, "", "received")); err != nil {
		t.Fatal(err)
	}
	refused, err := l.Reserve(ctx, reserveStep("refund-b", 100))
	if err != nil || refused.State != contract.ReservationRefused || refused.Step == nil || *refused.Step != (contract.StepOutcome{}) {
		t.Fatalf("refused: %+v %+v %v", refused, refused.Step, err)
	}
	checkRecord(t, l, db, "refund-b", 2, false)
	// the seq is free: the workflow records what it decided instead
	if r, err := l.Steps.Record(ctx, caseStep("refund-b", 2, "received", "rejected")); err != nil || r.Duplicate {
		t.Fatalf("the free seq: %+v %v", r, err)
	}
}

// The record refuses the step (its projection is at another version, or its key holds
// other content): nothing is reserved, nothing written, and the refusal is answered at
// once, not fought as contention.
func TestReserveWithARefusedStepReservesNothing(t *testing.T) {
	for name, c := range map[string]struct {
		seed func(t *testing.T, l Ledger, db *countingDB)
		want string
	}{
		"projection at another version": {func(t *testing.T, l Ledger, db *countingDB) {
			db.Replace("t-cases", "case_id", contract.CaseRecord{CaseID: "refund-a", Status: "in_review", Version: 5})
		}, fnerr.TypeConflict},
		"key holds other content": {func(t *testing.T, l Ledger, db *countingDB) {
			if _, err := l.Steps.Record(context.Background(), caseStep("refund-a", 2, "received", "in_review")); err != nil {
				t.Fatal(err)
			}
		}, fnerr.TypeKeyReused},
		// the same step recorded by another path, without the reservation it says was made
		"step there without its reservation": {func(t *testing.T, l Ledger, db *countingDB) {
			if _, err := l.Steps.Record(context.Background(), *reserveStep("refund-a", 500_000).Step); err != nil {
				t.Fatal(err)
			}
		}, fnerr.TypeConflict},
	} {
		t.Run(name, func(t *testing.T) {
			l, db := stepLedger(t)
			c.seed(t, l, db)
			snapshot := dumpAll(t, db)
			before := db.tx.Load()
			res, err := l.Reserve(context.Background(), reserveStep("refund-a", 500_000))
			if err != nil || res.State != contract.ReservationNone || res.Amount != 0 || res.Step == nil || res.Step.Written ||
				res.Step.RefusedType != c.want || res.Step.Refused == "" {
				t.Fatalf("want state none and the step refused as %s: %+v %+v %v", c.want, res, res.Step, err)
			}
			if n := db.tx.Load() - before; n != 1 {
				t.Fatalf("%d transactions for a refused step, want 1", n)
			}
			if after := dumpAll(t, db); after != snapshot {
				t.Fatalf("a refused step changed the store:\nbefore %s\nafter  %s", snapshot, after)
			}
			if _, _, found, _ := l.Get(context.Background(), "refund-a"); found {
				t.Fatal("a reservation was made")
			}
		})
	}
}

// A retry that finds the reservation made without its step (an earlier attempt without
// one) writes the step; one the record refuses is answered Refused, the reservation
// standing.
func TestReserveRetryMakesSureOfTheStep(t *testing.T) {
	l, db := stepLedger(t)
	ctx := context.Background()
	if _, err := l.Reserve(ctx, reserve("refund-a", 500_000)); err != nil {
		t.Fatal(err)
	}
	res, err := l.Reserve(ctx, reserveStep("refund-a", 500_000))
	if err != nil || !res.Duplicate || res.Step == nil || !res.Step.Written || res.Step.Duplicate {
		t.Fatalf("retry: %+v %+v %v", res, res.Step, err)
	}
	checkRecord(t, l, db, "refund-a", 2, true)

	if _, err := l.Steps.Record(ctx, caseStep("refund-b", 1, "", "received")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, reserve("refund-b", 100_000)); err != nil {
		t.Fatal(err)
	}
	db.Replace("t-cases", "case_id", contract.CaseRecord{CaseID: "refund-b", Status: "in_review", Version: 4})
	res, err = l.Reserve(ctx, reserveStep("refund-b", 100_000))
	if err != nil || !res.Duplicate || res.State != contract.ReservationReserved || res.Step == nil || res.Step.Written ||
		res.Step.RefusedType != fnerr.TypeConflict {
		t.Fatalf("retry refused: %+v %+v %v", res, res.Step, err)
	}
}

func TestReserveWithStepValidates(t *testing.T) {
	l, db := stepLedger(t)
	ctx := context.Background()
	noWriter := l
	noWriter.Steps = nil
	other := reserveStep("refund-a", 500_000)
	other.Step.CaseID = "refund-z"
	bad := reserveStep("refund-a", 500_000)
	bad.Step.Entries[0].Actor = ""
	huge := reserveStep("refund-a", 500_000)
	for i := 0; i < 96; i++ { // 99 items: one transaction for record-transition, not with the ledger's 2
		huge.Step.Entries = append(huge.Step.Entries, huge.Step.Entries[0])
	}
	writes := db.Writes
	for name, c := range map[string]struct {
		l     Ledger
		in    contract.LedgerInput
		field string
	}{
		"no step writer":   {noWriter, reserveStep("refund-a", 500_000), "step"},
		"another case":     {l, other, "step.case_id"},
		"invalid entry":    {l, bad, "step.entries[0].actor"},
		"too many for one": {l, huge, "step"},
	} {
		_, err := c.l.Reserve(ctx, c.in)
		if !isType(err, fnerr.TypeInvalidInput) || !strings.HasPrefix(err.Error(), fnerr.TypeInvalidInput+": "+c.field+":") {
			t.Errorf("%s: want InvalidInput on %s, got %v", name, c.field, err)
		}
	}
	if db.Writes != writes {
		t.Fatal("an invalid step wrote")
	}
}

// PostStep: the posting and the step in one transaction; a refused step is left out and
// the posting made all the same; a retry makes sure of the step.
func TestPostStepNeverBlocksThePosting(t *testing.T) {
	l, db := stepLedger(t)
	ctx := context.Background()
	for _, k := range []string{"refund-a", "refund-b"} {
		if k != "refund-a" {
			if _, err := l.Steps.Record(ctx, caseStep(k, 1, "", "received")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.Reserve(ctx, reserve(k, 100_000)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.ClaimPayout(ctx, k, k+"/payout/1", 100_000); err != nil {
			t.Fatal(err)
		}
	}
	paid := caseStep("refund-a", 2, "received", "paid")
	res, err := l.PostStep(ctx, "refund-a", "refund-a/payout/1", &paid)
	if err != nil || res.State != contract.ReservationPosted || res.Step == nil || !res.Step.Written || res.Step.Duplicate {
		t.Fatalf("post: %+v %+v %v", res, res.Step, err)
	}
	again, err := l.PostStep(ctx, "refund-a", "refund-a/payout/1", &paid)
	if err != nil || !again.Duplicate || again.Step == nil || !again.Step.Written || !again.Step.Duplicate {
		t.Fatalf("post again: %+v %+v %v", again, again.Step, err)
	}
	checkRecord(t, l, db, "refund-a", 2, true)

	db.Replace("t-cases", "case_id", contract.CaseRecord{CaseID: "refund-b", Status: "in_review", Version: 7})
	paidB := caseStep("refund-b", 2, "received", "paid")
	before := db.tx.Load()
	res, err = l.PostStep(ctx, "refund-b", "refund-b/payout/1", &paidB)
	if err != nil || res.State != contract.ReservationPosted || res.Step == nil || res.Step.Written || res.Step.RefusedType != fnerr.TypeConflict {
		t.Fatalf("post with a refused step: %+v %+v %v", res, res.Step, err)
	}
	if n := db.tx.Load() - before; n != 2 {
		t.Fatalf("%d transactions, want 2 (with the step, then without)", n)
	}
	if b := balanceOf(t, l); b.Paid != 200_000 || b.Reserved != 0 {
		t.Fatalf("balance %+v", b)
	}
	if j, _, _ := stepItems(t, db, "refund-b/2"); j != 0 {
		t.Fatal("a refused step was written")
	}
}

func dumpAll(t *testing.T, db *countingDB) string {
	t.Helper()
	var out []string
	for _, table := range []string{"res", "t-audit", "t-cases", "t-outbox"} {
		for _, it := range db.Items(table) {
			var m map[string]any
			if err := store.Unmarshal(it, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %v", table, m))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Posts of one reservation at once (a pay and its retry, a cancel that found the
// transfer): one posting, and no caller fails on a balance read after another's posting
// (Get reads the reservation, then its balance: a torn read is contention).
func TestConcurrentPostsOfOneReservation(t *testing.T) {
	l, _, _ := newLedger(t)
	ctx := context.Background()
	if _, err := l.Reserve(ctx, reserve("refund-a", 100_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-a", "refund-a/payout/1", 100_000); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	fresh := atomic.Int64{}
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Post(ctx, "refund-a", "refund-a/payout/1")
			if errs[i] = err; err == nil && !res.Duplicate {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if b := balanceOf(t, l); fresh.Load() != 1 || b.Paid != 100_000 || b.Reserved != 0 {
		t.Fatalf("%d postings, balance %+v", fresh.Load(), b)
	}
}

// maskingDB reports a cancelled transaction's failures on the ledger's own items as
// None, as a store that reported only some of them would.
type maskingDB struct{ *countingDB }

func (m maskingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := m.countingDB.TransactWriteItems(ctx, in, o...)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		for i, it := range in.TransactItems {
			if it.Put != nil && *it.Put.TableName == "res" {
				none := "None"
				tce.CancellationReasons[i] = types.CancellationReason{Code: &none}
			}
		}
	}
	return out, err
}

// A retry whose transaction is reported failed on the step's items only (the step it
// wrote before) is still answered as a retry: the reservation is looked for before the
// step's refusal is believed.
func TestReserveRetryReportedAsAStepFailureOnly(t *testing.T) {
	l, db := stepLedger(t)
	l.DB = maskingDB{db}
	ctx := context.Background()
	if _, err := l.Reserve(ctx, reserveStep("refund-a", 500_000)); err != nil {
		t.Fatal(err)
	}
	res, err := l.Reserve(ctx, reserveStep("refund-a", 500_000))
	if err != nil || !res.Duplicate || res.State != contract.ReservationReserved || res.Step == nil || !res.Step.Written || !res.Step.Duplicate {
		t.Fatalf("retry: %+v %+v %v", res, res.Step, err)
	}
	checkRecord(t, l, db, "refund-a", 2, true)
}

func TestOnlyAReservationCarriesAStep(t *testing.T) {
	l, _ := stepLedger(t)
	for _, op := range []string{contract.LedgerVoid, contract.LedgerGet, contract.LedgerExpire} {
		in := reserveStep("refund-a", 500_000)
		in.Op = op
		if _, err := (Handler{Ledger: l}).Handle(context.Background(), in); !isType(err, fnerr.TypeInvalidInput) {
			t.Errorf("%s with a step: %v", op, err)
		}
	}
}
