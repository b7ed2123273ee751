package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/esigncheck"
	"github.com/taxflow/taxflow/functions/fn"
	identityfn "github.com/taxflow/taxflow/functions/identity"
	"github.com/taxflow/taxflow/functions/identityclear"
	"github.com/taxflow/taxflow/functions/identityconfirm"
	"github.com/taxflow/taxflow/functions/inactive"
	ledgerfn "github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/retention"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/functions/unblock"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const (
	testINN  = "500100732259"
	testCase = "refund-0c6f6f9e-0000-4000-8000-000000000001"
)

var (
	testBank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	pdfBytes = []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n")
)

// harness runs the refund workflow with the real function handlers, in process, over an
// in-memory DynamoDB and S3; only payout failures can be injected.
type harness struct {
	t          *testing.T
	env        *testsuite.TestWorkflowEnvironment
	db         *storetest.DB
	s3         *storetest.S3
	payoutFail int   // the first N payout calls fail transiently
	payoutErr  error // every payout call fails with this
	payouts    int
	payIns     []contract.PayoutInput // every payout call's input, in order
	onPay      func(n int) error      // called before the n-th payout call (from 1); an error fails it
	// afterPay is called after the n-th payout call has had its effect; an error fails the
	// call all the same (an outcome the caller does not learn)
	afterPay func(n int) error
	// afterRecord is called after each record-transition call with its input and error
	afterRecord func(in contract.RecordInput, err error)
	// afterReserve is called after each reservation with its input, answer and error
	afterReserve func(in contract.LedgerInput, res contract.LedgerResult, err error)
	cancels      int
	updates      int
	answered     map[string]bool // update id → the update was accepted and completed, or refused
}

func newHarness(t *testing.T, tp contract.Taxpayer, ledger ...contract.LedgerEntry) *harness {
	h := &harness{t: t, answered: map[string]bool{}}
	// An update that got no answer at all (neither refused nor completed) is a failure.
	t.Cleanup(func() {
		for id, ok := range h.answered {
			if !ok {
				t.Errorf("update %s got no answer", id)
			}
		}
	})
	h.db, h.s3 = newStores()
	if tp.INN != "" {
		mustPut(t, h.db, "taxpayers", "inn", tp)
	}
	for _, e := range ledger {
		mustPut(t, h.db, "ledger", "entry_id", e)
	}
	h.start()
	return h
}

// newHarnessOn is a harness over stores another harness filled (another run of a case).
func newHarnessOn(t *testing.T, db *storetest.DB, s3 *storetest.S3) *harness {
	h := &harness{t: t, answered: map[string]bool{}, db: db, s3: s3}
	h.start()
	return h
}

// start makes the test environment with the real handlers over the harness's stores.
func (h *harness) start() {
	t := h.t
	ctx := context.Background()
	pay := payoutHandler(h.db)
	handlers := realHandlers(h.db, h.s3)
	handlers[contract.FnPayout] = fn.Handler(func(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
		if in.Op == contract.PayoutCancel {
			h.cancels++
			return pay.Handle(ctx, in)
		}
		h.payouts++
		h.payIns = append(h.payIns, in)
		if h.onPay != nil {
			if err := h.onPay(h.payouts); err != nil {
				return contract.PayoutResult{}, err
			}
		}
		if h.payoutErr != nil {
			return contract.PayoutResult{}, h.payoutErr
		}
		if h.payoutFail > 0 {
			h.payoutFail--
			return contract.PayoutResult{}, errors.New("treasury gateway timeout")
		}
		res, err := pay.Handle(ctx, in)
		if err == nil && h.afterPay != nil {
			if aerr := h.afterPay(h.payouts); aerr != nil {
				return contract.PayoutResult{}, aerr
			}
		}
		return res, err
	})
	record := handlers[contract.FnRecordTransition].(func(context.Context, contract.RecordInput) (contract.RecordResult, error))
	handlers[contract.FnRecordTransition] = func(ctx context.Context, in contract.RecordInput) (contract.RecordResult, error) {
		res, err := record(ctx, in)
		if h.afterRecord != nil {
			h.afterRecord(in, err)
		}
		return res, err
	}
	ledgerOp := handlers[contract.FnLedger].(func(context.Context, contract.LedgerInput) (contract.LedgerResult, error))
	handlers[contract.FnLedger] = func(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
		res, err := ledgerOp(ctx, in)
		if in.Op == contract.LedgerReserve && h.afterReserve != nil {
			h.afterReserve(in, res, err)
		}
		return res, err
	}
	var s testsuite.WorkflowTestSuite
	h.env = newTestEnv(&s)
	h.env.RegisterWorkflow(Refund)
	registerActivities(h.env, handlers)
	_, _ = ctx, t
}

func testLedger(db *storetest.DB) ledgerfn.Ledger {
	return ledgerfn.Ledger{DB: db, Table: "reservations", Entries: "ledger",
		Steps: &transition.Handler{DB: db, Journal: "audit", Cases: "cases", Outbox: "outbox"}}
}

func payoutHandler(db *storetest.DB) payout.Handler {
	return payout.Handler{DB: db, Taxpayers: "taxpayers", Treasury: payout.DynamoTreasury{DB: db, Table: "treasury", MaxTransfer: 100_000_000},
		Ledger: testLedger(db)}
}

// realHandlers are the functions' real handlers over in-memory stores.
func realHandlers(db *storetest.DB, s3 *storetest.S3) map[string]any {
	handlers := map[string]any{
		contract.FnLedger:          fn.Handler(ledgerfn.Handler{Ledger: testLedger(db)}.Handle),
		contract.FnPayout:          fn.Handler(payoutHandler(db).Handle),
		contract.FnTaxpayerCheck:   fn.Handler(taxpayer.Handler{DB: db, Table: "taxpayers"}.Check),
		contract.FnOverpayment:     fn.Handler(overpayment.Handler{DB: db, Table: "ledger"}.Compute),
		contract.FnDocumentStore:   fn.Handler(document.Handler{S3: s3, Bucket: "documents"}.Store),
		contract.FnIdentityMatch:   fn.Handler(identityfn.Handler{DB: db, Taxpayers: "taxpayers", S3: s3, Bucket: "documents"}.Match),
		contract.FnIdentityConfirm: fn.Handler(identityconfirm.Handler{DB: db, Taxpayers: "taxpayers"}.Confirm),
		contract.FnESignCheck:      fn.Handler((&esigncheck.Handler{S3: s3, Bucket: "documents", DB: db, Taxpayers: "taxpayers", Nonces: "api_idempotency"}).Check),
		contract.FnUnblockCheck:    fn.Handler(unblock.Handler{DB: db, Taxpayers: "taxpayers"}.Check),
		contract.FnIdentityClear:   fn.Handler(identityclear.Handler{DB: db, Taxpayers: "taxpayers"}.Clear),
		contract.FnReminderSweep:   fn.Handler(reminders.Handler{DB: db, Obligations: "obligations", Taxpayers: "taxpayers", Outbox: "outbox"}.Sweep),
		contract.FnInactiveSweep:   fn.Handler(inactive.Handler{DB: db, Taxpayers: "taxpayers", Outbox: "outbox"}.Sweep),
		contract.FnRetentionSweep:  fn.Handler(retention.Handler{S3: s3, Bucket: "documents"}.Sweep),
	}
	handlers[contract.FnRecordTransition] = fn.Handler(transition.Handler{DB: db, Journal: "audit", Cases: "cases", Outbox: "outbox"}.Record)
	handlers[contract.FnOutboxDeliver] = fn.Handler(delivery.Handler{DB: db, Outbox: "outbox", Now: time.Now,
		Channel: delivery.Deliveries{DB: db, Table: "deliveries", Now: time.Now}}.Sweep)
	return handlers
}

func registerActivities(env *testsuite.TestWorkflowEnvironment, handlers map[string]any) {
	env.RegisterActivity(&activities.Activities{Invoker: invoker.NewInProcess(handlers)})
}

func newStores() (*storetest.DB, *storetest.S3) {
	return storetest.New(map[string]storetest.Key{
		"taxpayers": {PK: "inn"}, "ledger": {PK: "inn", SK: "entry_id"}, "treasury": {PK: "payout_key"}, "reservations": {PK: "key"},
		"outbox": {PK: "notification_id"}, "cases": {PK: "case_id"}, "audit": {PK: "case_id", SK: "entry_id"},
		"obligations": {PK: "obligation_id"}, "deliveries": {PK: "notification_id"}, "api_idempotency": {PK: "key"},
	}), storetest.NewS3()
}

func mustPut(t *testing.T, db *storetest.DB, table, key string, item any) {
	t.Helper()
	if _, err := store.PutNew(context.Background(), db, table, key, item); err != nil {
		t.Fatal(err)
	}
}

func eligible() contract.Taxpayer {
	return contract.Taxpayer{INN: testINN, AccountState: "active", Confirmed: true, INNLinked: true, Bank: testBank}
}

// ledger with an overpayment of ndfl (in kopecks) and an optional debt of property tax
func ledger(overpaid, debt int64) []contract.LedgerEntry {
	out := []contract.LedgerEntry{
		{INN: testINN, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 1_000_000},
		{INN: testINN, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 1_000_000 + overpaid},
	}
	if debt > 0 {
		out = append(out, contract.LedgerEntry{INN: testINN, EntryID: "2025#property#1", Kind: "charge", Tax: "property", Period: 2025, Amount: debt})
	}
	return out
}

func input(amount int64, docs ...string) RefundWorkflowInput {
	in := RefundWorkflowInput{CaseID: testCase, INN: testINN, Period: 2025, Amount: amount, Reason: "overpaid income tax",
		RequestID: "req-1", Policy: DefaultRefundPolicy()}
	for _, d := range docs {
		in.Documents = append(in.Documents, DocumentRef{DocID: d})
	}
	return in
}

func (h *harness) upload(doc string, b []byte) {
	h.s3.Put(document.IncomingKey(testCase, doc), b)
}

func (h *harness) run(in RefundWorkflowInput) RefundStatus {
	h.t.Helper()
	h.env.ExecuteWorkflow(Refund, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var st RefundStatus
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("workflow error: %v", err)
	}
	return st
}

func (h *harness) query() RefundStatus {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(RefundQueryStatus)
	if err != nil {
		h.t.Fatal(err)
	}
	var st RefundStatus
	if err := v.Get(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// decide sends the reviewer's decision through the update, at the given delay; wantErr
// says whether the validator must refuse it. An accepted decision must answer with the
// case as approved or rejected.
func (h *harness) decide(after time.Duration, d RefundDecision, wantErr bool) {
	h.update(after, RefundUpdateDecide, d, wantErr, func(st RefundStatus, err error) {
		if err != nil || (st.Status != RefundApproved && st.Status != RefundRejected) {
			h.t.Errorf("decision answered %s, %v; want approved or rejected", st.Status, err)
		}
	})
}

// transfers counts the money that left (not the cancelled keys).
func (h *harness) transfers() int {
	n := 0
	for _, it := range h.db.Items("treasury") {
		var r payout.Record
		if err := store.Unmarshal(it, &r); err != nil {
			h.t.Fatal(err)
		}
		if r.Transferred() {
			n++
		}
	}
	return n
}

// balance is the ledger's balance of the test taxpayer's 2025.
func (h *harness) balance() ledgerfn.Balance {
	h.t.Helper()
	var b ledgerfn.Balance
	if _, err := store.Get(context.Background(), h.db, "reservations", map[string]ddbtypes.AttributeValue{"key": store.S(ledgerfn.BalanceKey(testINN, 2025))}, &b); err != nil {
		h.t.Fatal(err)
	}
	return b
}

// reservation is the test case's reservation in the ledger.
func (h *harness) reservation() ledgerfn.Reservation {
	h.t.Helper()
	r, _, _, err := testLedger(h.db).Get(context.Background(), testCase)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// journal lists the test case's journal entries as "action:to".
func (h *harness) journal() []contract.AuditEntry {
	h.t.Helper()
	j, err := audit.Journal(context.Background(), h.db, "audit", testCase)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func hasAction(j []contract.AuditEntry, action string) bool {
	for _, e := range j {
		if e.Action == action {
			return true
		}
	}
	return false
}

// update sends an update at the given delay; wantErr says whether the validator must
// refuse it, and then the refusal must be a typed one: a late message (Conflict with the
// case's status) or invalid input. done checks an accepted update's result and error;
// without it the update must complete without error, with the case's status.
func (h *harness) update(after time.Duration, name string, arg any, wantErr bool, done func(RefundStatus, error)) {
	h.updates++
	id := fmt.Sprintf("%s-%d", name, h.updates)
	h.answered[id] = false
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {
				if wantErr {
					h.t.Errorf("%s accepted, want it refused", name)
				}
			},
			OnReject: func(err error) {
				h.answered[id] = true
				if !wantErr {
					h.t.Errorf("%s refused: %v", name, err)
					return
				}
				if _, late := AsLate(err); !late && errType(err) != fnerr.TypeInvalidInput {
					h.t.Errorf("%s refused with %v, want a late message or invalid input", name, err)
				}
			},
			OnComplete: func(v any, err error) {
				h.answered[id] = true
				st, _ := v.(RefundStatus)
				if done != nil {
					done(st, err)
				} else if err != nil || st.Status == "" {
					h.t.Errorf("%s answered %q, %v", name, st.Status, err)
				}
			},
		}, arg)
	}, after)
}

// errType is the type of an application error ("" for any other error).
func errType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}

// endsAt fails unless the case reached its last status d after start.
func endsAt(t *testing.T, st RefundStatus, start time.Time, d time.Duration) {
	t.Helper()
	if got := endedAt(st).Sub(start); got != d {
		t.Fatalf("%s %v after the start, want %v", st.Status, got, d)
	}
}

// endedAt is when the case reached its last status.
func endedAt(st RefundStatus) time.Time {
	if len(st.History) == 0 {
		return time.Time{}
	}
	return st.History[len(st.History)-1].At
}

func statuses(st RefundStatus) []string {
	var out []string
	for _, tr := range st.History {
		out = append(out, tr.To)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRefundHappyPathWithReviewer(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(2*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: "documents confirm the overpayment"}, false)
	st := h.run(input(3_000_000, "d1")) // over the automatic limit: a reviewer decides
	want := []string{RefundReceived, RefundInReview, RefundApproved, RefundPaid}
	if !equal(statuses(st), want) || st.Paid != 3_000_000 || st.Interest != 0 || st.DecidedBy != "inspector-7" {
		t.Fatalf("got %v paid %d interest %d by %s", statuses(st), st.Paid, st.Interest, st.DecidedBy)
	}
	if h.transfers() != 1 || st.TransferID == "" || st.Label != "Перечислено" {
		t.Fatalf("transfers %d, transfer %q, label %q", h.transfers(), st.TransferID, st.Label)
	}
	journal, _ := audit.Journal(context.Background(), h.db, "audit", testCase)
	var changes []string
	for _, e := range journal {
		if e.Action == "status_changed" {
			changes = append(changes, e.To)
		}
	}
	if !equal(changes, want) {
		t.Fatalf("audit journal %v, want %v", changes, want)
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", testCase)
	if rec.Status != RefundPaid || rec.Amounts["paid"] != 3_000_000 {
		t.Fatalf("projection %+v", rec)
	}
	if h.s3.SSE[document.StoredKey(testCase, "d1")] != "AES256" {
		t.Fatal("document not stored with encryption")
	}
}

func TestRefundAutomaticApproval(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || st.DecidedBy != "system" || st.Paid != 400_000 {
		t.Fatalf("got %+v", st)
	}
}

func TestRefundReviewerRejects(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(time.Hour, RefundDecision{Approve: false, Reviewer: "inspector-7"}, true) // no reason: refused by the validator
	h.decide(2*time.Hour, RefundDecision{Approve: false, Reviewer: "inspector-7", Reason: "the payslips do not match the ledger"}, false)
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundRejected || st.Reason != "the payslips do not match the ledger" || h.transfers() != 0 {
		t.Fatalf("got %+v", st)
	}
}

func TestRefundClaimCappedAtOverpayment(t *testing.T) {
	h := newHarness(t, eligible(), ledger(2_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(9_000_000, "d1"))
	if !st.Capped || st.Approved != 2_000_000 || st.Paid != 2_000_000 {
		t.Fatalf("got capped %v approved %d paid %d", st.Capped, st.Approved, st.Paid)
	}
}

func TestRefundDebtsOffsetFirst(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 200_000)...)
	h.upload("d1", pdfBytes)
	h.decide(time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false) // capped: a reviewer decides
	st := h.run(input(500_000, "d1"))
	if st.Debts != 200_000 || st.Refundable != 300_000 || st.Paid != 300_000 || !st.Capped {
		t.Fatalf("got %+v", st)
	}
}

func TestRefundRejectedWhenDebtsExceedOverpayment(t *testing.T) {
	h := newHarness(t, eligible(), ledger(100_000, 400_000)...)
	st := h.run(input(100_000))
	if st.Status != RefundRejected || st.Reason != "no overpayment to refund once debts are offset" {
		t.Fatalf("got %+v", st)
	}
}

func TestRefundPreconditions(t *testing.T) {
	blocked := eligible()
	blocked.AccountState = "blocked"
	unconfirmed := eligible()
	unconfirmed.Confirmed = false
	for name, c := range map[string]struct {
		tp     contract.Taxpayer
		reason string
	}{
		"blocked":     {blocked, "the account is not active (blocked or closed)"},
		"unconfirmed": {unconfirmed, "the profile is not confirmed: confirm the account first"},
		"unknown":     {contract.Taxpayer{}, "no taxpayer with this INN in the registry"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, c.tp, ledger(100_000, 0)...)
			st := h.run(input(100_000))
			if st.Status != RefundRejected || st.Reason != c.reason {
				t.Fatalf("got %s %q", st.Status, st.Reason)
			}
		})
	}
}

func TestRefundWaitsForDocumentsAndReportsRefusedOnes(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("bad", pdfBytes[:10]) // truncated
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); st.Status != RefundAwaitingInfo || len(st.Documents) != 1 || st.Documents[0].Accepted {
			t.Errorf("before the good upload: %+v", st)
		}
		h.upload("good", pdfBytes)
		h.env.SignalWorkflow(RefundSignalDocument, DocumentRef{DocID: "good"})
	}, 3*24*time.Hour)
	st := h.run(input(400_000, "bad"))
	if st.Status != RefundPaid || len(st.Documents) != 2 || !st.Documents[1].Accepted {
		t.Fatalf("got %+v", st)
	}
	// Approved automatically: straight from awaiting_info (auto-approval-skips-review).
	want := []string{RefundReceived, RefundAwaitingInfo, RefundApproved, RefundPaid}
	if !equal(statuses(st), want) {
		t.Fatalf("history %v", statuses(st))
	}
	if _, left := h.s3.Objects[document.IncomingKey(testCase, "bad")]; left {
		t.Fatal("the refused upload was left behind")
	}
}

func TestRefundRejectedWhenNoDocumentsInTime(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	start := h.env.Now()
	st := h.run(input(400_000))
	if st.Status != RefundRejected || st.Reason != "no supporting documents were received in time" {
		t.Fatalf("got %+v", st)
	}
	endsAt(t, st, start, DefaultRefundPolicy().DocumentWait) // rejected by the document wait's timer
}

func TestRefundRequisitesChangeHoldsThenReleasesPayout(t *testing.T) {
	tp := eligible()
	tp.PendingBank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	h := newHarness(t, tp, ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != RefundApproved || !st.BankHold || h.payouts != 0 {
			t.Errorf("while held: status %s hold %v payouts %d", st.Status, st.BankHold, h.payouts)
		}
		// the back office verifies the change: the registry now has it as verified
		verified := eligible()
		h.db.Replace("taxpayers", "inn", verified)
	}, 4*24*time.Hour)
	h.update(4*24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}, false, nil)
	start := h.env.Now()
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || st.BankHold || h.transfers() != 1 {
		t.Fatalf("got %+v", st)
	}
	// the hold ended because of the update, not its timer
	endsAt(t, st, start, 4*24*time.Hour+time.Minute)
}

func TestRefundDeadlinePassedEscalatesAndPaysInterest(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	// requested Monday 12 January 2026, 09:00 Moscow: due one month later, Thursday
	// 12 February (art. 78 p.6)
	h.env.SetStartTime(time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC))
	// the reviewer decides 40 days after the request (21 February): 9 days late
	h.decide(40*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(3_650_000, "d1"))
	// at the key rate of each day (art. 78 p.10): 13-15 February at 16 % (1 600 a day),
	// 16-21 February at 15.5 % (1 550 a day) = 4 800 + 9 300
	if st.DeadlineDay != "2026-02-12" || !st.Reminded || !st.DeadlineEscalated || !st.Escalated || st.RequisitesEscalated || st.DaysLate != 9 || st.Interest != 14_100 || st.Paid != 3_664_100 {
		t.Fatalf("reminded %v escalated %v/%v days %d interest %d paid %d", st.Reminded, st.DeadlineEscalated, st.RequisitesEscalated, st.DaysLate, st.Interest, st.Paid)
	}
	var toSupervisor, toReviewer int
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		switch n.Template {
		case "refund.deadline_passed":
			toSupervisor++
		case "refund.deadline_reminder":
			toReviewer++
		}
	}
	if toSupervisor != 1 || toReviewer != 1 {
		t.Fatalf("reminders %d, escalations %d", toReviewer, toSupervisor)
	}
}

func TestRefundWithdrawal(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	var answer RefundStatus
	h.update(24*time.Hour, RefundUpdateWithdraw, RefundWithdrawal{Reason: "paid by mistake, settled otherwise"}, false, func(st RefundStatus, err error) {
		if err != nil {
			t.Errorf("withdrawal: %v", err)
		}
		answer = st
	})
	// a decision after the withdrawal is refused: the case no longer awaits one
	h.decide(24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, true)
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundWithdrawn || answer.Status != RefundWithdrawn || h.payouts != 0 {
		t.Fatalf("got %s (the update answered %s), payouts %d", st.Status, answer.Status, h.payouts)
	}
}

func TestRefundPayoutTransientFailureThenPaidExactlyOnce(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutFail = 3
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || h.payouts != 4 || h.transfers() != 1 {
		t.Fatalf("status %s, payout calls %d, transfers %d", st.Status, h.payouts, h.transfers())
	}
}

func TestRefundPayoutRefusedWaitsForOperator(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutErr = fnerr.Rejected("treasury refused the transfer: account closed")
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != RefundPayoutFailed {
			t.Errorf("want payout_failed visible to operators, got %s", st.Status)
		}
		if h.payouts != 1 {
			t.Errorf("a business refusal was retried: %d calls", h.payouts)
		}
		h.payoutErr = nil
	}, 2*24*time.Hour)
	h.update(2*24*time.Hour+time.Minute, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3", Reason: "account reopened"}, false, nil)
	st := h.run(input(400_000, "d1"))
	want := []string{RefundReceived, RefundApproved, RefundPayoutFailed, RefundPaid}
	if !equal(statuses(st), want) || h.transfers() != 1 {
		t.Fatalf("history %v transfers %d", statuses(st), h.transfers())
	}
}

func TestRefundPayoutRetriesExhaustedThenOperatorNeverComes(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutFail = 1000
	start := h.env.Now()
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	err := h.env.GetWorkflowError()
	if errType(err) != "PayoutFailed" || h.payouts != int(activities.PayoutOptions.RetryPolicy.MaximumAttempts) || h.transfers() != 0 {
		t.Fatalf("err %v, payout calls %d, transfers %d", err, h.payouts, h.transfers())
	}
	// the operator's timer ended it: payout_failed, the reservation voided when it fired
	j := h.journal()
	if st, last := h.query(), j[len(j)-1]; st.Status != RefundPayoutFailed || st.Reservation != contract.ReservationVoided ||
		last.Action != "reservation_voided" || last.At.Sub(start) < DefaultRefundPolicy().OperatorTimeout {
		t.Fatalf("status %s, reservation %s, journal ends with %s %v after the start", st.Status, st.Reservation, last.Action, last.At.Sub(start))
	}
}

func TestRefundCancelledWorkflowStopsBeforePayout(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 24*time.Hour)
	start := h.env.Now()
	h.env.ExecuteWorkflow(Refund, input(3_000_000, "d1"))
	if err := h.env.GetWorkflowError(); !temporal.IsCanceledError(err) || h.payouts != 0 {
		t.Fatalf("err %v, payouts %d", err, h.payouts)
	}
	// the cleanup wrote cancelled when the cancellation came, not when a timer ended the case
	st := h.query()
	if st.Status != RefundCancelled || st.Reservation != "" || !endedAt(st).Equal(start.Add(24*time.Hour)) {
		t.Fatalf("status %s, reservation %q, ended %v after the start", st.Status, st.Reservation, endedAt(st).Sub(start))
	}
	j := h.journal()
	if last := j[len(j)-1]; last.Action != "status_changed" || last.To != RefundCancelled {
		t.Fatalf("journal ends with %+v", last)
	}
}

func TestRefundRequisitesChangeAfterCheckIsCaughtByPayout(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() {
		// a change of requisites begins after the preconditions were checked
		changing := eligible()
		changing.PendingBank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
		h.db.Replace("taxpayers", "inn", changing)
	}, 30*time.Minute)
	h.decide(time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); !st.BankHold || h.transfers() != 0 {
			t.Errorf("want the payout held, got hold %v transfers %d", st.BankHold, h.transfers())
		}
		h.db.Replace("taxpayers", "inn", eligible())
	}, 3*24*time.Hour)
	h.update(3*24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}, false, nil)
	start := h.env.Now()
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundPaid || h.transfers() != 1 || st.BankHold {
		t.Fatalf("got %+v, transfers %d", st, h.transfers())
	}
	// the hold ended because of the update, not its timer
	endsAt(t, st, start, 3*24*time.Hour+time.Minute)
}

func TestRefundRequisitesHoldPastFiveWorkingDaysEscalates(t *testing.T) {
	tp := eligible()
	tp.PendingBank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	h := newHarness(t, tp, ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if !st.BankHold || !st.RequisitesEscalated || !st.Escalated || st.DeadlineEscalated || st.RequisitesDue == nil {
			t.Errorf("after 12 days on hold: hold %v escalated %v/%v/%v due %v", st.BankHold, st.RequisitesEscalated, st.Escalated, st.DeadlineEscalated, st.RequisitesDue)
		}
		h.db.Replace("taxpayers", "inn", eligible())
	}, 12*24*time.Hour)
	h.update(12*24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}, false, nil)
	start := h.env.Now()
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || h.transfers() != 1 {
		t.Fatalf("got %+v", st)
	}
	var overdue int
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		if n.Template == "refund.requisites_overdue" {
			overdue++
		}
	}
	if overdue != 1 {
		t.Fatalf("%d escalations", overdue)
	}
	// the hold ended because of the update, not its timer
	endsAt(t, st, start, 12*24*time.Hour+time.Minute)
}

// fnHandler wraps a handler as the Lambda runtime would see it.
func fnHandler[In, Out any](h func(context.Context, In) (Out, error)) any { return fn.Handler(h) }

// Tax Code art. 78 p.10: a refund paid late bears interest for each day of delay at the
// Bank of Russia key rate in force on that day (not one fixed annual rate).
func TestRefundLateInterestAtKeyRateOfEachDayArt78p10(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	// requested Monday 10 November 2025, 09:00 Moscow: the term's last day is Wednesday
	// 10 December, so the first day of delay is 11 December
	h.env.SetStartTime(time.Date(2025, 11, 10, 6, 0, 0, 0, time.UTC))
	// approved and paid on 30 December 2025: 20 days late, across the rate change of
	// 22 December (16.5 % → 16 %)
	h.decide(50*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(3_650_000, "d1"))
	// 3 650 000 × 16.5 % / 365 = 1 650 a day for 11-21 December (11 days),
	// 3 650 000 × 16 % / 365 = 1 600 a day for 22-30 December (9 days)
	const want = 11*1_650 + 9*1_600
	if st.DeadlineDay != "2025-12-10" || st.DaysLate != 20 || st.Interest != want || st.Paid != 3_650_000+want || st.InterestUncheckedDays != 0 {
		t.Fatalf("deadline %s, %d days late, interest %d (unchecked days %d), paid %d; want 20 days, %d", st.DeadlineDay, st.DaysLate, st.Interest,
			st.InterestUncheckedDays, st.Paid, want)
	}
	if len(h.payIns) != 1 || h.payIns[0].Interest != want || h.payIns[0].Amount != 3_650_000+want {
		t.Fatalf("the payout key must carry the interest fixed when it was made: %+v", h.payIns)
	}
}

// Tax Code art. 78 p.6 with art. 6.1 p.2, 7, 8: the 30 days count from the day after the
// request; a last day that is not a working day moves to the next working day, and the
// refund is in time until 24:00 Moscow time of it. Requested 2 December 2026, the 30th
// day is 1 January 2027 (a holiday): the term ends on Monday 11 January 2027, the first
// working day (the holidays of 1-8 January, then a weekend), on a calendar year not yet
// decreed (provisional, noted in the status and the journal).
func TestRefundThirtyDayTermMovedOffHolidayArt78p6(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	requested := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC) // 10:00 Moscow
	h.env.SetStartTime(requested)
	// approved and paid on 11 January 2027 at 23:00 Moscow: the (moved) last day
	paidAt := time.Date(2027, 1, 11, 20, 0, 0, 0, time.UTC)
	h.decide(paidAt.Sub(requested), RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(3_650_000, "d1"))
	wantEnd := time.Date(2027, 1, 11, 21, 0, 0, 0, time.UTC) // 24:00 Moscow of 11 January
	if st.DeadlineDay != "2027-01-11" || !st.Deadline.Equal(wantEnd) {
		t.Fatalf("deadline %s (%v), want 2027-01-11 ending %v", st.DeadlineDay, st.Deadline, wantEnd)
	}
	if len(st.DeadlineProvisional) != 1 || st.DeadlineProvisional[0] != 2027 {
		t.Fatalf("provisional years %v, want [2027]", st.DeadlineProvisional)
	}
	if st.Status != RefundPaid || st.DaysLate != 0 || st.Interest != 0 || st.Paid != 3_650_000 || st.DeadlineEscalated {
		t.Fatalf("paid on the last day: status %s, %d days late, interest %d, paid %d, escalated %v", st.Status, st.DaysLate, st.Interest, st.Paid, st.DeadlineEscalated)
	}
	if !hasAction(h.journal(), "deadline_provisional") {
		t.Fatal("the journal does not note the provisional deadline")
	}
}

// Tax Code art. 78 p.7: a refund may be claimed within 3 years of the payment. The claim's
// time goes to the overpayment, so an overpayment made of older payments is refused, with
// the article in the reason, and a mixed one is capped at its recent part.
func TestRefundOverpaymentOlderThanThreeYearsRefusedArt78p7(t *testing.T) {
	paid := func(id string, amount int64, at time.Time) contract.LedgerEntry {
		return contract.LedgerEntry{INN: testINN, EntryID: id, Kind: "payment", Tax: "ndfl", Period: 2021, Amount: amount, Date: at}
	}
	charge := contract.LedgerEntry{INN: testINN, EntryID: "2021#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2021, Amount: 1_000_000}
	claimAt := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	in := input(3_000_000, "d1")
	in.Period = 2021

	// paid 15 July 2022: the 3 years ended with 15 July 2025
	h := newHarness(t, eligible(), charge, paid("2021#ndfl#2", 4_000_000, time.Date(2022, 7, 15, 9, 0, 0, 0, time.UTC)))
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(claimAt)
	st := h.run(in)
	if st.Status != RefundRejected || !strings.Contains(st.Reason, "art. 78 p.7") || st.Paid != 0 || h.payouts != 0 {
		t.Fatalf("status %s reason %q paid %d payout calls %d", st.Status, st.Reason, st.Paid, h.payouts)
	}

	// a later payment of 1 000 000 within the 3 years: only it may be refunded
	h = newHarness(t, eligible(), charge, paid("2021#ndfl#2", 3_000_000, time.Date(2022, 7, 15, 9, 0, 0, 0, time.UTC)),
		paid("2021#ndfl#3", 1_000_000, time.Date(2024, 4, 1, 9, 0, 0, 0, time.UTC)))
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(claimAt)
	h.decide(24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st = h.run(in)
	if st.Status != RefundPaid || st.Paid != 1_000_000 || !st.Capped || !strings.Contains(st.CapReason, "art. 78 p.7") {
		t.Fatalf("status %s paid %d capped %v %q", st.Status, st.Paid, st.Capped, st.CapReason)
	}
}

// A payout that can never succeed goes to an operator (payout_failed, with the reason)
// before any transfer: the verified account is not an individual's rouble account
// (domain.ValidatePayoutAccount; art. 78 p.6 pays to the taxpayer's account), or the
// amount is above the treasury's single-transfer limit. No operator comes: the case gives
// up and the reservation is voided, with no money sent.
func TestRefundPayoutThatCannotSucceedGoesToOperator(t *testing.T) {
	org := eligible()
	org.Bank = &contract.BankRequisites{BIK: "044525225", Account: "40702810438160925982"}
	for _, c := range []struct {
		name   string
		tp     contract.Taxpayer
		amount int64
		want   string
	}{
		{"organisation's account", org, 3_000_000, "cannot receive a refund: it is not an individual's"},
		{"above the treasury limit", eligible(), 150_000_000, "exceeds the treasury's single-transfer limit of 1000000.00 ₽"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.tp, ledger(c.amount, 0)...)
			h.upload("d1", pdfBytes)
			h.decide(24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
			h.env.RegisterDelayedCallback(func() {
				st := h.query()
				if st.Status != RefundPayoutFailed || !strings.Contains(st.PayoutError, c.want) || st.Reservation != contract.ReservationReserved {
					t.Errorf("want payout_failed for an operator saying %q, got %s %q (reservation %s)", c.want, st.Status, st.PayoutError, st.Reservation)
				}
			}, 2*24*time.Hour)
			h.env.ExecuteWorkflow(Refund, input(c.amount, "d1"))
			err := h.env.GetWorkflowError()
			if err == nil || h.payouts != 1 || h.transfers() != 0 {
				t.Fatalf("err %v, payout calls %d, transfers %d", err, h.payouts, h.transfers())
			}
			if !hasAction(h.journal(), "reservation_voided") {
				t.Fatal("the reservation of a case that gave up was not voided")
			}
		})
	}
}

// answer is what one update got back: refused by the validator, or completed.
type answer struct {
	called, accepted bool
	st               RefundStatus
	err              error
}

// send sends one update at the given delay and keeps its answer.
func (h *harness) send(after time.Duration, name string, arg any) *answer {
	a := &answer{}
	h.updates++
	id := fmt.Sprintf("%s-%d", name, h.updates)
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnAccept:   func() { a.accepted = true },
			OnReject:   func(err error) { a.called, a.err = true, err },
			OnComplete: func(v any, err error) { a.called, a.err = true, err; a.st, _ = v.(RefundStatus) },
		}, arg)
	}, after)
	return a
}

// refundMessages are every message a refund takes, right and wrong.
var refundMessages = []struct {
	name, update string
	arg          any
}{
	{"document", RefundUpdateDocument, DocumentRef{DocID: "d2"}},
	{"document with a bad id", RefundUpdateDocument, DocumentRef{DocID: "../d2"}},
	{"approve", RefundUpdateDecide, RefundDecision{Approve: true, Reviewer: "inspector-7"}},
	{"reject", RefundUpdateDecide, RefundDecision{Approve: false, Reviewer: "inspector-7", Reason: "the payslips do not match the ledger"}},
	{"reject without a reason", RefundUpdateDecide, RefundDecision{Approve: false, Reviewer: "inspector-7"}},
	{"withdraw", RefundUpdateWithdraw, RefundWithdrawal{Reason: "settled otherwise"}},
	{"requisites", RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}},
	{"retry", RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}},
	{"retry without an operator", RefundUpdateRetryPayout, RefundRetry{}},
}

// outcome is what a message must get in a state: refused as late (a Conflict naming the
// state), refused as invalid, or taken, with the status the update answers and the
// status the case ends in.
type outcome struct {
	late, invalid bool
	answer, end   string
}

var late = outcome{late: true}
var invalidMsg = outcome{invalid: true}

// Every message in every waiting state of a refund: each is taken (and its update
// answers with the case after it) or refused with a typed error; a late message names
// the status the case is in. Each pair runs on a fresh case.
func TestRefundMessagesInEveryWaitingState(t *testing.T) {
	const at = 24 * time.Hour // each state is reached well before this, and its timers well after
	states := []struct {
		name   string
		status string
		setup  func(h *harness) RefundWorkflowInput
		want   map[string]outcome
	}{
		{"awaiting_info", RefundAwaitingInfo, func(h *harness) RefundWorkflowInput {
			h.upload("d2", pdfBytes)
			return input(400_000) // no document yet
		}, map[string]outcome{
			"document": {answer: RefundAwaitingInfo, end: RefundPaid}, "document with a bad id": invalidMsg,
			"approve": late, "reject": late, "reject without a reason": late,
			"withdraw":   {answer: RefundWithdrawn, end: RefundWithdrawn},
			"requisites": late, "retry": late, "retry without an operator": late,
		}},
		{"in_review", RefundInReview, func(h *harness) RefundWorkflowInput {
			h.upload("d1", pdfBytes)
			h.upload("d2", pdfBytes)
			// Undecided, the case never ends by itself (Tax Code art. 78, 79): it is escalated
			// each review expiry and stays in review, due; the test cancels it then.
			h.env.RegisterDelayedCallback(func() {
				if st := h.query(); st.Status != RefundInReview || st.Overdue < 2 {
					t.Errorf("undecided: %s, %d escalations; want in review, escalated again", st.Status, st.Overdue)
				}
				h.env.CancelWorkflow()
			}, 45*24*time.Hour) // past the term (a month, moved off holidays at most to 11 January) and 2 expiries
			return input(3_000_000, "d1") // over the automatic limit: a reviewer decides
		}, map[string]outcome{
			"document": {answer: RefundInReview, end: RefundCancelled}, "document with a bad id": invalidMsg,
			"approve": {answer: RefundApproved, end: RefundPaid}, "reject": {answer: RefundRejected, end: RefundRejected},
			"reject without a reason": invalidMsg,
			"withdraw":                {answer: RefundWithdrawn, end: RefundWithdrawn},
			"requisites":              late, "retry": late, "retry without an operator": late,
		}},
		{"approved, held for requisites", RefundApproved, func(h *harness) RefundWorkflowInput {
			h.db.Replace("taxpayers", "inn", pending())
			h.upload("d1", pdfBytes)
			h.env.RegisterDelayedCallback(func() { h.db.Replace("taxpayers", "inn", eligible()) }, at-time.Minute) // verified
			return input(400_000, "d1")
		}, map[string]outcome{
			"document": late, "document with a bad id": invalidMsg, "approve": late, "reject": late, "reject without a reason": late,
			"withdraw":   {answer: RefundWithdrawn, end: RefundWithdrawn},
			"requisites": {answer: RefundApproved, end: RefundPaid},
			"retry":      late, "retry without an operator": late,
		}},
		{"payout failed", RefundPayoutFailed, func(h *harness) RefundWorkflowInput {
			h.upload("d1", pdfBytes)
			h.payoutErr = fnerr.Rejected("treasury refused the transfer: account closed")
			h.env.RegisterDelayedCallback(func() { h.payoutErr = nil }, at-time.Minute)
			return input(400_000, "d1")
		}, map[string]outcome{
			"document": late, "document with a bad id": invalidMsg, "approve": late, "reject": late, "reject without a reason": late,
			"withdraw": late, "requisites": late,
			"retry":                     {answer: RefundPayoutFailed, end: RefundPaid},
			"retry without an operator": invalidMsg,
		}},
	}
	for _, s := range states {
		for _, m := range refundMessages {
			t.Run(s.name+"/"+m.name, func(t *testing.T) {
				want, ok := s.want[m.name]
				if !ok {
					t.Fatalf("no outcome for %s", m.name)
				}
				h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
				in := s.setup(h)
				in.Policy.ReviewExpiry = 24 * time.Hour // an in-review case with no decision ends soon
				h.env.RegisterDelayedCallback(func() {
					if st := h.query(); st.Status != s.status {
						t.Errorf("before the message: %s, want %s", st.Status, s.status)
					}
				}, at-time.Second)
				a := h.send(at, m.update, m.arg)
				h.env.ExecuteWorkflow(Refund, in)
				if !a.called {
					t.Fatal("the update got no answer")
				}
				switch {
				case want.late:
					lm, isLate := AsLate(a.err)
					if a.accepted || !isLate || errType(a.err) != fnerr.TypeConflict || lm.Status != s.status || lm.Label != RefundLabels[s.status] {
						t.Fatalf("accepted %v, error %v (late %+v); want a late message naming %s", a.accepted, a.err, lm, s.status)
					}
				case want.invalid:
					if a.accepted || errType(a.err) != fnerr.TypeInvalidInput {
						t.Fatalf("accepted %v, error %v; want invalid input", a.accepted, a.err)
					}
				default:
					if !a.accepted || a.err != nil || a.st.Status != want.answer {
						t.Fatalf("accepted %v, answered %s, %v; want %s", a.accepted, a.st.Status, a.err, want.answer)
					}
				}
				st := h.query()
				end := want.end
				if end == "" { // a refused message changes nothing: the case goes on as it would
					end = map[string]string{RefundAwaitingInfo: RefundRejected, RefundInReview: RefundCancelled, RefundApproved: RefundPaid,
						RefundPayoutFailed: RefundPayoutFailed}[s.status]
				}
				if st.Status != end {
					t.Fatalf("the case ended %s, want %s", st.Status, end)
				}
			})
		}
	}
}

// Every message to a case that has ended (or is on its way to a final status) is refused
// as late, naming the status. Temporal refuses updates to a completed workflow itself
// (the API answers those with the closed case's status, see internal/e2e); this covers a
// case that is final but still running (answering its last handlers, writing its last
// journal step).
func TestRefundMessagesAfterTheCaseEnded(t *testing.T) {
	for _, status := range []string{RefundPaid, RefundRejected, RefundWithdrawn, RefundCancelled, RefundExpired, RefundPayoutFailed} {
		for _, ending := range []bool{false, true} {
			r := &refund{st: RefundStatus{Status: status, BankHold: true}, final: !ending, ending: ending}
			for _, m := range refundMessages {
				var err error
				switch arg := m.arg.(type) {
				case DocumentRef:
					err = r.validateDocument(arg)
				case RefundDecision:
					err = r.validateDecision(arg)
				case RefundWithdrawal:
					err = r.validateWithdrawal(arg)
				case RefundRequisites:
					err = r.validateRequisites(arg)
				case RefundRetry:
					err = r.validateRetry(arg)
				}
				if m.name == "document with a bad id" {
					if errType(err) != fnerr.TypeInvalidInput {
						t.Errorf("%s, %s: %v, want invalid input", status, m.name, err)
					}
					continue
				}
				if lm, ok := AsLate(err); !ok || lm.Status != status {
					t.Errorf("%s (ending %v), %s: %v, want a late message naming %s", status, ending, m.name, err, status)
				}
			}
		}
	}
}

// A withdrawal that comes while a rejection is being acted on cannot withdraw the case:
// its update is refused as late (by the validator, the case being on its way to
// rejected; or by the handler, naming rejected), never a silent success.
func TestRefundWithdrawalRacingARejectionIsAnsweredLate(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	d := h.send(24*time.Hour, RefundUpdateDecide, RefundDecision{Approve: false, Reviewer: "inspector-7", Reason: "not confirmed"})
	w := h.send(24*time.Hour, RefundUpdateWithdraw, RefundWithdrawal{Reason: "settled otherwise"})
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundRejected || d.err != nil || d.st.Status != RefundRejected {
		t.Fatalf("case %s; the decision answered %s, %v", st.Status, d.st.Status, d.err)
	}
	lm, ok := AsLate(w.err)
	if !w.called || !ok || (lm.Status != RefundInReview && lm.Status != RefundRejected) || (w.accepted && lm.Status != RefundRejected) {
		t.Fatalf("withdrawal accepted %v, answered %s, %v; want a late message", w.accepted, w.st.Status, w.err)
	}
}

// No reviewer decides: reminded before the deadline, escalated at it, and the case
// expires when the review expiry past the deadline ends (the timer's status).
func TestRefundReviewExpiresWithoutADecision(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	// a run that began before change refund-inaction-escalates (new runs never expire:
	// TestRefundInactionNeverEndsTheClaimArt78)
	h.env.OnGetVersion(changeRefundInactionEscalates, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC)) // the term ends with 11 February
	st := h.run(input(3_000_000, "d1"))
	want := st.Deadline.Add(DefaultRefundPolicy().ReviewExpiry)
	if st.Status != RefundExpired || st.Label != RefundLabels[RefundExpired] || !st.Reminded || !st.DeadlineEscalated || !endedAt(st).Equal(want) {
		t.Fatalf("status %s reminded %v escalated %v, ended %v, want expired at %v", st.Status, st.Reminded, st.DeadlineEscalated, endedAt(st), want)
	}
	if !hasAction(h.journal(), "review_expired") || st.Reservation != "" || h.payouts != 0 {
		t.Fatalf("journal %v, reservation %q, payouts %d", h.journal(), st.Reservation, h.payouts)
	}
	var expired int
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		if n.Template == "refund.review_expired" || n.Template == "refund."+RefundExpired {
			expired++
		}
	}
	if expired != 2 { // the supervisor's and the taxpayer's
		t.Fatalf("%d expiry notifications", expired)
	}
}

// The old document signal (cases started before the document update) is still read, by
// the main coroutine: one that comes in time counts; one that comes after the decision
// is not used, and the journal says so.
func TestRefundOldDocumentSignal(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.upload("d2", pdfBytes)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(RefundSignalDocument, DocumentRef{DocID: "d1"}) }, time.Hour)
	h.decide(2*time.Hour, RefundDecision{Approve: false, Reviewer: "inspector-7", Reason: "not confirmed"}, false)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(RefundSignalDocument, DocumentRef{DocID: "d2"}) }, 2*time.Hour)
	in := input(3_000_000)
	in.Policy.ReviewExpiry = time.Hour
	st := h.run(in)
	if st.Status != RefundRejected || len(st.Documents) != 1 || st.Documents[0].DocID != "d1" || !st.Documents[0].Accepted {
		t.Fatalf("status %s, documents %+v", st.Status, st.Documents)
	}
	j := h.journal()
	if last := j[len(j)-1]; last.Action != "document_ignored" || !strings.Contains(last.Reason, "d2") {
		t.Fatalf("journal ends with %+v", last)
	}
}

// A new run that the rules approve automatically takes the path of the change
// auto-approval-skips-review (the recorded histories before and after it are checked by
// TestAutoApprovalSkipsReviewIsVersioned): no in_review transition.
func TestNewAutoApprovalSkipsReview(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	st := h.run(input(400_000, "d1"))
	if got := statuses(st); !equal(got, []string{RefundReceived, RefundApproved, RefundPaid}) || st.DecidedBy != "system" {
		t.Fatalf("a new automatic approval went %v (decided by %q)", got, st.DecidedBy)
	}
}

// A reviewer's approval that the case could not carry out (the case was cancelled, or
// failed, while the approval was being acted on, before it was approved) is answered as
// late with the status the case is in, never as a success: the approval had no effect.
func TestRefundApprovalNotCarriedOutIsAnsweredLate(t *testing.T) {
	for _, c := range []struct {
		name   string
		setup  func(h *harness)
		status string
	}{
		{"cancelled", func(h *harness) {
			h.env.OnActivity("Reserve", mock.Anything, mock.Anything).After(time.Hour).Return(contract.LedgerResult{}, nil)
			h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 24*time.Hour+30*time.Minute)
		}, RefundCancelled},
		{"failed", func(h *harness) {
			h.env.OnActivity("Reserve", mock.Anything, mock.Anything).
				Return(contract.LedgerResult{}, temporal.NewNonRetryableApplicationError("ledger unavailable", "InternalError", nil))
		}, RefundInReview},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
			oldRefundPath(h) // a reservation cancelled in flight: since refund-folded-steps it is waited for
			h.upload("d1", pdfBytes)
			c.setup(h)
			d := h.send(24*time.Hour, RefundUpdateDecide, RefundDecision{Approve: true, Reviewer: "inspector-7"})
			h.env.ExecuteWorkflow(Refund, input(3_000_000, "d1"))
			if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() == nil {
				t.Fatalf("want the case ended with an error, got %v", h.env.GetWorkflowError())
			}
			if st := h.query(); st.Status != c.status || h.payouts != 0 {
				t.Fatalf("the case is %s after %d payouts, want %s", st.Status, h.payouts, c.status)
			}
			lm, isLate := AsLate(d.err)
			if !d.called || !d.accepted || !isLate || lm.Status != c.status {
				t.Fatalf("approval accepted %v, answered %s, %v; want a late answer naming %s", d.accepted, d.st.Status, d.err, c.status)
			}
		})
	}
}

// Since change refund-folded-steps the reservation carries the `approved` step, and a
// cancellation of the case while it runs waits for its answer (on a disconnected context,
// as every step): the approval is carried out and answered so, then the case is cancelled
// and the reservation released — never a step or a reservation whose outcome nobody knows.
func TestRefundCancelledDuringTheReservationReleasesIt(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.env.SetStartTime(decreedYearDay)
	h.upload("d1", pdfBytes)
	reserve := ledgerfn.Handler{Ledger: testLedger(h.db)}
	h.env.OnActivity("Reserve", mock.Anything, mock.Anything).After(time.Hour).Return(
		func(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
			in.Op = contract.LedgerReserve
			return reserve.Handle(ctx, in)
		})
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 24*time.Hour+30*time.Minute)
	d := h.send(24*time.Hour, RefundUpdateDecide, RefundDecision{Approve: true, Reviewer: "inspector-7"})
	h.env.ExecuteWorkflow(Refund, input(3_000_000, "d1"))
	if err := h.env.GetWorkflowError(); err == nil || !temporal.IsCanceledError(errors.Unwrap(err)) && !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("want the case cancelled, got %v", err)
	}
	if st := h.query(); st.Status != RefundCancelled || h.payouts != 0 || st.Reservation != contract.ReservationVoided {
		t.Fatalf("the case is %s (reservation %s) after %d payouts, want cancelled and voided", st.Status, st.Reservation, h.payouts)
	}
	if !d.called || !d.accepted || d.err != nil || d.st.Status != RefundApproved {
		t.Fatalf("approval answered %s, %v; want approved (it was carried out before the cancellation)", d.st.Status, d.err)
	}
	res, _, found, err := testLedger(h.db).Get(context.Background(), testCase)
	if err != nil || !found || res.State != contract.ReservationVoided {
		t.Fatalf("reservation %+v (found %v, %v), want voided", res, found, err)
	}
	want := []string{"status_changed approved", "reservation_voided approved", "status_changed cancelled"}
	var got []string
	for _, e := range h.journal() {
		if e.Action != "status_changed" || e.To != RefundReceived && e.To != RefundInReview {
			if e.Action != "document_accepted" {
				got = append(got, e.Action+" "+e.To)
			}
		}
	}
	if !equal(got, want) {
		t.Fatalf("journal %v, want %v", got, want)
	}
}

// A document the case took but never stored (it ended first: rejected by its preconditions,
// or withdrawn) is answered late, naming the status it ended in, not with a success for a
// document nobody stored or read; one the case stores answers once it is stored.
func TestRefundDocumentTheCaseNeverStoredIsAnsweredLate(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(h *harness) RefundWorkflowInput
		at    time.Duration
		end   string
		docs  int // stored before the one sent
	}{
		{"rejected by the preconditions", func(h *harness) RefundWorkflowInput {
			h.env.OnActivity("ComputeOverpayment", mock.Anything, mock.Anything).After(time.Hour).Return(contract.OverpaymentResult{}, nil)
			return input(400_000)
		}, 30 * time.Minute, RefundRejected, 0},
		{"cancelled while it was stored", func(h *harness) RefundWorkflowInput {
			h.env.OnActivity("StoreDocument", mock.Anything, mock.Anything).After(time.Hour).Return(contract.DocumentResult{Accepted: true}, nil)
			h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 24*time.Hour+30*time.Minute)
			return input(400_000) // no document: awaiting_info
		}, 24 * time.Hour, RefundCancelled, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
			h.upload("d2", pdfBytes)
			in := c.setup(h)
			d := h.send(c.at, RefundUpdateDocument, DocumentRef{DocID: "d2"})
			h.env.ExecuteWorkflow(Refund, in)
			st := h.query()
			if !h.env.IsWorkflowCompleted() || st.Status != c.end || len(st.Documents) != c.docs {
				t.Fatalf("the case is %s with documents %+v, want %s with %d", st.Status, st.Documents, c.end, c.docs)
			}
			lm, isLate := AsLate(d.err)
			if !d.called || !d.accepted || !isLate || lm.Status != c.end {
				t.Fatalf("document accepted %v, answered %s, %v; want a late answer naming %s", d.accepted, d.st.Status, d.err, c.end)
			}
		})
	}
}

// The wait for supporting documents is one term from the request for them: a refused
// upload does not start it again, or a taxpayer sending one every few days would keep the
// case waiting for ever. Rejected by the timer at DocumentWait, whatever came meanwhile.
func TestRefundRefusedDocumentsDoNotRestartTheDocumentWait(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("bad1", pdfBytes[:10]) // truncated: refused
	h.upload("bad2", pdfBytes[:10])
	first := h.send(10*24*time.Hour, RefundUpdateDocument, DocumentRef{DocID: "bad1"})
	second := h.send(13*24*time.Hour, RefundUpdateDocument, DocumentRef{DocID: "bad2"})
	start := h.env.Now()
	st := h.run(input(400_000))
	if st.Status != RefundRejected || st.Reason != "no supporting documents were received in time" || len(st.Documents) != 2 {
		t.Fatalf("got %s (%s), documents %+v", st.Status, st.Reason, st.Documents)
	}
	if first.err != nil || second.err != nil || first.st.Status != RefundAwaitingInfo || second.st.Status != RefundAwaitingInfo {
		t.Fatalf("the uploads answered %s %v, %s %v", first.st.Status, first.err, second.st.Status, second.err)
	}
	endsAt(t, st, start, DefaultRefundPolicy().DocumentWait) // the first term's timer, not one restarted by an upload
}
