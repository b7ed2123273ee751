package payout

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var stepAt = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// faultyDB fails the next posting transaction that carries a step: before it is made
// (the store down) or after (made, the answer lost).
type faultyDB struct {
	*storetest.DB
	mu              sync.Mutex
	failBeforePosts int
	failAfterPosts  int
}

func (d *faultyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	carriesStep := false
	for _, it := range in.TransactItems {
		carriesStep = carriesStep || (it.Put != nil && aws.ToString(it.Put.TableName) == "t-audit" && len(in.TransactItems) > 3)
	}
	d.mu.Lock()
	before, after := carriesStep && d.failBeforePosts > 0, carriesStep && d.failAfterPosts > 0
	if before {
		d.failBeforePosts--
	}
	if after {
		d.failAfterPosts--
	}
	d.mu.Unlock()
	if before {
		return nil, errors.New("connection reset before the posting")
	}
	out, err := d.DB.TransactWriteItems(ctx, in, o...)
	if err == nil && after {
		return nil, errors.New("connection reset after the posting")
	}
	return out, err
}

// stepFixture is setup's fixture whose ledger writes steps, with case refund-1's step 1
// recorded (the `paid` step is seq 2).
func stepFixture(t *testing.T) (*fixture, *faultyDB) {
	t.Helper()
	f := setup(t, contract.Taxpayer{INN: inn, AccountState: "active", Bank: bank}, 50_000)
	fdb := &faultyDB{DB: f.db}
	f.ledger.DB = fdb
	f.ledger.Steps = &transition.Handler{DB: fdb, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox", Events: "t-events"}
	tr := DynamoTreasury{DB: f.db, Table: "tr", MaxTransfer: 1_000_000, Now: func() time.Time { return stepAt }}
	f.h = lambda.NewHandler(fn.Handler(Handler{DB: f.db, Taxpayers: "tp", Treasury: crashingTreasury{tr, f}, Ledger: f.ledger}.Handle))
	first := contract.RecordInput{CaseID: "refund-1", Seq: 1,
		Entries: []contract.AuditEntry{{At: stepAt, Actor: "system", Action: "status_changed", To: "approved"}},
		Case:    &contract.CaseRecord{Process: "refund", Status: "approved", UpdatedAt: stepAt}}
	if _, err := f.ledger.Steps.Record(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	return f, fdb
}

// paidStep is the case's `paid` step, the transfer id left to the payout.
func paidStep() *contract.RecordInput {
	return &contract.RecordInput{CaseID: "refund-1", Seq: 2,
		Entries: []contract.AuditEntry{{At: stepAt, Actor: "system", Action: "status_changed", From: "approved", To: "paid",
			Reason: "paid by transfer " + contract.TransferPlaceholder}},
		Case: &contract.CaseRecord{Process: "refund", Status: "paid", UpdatedAt: stepAt, Amounts: map[string]int64{"paid": 50_000}},
		Notifications: []contract.Notification{{Recipient: "taxpayer", INN: inn, Template: "refund.paid", At: stepAt,
			Params: map[string]string{"transfer_id": contract.TransferPlaceholder}}},
	}
}

func payStep(key string) string {
	b, _ := json.Marshal(contract.PayoutInput{Op: contract.PayoutPay, PayoutKey: key, CaseID: "refund-1", INN: inn, Amount: 50_000,
		Principal: 50_000, Payee: payee(), Reservation: "refund-1", Step: paidStep()})
	return string(b)
}

func cancelStep(key string) string {
	b, _ := json.Marshal(contract.PayoutInput{Op: contract.PayoutCancel, PayoutKey: key, CaseID: "refund-1", Reservation: "refund-1",
		Void: true, VoidReason: "cancelled", Step: paidStep()})
	return string(b)
}

// stepOf reads what the record holds under refund-1/2: the journal entries, projections
// and notifications written under the key.
func (f *fixture) stepOf(t *testing.T) (journal []contract.AuditEntry, projections int, outbox []contract.Notification) {
	t.Helper()
	mine := func(it map[string]types.AttributeValue) bool {
		s, ok := it[transition.AttrKey].(*types.AttributeValueMemberS)
		return ok && s.Value == "refund-1/2"
	}
	for _, it := range f.db.Items("t-audit") {
		if mine(it) {
			var e contract.AuditEntry
			if err := store.Unmarshal(it, &e); err != nil {
				t.Fatal(err)
			}
			journal = append(journal, e)
		}
	}
	for _, it := range f.db.Items("t-cases") {
		if mine(it) {
			projections++
		}
	}
	// the step's integrator event rides with its projection: one each, or none
	events := 0
	for _, it := range f.db.Items("t-events") {
		if mine(it) {
			events++
		}
	}
	if events != projections {
		t.Fatalf("the step wrote %d events and %d projections", events, projections)
	}
	for _, it := range f.db.Items("t-outbox") {
		if mine(it) {
			var n contract.Notification
			if err := store.Unmarshal(it, &n); err != nil {
				t.Fatal(err)
			}
			outbox = append(outbox, n)
		}
	}
	return journal, projections, outbox
}

// invariants: the ledger's paid is what the treasury transferred; the `paid` step is in
// the record exactly once with the transfer's id (written) or not at all; the projection
// is at the version of the last step written.
func (f *fixture) invariants(t *testing.T, written bool) {
	t.Helper()
	n, principal := f.transfers(t)
	_, b := f.reservation(t)
	if b.Paid != principal || n > 1 {
		t.Fatalf("ledger paid %d, treasury transferred %d in %d transfers", b.Paid, principal, n)
	}
	journal, projections, outbox := f.stepOf(t)
	rec, _, err := cases.Get(context.Background(), f.db, "t-cases", "refund-1")
	if err != nil {
		t.Fatal(err)
	}
	if !written {
		if len(journal) != 0 || projections != 0 || len(outbox) != 0 || rec.Version != 1 {
			t.Fatalf("the step is in the record: %d entries, %d projections, %d notifications, version %d", len(journal), projections, len(outbox), rec.Version)
		}
		return
	}
	if len(journal) != 1 || projections != 1 || len(outbox) != 1 || rec.Version != 2 || rec.Status != "paid" {
		t.Fatalf("step: %d entries, %d projections, %d notifications; projection %s at version %d", len(journal), projections, len(outbox), rec.Status, rec.Version)
	}
	var id string
	for _, it := range f.db.Items("tr") {
		var r Record
		_ = store.Unmarshal(it, &r)
		if r.Transferred() {
			id = r.TransferID
		}
	}
	if id == "" || journal[0].Reason != "paid by transfer "+id || outbox[0].Params["transfer_id"] != id {
		t.Fatalf("transfer %q, journal reason %q, notification %v", id, journal[0].Reason, outbox[0].Params)
	}
	// the folded step is the step record-transition would write: a later plain record of
	// it is a duplicate
	filled := contract.FillTransfer(*paidStep(), id)
	d, _ := transition.Digest(filled)
	for _, it := range f.db.Items("t-audit") {
		if s, _ := it[transition.AttrKey].(*types.AttributeValueMemberS); s != nil && s.Value == "refund-1/2" &&
			it[transition.AttrDigest].(*types.AttributeValueMemberS).Value != d {
			t.Fatal("the folded step's digest is not transition.Digest of its filled input")
		}
	}
	if r, err := f.ledger.Steps.Record(context.Background(), filled); err != nil || !r.Duplicate {
		t.Fatalf("record-transition of the folded step: %+v %v", r, err)
	}
}

func TestPayWithStepTwiceTransfersPostsAndRecordsOnce(t *testing.T) {
	f, _ := stepFixture(t)
	first, err := f.call(t, payStep("refund-1/payout/1"))
	if err != nil || first.Duplicate || first.Step == nil || !first.Step.Written || first.Step.Duplicate ||
		first.Step.Reason != "paid by transfer "+first.TransferID {
		t.Fatalf("first: %+v %+v %v", first, first.Step, err)
	}
	second, err := f.call(t, payStep("refund-1/payout/1"))
	if err != nil || !second.Duplicate || second.TransferID != first.TransferID || second.Step == nil || !second.Step.Written || !second.Step.Duplicate {
		t.Fatalf("second: %+v %+v %v", second, second.Step, err)
	}
	if r, _ := f.reservation(t); r.State != contract.ReservationPosted {
		t.Fatalf("reservation %+v", r)
	}
	f.invariants(t, true)
	// without a step the payout answers none, as before
	g := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 50_000)
	if res, err := g.call(t, payIn("refund-1/payout/1", 50_000, 0)); err != nil || res.Step != nil {
		t.Fatalf("a pay without a step: %+v %v", res, err)
	}
}

// The record refuses the step: the money has left, so the reservation is posted all the
// same and the refusal answered with the success.
func TestPayWithAConflictingStepPostsTheMoneyAnyway(t *testing.T) {
	f, _ := stepFixture(t)
	f.db.Replace("t-cases", "case_id", contract.CaseRecord{CaseID: "refund-1", Status: "approved", Version: 5})
	res, err := f.call(t, payStep("refund-1/payout/1"))
	if err != nil || res.TransferID == "" || res.Step == nil || res.Step.Written || res.Step.RefusedType != fnerr.TypeConflict {
		t.Fatalf("pay: %+v %+v %v", res, res.Step, err)
	}
	r, b := f.reservation(t)
	if n, p := f.transfers(t); r.State != contract.ReservationPosted || n != 1 || b.Paid != p || p != 50_000 {
		t.Fatalf("reservation %s, paid %d, transfers %d of %d", r.State, b.Paid, n, p)
	}
	if journal, _, outbox := f.stepOf(t); len(journal) != 0 || len(outbox) != 0 {
		t.Fatal("a refused step was written")
	}
	// a retry answers the same refusal, and posts nothing twice
	again, err := f.call(t, payStep("refund-1/payout/1"))
	if err != nil || !again.Duplicate || again.Step == nil || again.Step.RefusedType != fnerr.TypeConflict {
		t.Fatalf("again: %+v %+v %v", again, again.Step, err)
	}
	if _, b := f.reservation(t); b.Paid != 50_000 {
		t.Fatalf("paid %d", b.Paid)
	}
}

// The posting fails after the transfer, before or after its transaction is made: the
// retry finds the transfer and posts with the step, which is written once.
func TestPayWithStepFailingAfterTheTransferIsWrittenOnceOnRetry(t *testing.T) {
	for name, fault := range map[string]func(*faultyDB){
		"posting not made":          func(d *faultyDB) { d.failBeforePosts = 1 },
		"posting made, answer lost": func(d *faultyDB) { d.failAfterPosts = 1 },
	} {
		t.Run(name, func(t *testing.T) {
			f, fdb := stepFixture(t)
			fault(fdb)
			if _, err := f.call(t, payStep("refund-1/payout/1")); err == nil || fnerr.IsBusiness(errType(err)) {
				t.Fatalf("want a retryable failure, got %v", err)
			}
			if n, _ := f.transfers(t); n != 1 {
				t.Fatalf("%d transfers", n)
			}
			res, err := f.call(t, payStep("refund-1/payout/1"))
			if err != nil || !res.Duplicate || res.Step == nil || !res.Step.Written {
				t.Fatalf("retry: %+v %+v %v", res, res.Step, err)
			}
			f.invariants(t, true)
		})
	}
}

// A cancel carrying the step that finds the money transferred posts it with the step,
// exactly as the pay would have.
func TestCancelWithStepAfterATransferWritesTheStep(t *testing.T) {
	f, _ := stepFixture(t)
	f.crashAfterTransfer = true
	if _, err := f.call(t, payStep("refund-1/payout/1")); err == nil {
		t.Fatal("want the crash to surface")
	}
	// transferred, not posted yet: no step
	if journal, projections, outbox := f.stepOf(t); len(journal)+projections+len(outbox) != 0 {
		t.Fatal("a step was written before the posting")
	}
	res, err := f.call(t, cancelStep("refund-1/payout/1"))
	if err != nil || !res.Transferred || res.Cancelled || res.Voided || res.Step == nil || !res.Step.Written || res.Step.Duplicate {
		t.Fatalf("cancel: %+v %+v %v", res, res.Step, err)
	}
	f.invariants(t, true)
	// the cancel again, and a late pay under the key, find it all written
	if res, err := f.call(t, cancelStep("refund-1/payout/1")); err != nil || !res.Transferred || res.Step == nil || !res.Step.Duplicate {
		t.Fatalf("cancel again: %+v %v", res, err)
	}
	if res, err := f.call(t, payStep("refund-1/payout/1")); err != nil || res.Step == nil || !res.Step.Duplicate {
		t.Fatalf("late pay: %+v %v", res, err)
	}
	f.invariants(t, true)
}

// A cancel carrying the step before any transfer fences the key: the step is not
// written, and no later pay under the key can transfer or write it.
func TestCancelWithStepWithoutATransferFencesTheStep(t *testing.T) {
	f, _ := stepFixture(t)
	res, err := f.call(t, cancelStep("refund-1/payout/1"))
	if err != nil || !res.Cancelled || !res.Voided || res.Transferred || res.Step == nil || *res.Step != (contract.StepOutcome{}) {
		t.Fatalf("cancel: %+v %+v %v", res, res.Step, err)
	}
	if _, err := f.call(t, payStep("refund-1/payout/1")); errType(err) != fnerr.TypeConflict {
		t.Fatalf("a pay under the fenced key: %v", err)
	}
	if n, _ := f.transfers(t); n != 0 {
		t.Fatalf("%d transfers", n)
	}
	if journal, projections, outbox := f.stepOf(t); len(journal)+projections+len(outbox) != 0 {
		t.Fatal("the fenced key's step was written")
	}
	if r, b := f.reservation(t); r.State != contract.ReservationVoided || b.Paid != 0 {
		t.Fatalf("reservation %s paid %d", r.State, b.Paid)
	}
}

// A step that could not ride in the posting is refused before anything is claimed or
// sent, as invalid input.
func TestPayWithAnInvalidStepChangesNothing(t *testing.T) {
	f, _ := stepFixture(t)
	noWriter := setup(t, contract.Taxpayer{INN: inn, Bank: bank}, 50_000)
	for name, c := range map[string]struct {
		f     *fixture
		in    func() string
		field string
	}{
		"no step writer": {noWriter, func() string { return payStep("refund-1/payout/1") }, "step"},
		"another case": {f, func() string {
			return strings.Replace(payStep("refund-1/payout/1"), `"step":{"case_id":"refund-1"`, `"step":{"case_id":"refund-9"`, 1)
		}, "step.case_id"},
		"invalid step": {f, func() string {
			return strings.Replace(payStep("refund-1/payout/1"), `"actor":"system"`, `"actor":""`, 1)
		}, "step.entries[0].actor"},
	} {
		t.Run(name, func(t *testing.T) {
			writes := c.f.db.Writes
			_, err := c.f.call(t, c.in())
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput || !strings.HasPrefix(ie.Message, c.field+":") {
				t.Fatalf("want InvalidInput on %s, got %v", c.field, err)
			}
			if c.f.db.Writes != writes {
				t.Fatal("an invalid step changed something")
			}
			if _, err := c.f.call(t, strings.Replace(cancelStep("refund-1/payout/1"), `"actor":"system"`, `"actor":""`, 1)); c.f == f && errType(err) != fnerr.TypeInvalidInput {
				t.Fatalf("cancel with an invalid step: %v", err)
			}
		})
	}
}

// The same pay with its step, several at once: one transfer, one posting, one step, and
// every caller told it is written.
func TestPayWithStepConcurrently(t *testing.T) {
	f, _ := stepFixture(t)
	// one handler per caller: a Lambda serves one invocation at a time
	h := Handler{DB: f.db, Taxpayers: "tp", Ledger: f.ledger, Treasury: DynamoTreasury{DB: f.db, Table: "tr", MaxTransfer: 1_000_000}}
	var wg sync.WaitGroup
	results := make([]contract.PayoutResult, 6)
	errs := make([]error, len(results))
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := lambda.NewHandler(fn.Handler(h.Handle)).Invoke(context.Background(), []byte(payStep("refund-1/payout/1")))
			if errs[i] = err; err == nil {
				errs[i] = json.Unmarshal(out, &results[i])
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if errs[i] != nil || r.TransferID != results[0].TransferID || r.Step == nil || !r.Step.Written || r.Step.Refused != "" {
			t.Fatalf("caller %d: %+v %+v %v", i, r, r.Step, errs[i])
		}
	}
	f.invariants(t, true)
}
