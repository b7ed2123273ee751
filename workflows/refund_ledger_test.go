package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// holdOther reserves amount for another case of the same taxpayer and period, as a
// concurrent claim would.
func (h *harness) holdOther(key string, amount int64) {
	h.t.Helper()
	res, err := testLedger(h.db).Reserve(context.Background(), contract.LedgerInput{Key: key, INN: testINN, Period: 2025, Amount: amount})
	if err != nil || res.State != contract.ReservationReserved {
		h.t.Fatalf("reserve for %s: %+v %v", key, res, err)
	}
}

func pending() contract.Taxpayer {
	tp := eligible()
	tp.PendingBank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	return tp
}

func TestRefundReservesOnApprovalAndPostsOnPayout(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || st.Reservation != contract.ReservationPosted || st.PayoutKey != testCase+"/payout/1" {
		t.Fatalf("got %+v", st)
	}
	if r, b := h.reservation(), h.balance(); r.State != contract.ReservationPosted || r.PayoutKey != testCase+"/payout/1" ||
		b.Paid != 400_000 || b.Reserved != 0 || b.Refundable != 500_000 {
		t.Fatalf("ledger %+v %+v", r, b)
	}
}

func TestRefundRefusedWhenOtherClaimsHoldTheWholeOverpayment(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.holdOther("refund-other", 500_000)
	h.upload("d1", pdfBytes)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundRejected || st.Reservation != contract.ReservationRefused || st.Approved != 0 ||
		!strings.Contains(st.Reason, "nothing left to refund for 2025") || h.payouts != 0 {
		t.Fatalf("got %+v, payouts %d", st, h.payouts)
	}
	if b := h.balance(); b.Reserved != 500_000 || b.Paid != 0 {
		t.Fatalf("balance %+v", b)
	}
	if h.reservation().Key != "" {
		t.Fatal("a refused claim holds a reservation")
	}
}

func TestRefundCappedToWhatOtherClaimsLeave(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.holdOther("refund-other", 200_000)
	h.upload("d1", pdfBytes)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || !st.Capped || st.Approved != 300_000 || st.Paid != 300_000 || !strings.Contains(st.CapReason, "capped to 3000.00 ₽") {
		t.Fatalf("got %+v", st)
	}
	var approved string
	for _, e := range h.journal() {
		if e.To == RefundApproved && e.Action == "status_changed" {
			approved = e.Reason
		}
	}
	if !strings.Contains(approved, "capped to 3000.00 ₽") {
		t.Fatalf("the journal does not say why: %q", approved)
	}
	if b := h.balance(); b.Reserved+b.Paid != 500_000 || b.Paid != 300_000 {
		t.Fatalf("balance %+v", b)
	}
}

func TestRefundReviewerRejectionReservesNothing(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(time.Hour, RefundDecision{Approve: false, Reviewer: "inspector-7", Reason: "not confirmed"}, false)
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundRejected || st.Reservation != "" || h.balance().Reserved != 0 {
		t.Fatalf("got %+v, balance %+v", st, h.balance())
	}
}

// A withdrawal during the requisites hold (after approval) voids the reservation.
func TestRefundWithdrawalDuringHoldVoidsTheReservation(t *testing.T) {
	h := newHarness(t, pending(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); st.Status != RefundApproved || !st.BankHold || st.Reservation != contract.ReservationReserved || h.balance().Reserved != 400_000 {
			t.Errorf("before the withdrawal: %+v balance %+v", st, h.balance())
		}
	}, 24*time.Hour)
	h.update(25*time.Hour, RefundUpdateWithdraw, RefundWithdrawal{Reason: "settled otherwise"}, false, nil)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundWithdrawn || st.Reservation != contract.ReservationVoided || h.payouts != 0 {
		t.Fatalf("got %+v", st)
	}
	if r, b := h.reservation(), h.balance(); r.State != contract.ReservationVoided || b.Reserved != 0 || b.Paid != 0 {
		t.Fatalf("ledger %+v %+v", r, b)
	}
	if !hasAction(h.journal(), "reservation_voided") {
		t.Fatal("the journal does not show the void")
	}
}

// Cancelling a case that holds a reservation releases it on a disconnected context and
// leaves the journal and the projection in a final status.
func TestRefundCancelledDuringHoldVoidsAndRecordsCancelled(t *testing.T) {
	h := newHarness(t, pending(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 2*24*time.Hour)
	start := h.env.Now()
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	if err := h.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("want cancelled, got %v", err)
	}
	if r, b := h.reservation(), h.balance(); r.State != contract.ReservationVoided || b.Reserved != 0 || h.payouts != 0 {
		t.Fatalf("ledger %+v %+v payouts %d", r, b, h.payouts)
	}
	j := h.journal()
	// written when the cancellation came (day 2), before the hold's 5 working days ran out
	if last := j[len(j)-1]; !hasAction(j, "reservation_voided") || last.Action != "status_changed" || last.To != RefundCancelled ||
		last.At.Sub(start) != 2*24*time.Hour {
		t.Fatalf("journal ends with %+v (%v after the start)", last, last.At.Sub(start))
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", testCase)
	if rec.Status != RefundCancelled {
		t.Fatalf("projection %+v", rec)
	}
}

// A case cancelled before approval holds nothing, and still ends in a final status.
func TestRefundCancelledBeforeApprovalRecordsCancelled(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, 24*time.Hour)
	start := h.env.Now()
	h.env.ExecuteWorkflow(Refund, input(3_000_000, "d1"))
	if err := h.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("want cancelled, got %v", err)
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", testCase)
	if rec.Status != RefundCancelled || hasAction(h.journal(), "reservation_voided") {
		t.Fatalf("projection %+v", rec)
	}
	if st := h.query(); st.Status != RefundCancelled || st.Reservation != "" || endedAt(st).Sub(start) != 24*time.Hour {
		t.Fatalf("status %s, reservation %q, cancelled %v after the start", st.Status, st.Reservation, endedAt(st).Sub(start))
	}
}

// A payout that fails for good (no operator within the timeout) voids the reservation.
func TestRefundFinalPayoutFailureVoidsTheReservation(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutErr = fnerr.Rejected("treasury refused the transfer: account closed")
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	var appErr *temporal.ApplicationError
	if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != "PayoutFailed" {
		t.Fatalf("want PayoutFailed, got %v", err)
	}
	if h.payouts != 1 || h.transfers() != 0 {
		t.Fatalf("payout calls %d, transfers %d", h.payouts, h.transfers())
	}
	if r, b := h.reservation(), h.balance(); r.State != contract.ReservationVoided || r.PayoutKey != "" || b.Reserved != 0 {
		t.Fatalf("ledger %+v %+v", r, b)
	}
	// the key is fenced: nothing can be paid under it any more
	if _, err := payoutHandler(h.db).Treasury.Transfer(context.Background(), payout.Transfer{PayoutKey: testCase + "/payout/1", CaseID: testCase, Amount: 1}); err == nil {
		t.Fatal("a transfer under the abandoned key went through")
	}
}

// "Same key, different content" goes to an operator, never into a loop of new keys.
func TestRefundKeyReusedGoesToAnOperator(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	// an older transfer already holds the case's first key, with other content
	if _, err := payoutHandler(h.db).Treasury.Transfer(context.Background(), payout.Transfer{PayoutKey: testCase + "/payout/1",
		CaseID: testCase, Amount: 123, Principal: 123, PayeeRef: "old"}); err != nil {
		t.Fatal(err)
	}
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != RefundPayoutFailed || !strings.Contains(st.PayoutError, "already names a different transfer") || h.payouts != 1 {
			t.Errorf("after 3 days: %s %q, %d payout calls", st.Status, st.PayoutError, h.payouts)
		}
	}, 3*24*time.Hour)
	// the operator looks, and retries: the old key is cancelled, which finds the transfer
	// that left under it, and the case counts as paid by it: never a second transfer
	h.update(3*24*time.Hour+time.Minute, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, false, nil)
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || h.transfers() != 1 || h.payouts != 1 || h.cancels != 1 {
		t.Fatalf("got %s, transfers %d, payout calls %d, cancels %d", st.Status, h.transfers(), h.payouts, h.cancels)
	}
}

// The amount, interest and payee of a payout key never change on a retry, even when
// the retries run into later days — on the path before refund-folded-steps, which kept a
// failed key for the operator's retry.
func TestRefundPayoutContentFixedAcrossRetries(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	// a run from before refund-interest-per-attempt (and its 30-day term): it resends the
	// first key; later runs make a new key with the interest to the retry's day
	// (TestRefundInterestToTheDayOfEachPayoutAttemptArt78p10)
	oldRefundPath(h)
	h.env.OnGetVersion(changeRefundTermArt78, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.env.OnGetVersion(changeRefundInterestPerAttempt, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC))                         // the term ends with 11 February
	h.decide(40*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false) // 10 days late
	h.payoutErr = fnerr.Rejected("treasury is closed for the holidays")
	h.env.RegisterDelayedCallback(func() { h.payoutErr = nil }, 45*24*time.Hour)
	h.update(45*24*time.Hour+time.Minute, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, false, nil)
	st := h.run(input(3_650_000, "d1"))
	if st.Status != RefundPaid || len(h.payIns) != 2 || h.payIns[0] != h.payIns[1] {
		t.Fatalf("status %s, payout inputs %+v", st.Status, h.payIns)
	}
	if in := h.payIns[0]; in.Interest != 15_700 || in.Principal != 3_650_000 || in.Amount != 3_665_700 || in.PayoutKey != testCase+"/payout/1" || in.Payee == "" {
		t.Fatalf("payout input %+v", in)
	}
}

// The back office's requisites update ends the hold at once: paid the next day, not
// after the 5 working days; the update answers with the released case.
func TestRefundRequisitesUpdateEndsTheHoldEarly(t *testing.T) {
	h := newHarness(t, pending(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	// a message before the hold or a wrong one is refused by the validator
	h.update(0, RefundUpdateRequisites, RefundRequisites{Verified: true}, true, nil)
	h.update(20*time.Hour, RefundUpdateRequisites, RefundRequisites{Verified: false}, true, nil) // a rejection needs a reason
	h.env.RegisterDelayedCallback(func() { h.db.Replace("taxpayers", "inn", eligible()) }, 24*time.Hour)
	var answer RefundStatus
	h.update(24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office", Reason: "statement checked"}, false,
		func(st RefundStatus, err error) {
			if err != nil {
				t.Errorf("update: %v", err)
			}
			answer = st
		})
	start := h.env.Now()
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || answer.BankHold || answer.Status == "" {
		t.Fatalf("got %s; the update answered %+v", st.Status, answer)
	}
	paidAt := st.History[len(st.History)-1].At
	if d := paidAt.Sub(start); d > 25*time.Hour {
		t.Fatalf("paid %v after the request: the hold waited for its timer", d)
	}
	if !hasAction(h.journal(), "requisites_verified") || st.RequisitesEscalated {
		t.Fatal("the journal does not show who verified the requisites")
	}
	// a message after the payout is refused too (tested through the query: the case is closed)
}

// A rejected change of requisites: the payout goes to the account verified before.
func TestRefundRequisitesRejectedPaysTheVerifiedAccount(t *testing.T) {
	h := newHarness(t, pending(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() { h.db.Replace("taxpayers", "inn", eligible()) }, 2*24*time.Hour) // the API dropped the change
	h.update(2*24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: false, By: "back-office", Reason: "the statement is not the taxpayer's"}, false, nil)
	start := h.env.Now()
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || h.transfers() != 1 || !hasAction(h.journal(), "requisites_rejected") {
		t.Fatalf("got %+v", st)
	}
	// the hold ended because of the update, not its timer
	endsAt(t, st, start, 2*24*time.Hour+time.Minute)
}

// A payout that meets a change of requisites: the key is cancelled, the hold waits for
// the back office, and a new key pays, once.
func TestRefundRequisitesChangeDuringPayoutUsesANewKey(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.onPay = func(n int) error {
		if n == 1 { // the change began after the check: the registry shows it too
			h.db.Replace("taxpayers", "inn", pending())
		}
		return nil
	}
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); !st.BankHold {
			t.Errorf("not held: %+v", st)
		}
		h.db.Replace("taxpayers", "inn", eligible())
	}, 2*24*time.Hour)
	h.update(2*24*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}, false, nil)
	start := h.env.Now()
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || st.PayoutKey != testCase+"/payout/2" || h.transfers() != 1 || h.cancels != 1 {
		t.Fatalf("got %s key %s, transfers %d, cancels %d", st.Status, st.PayoutKey, h.transfers(), h.cancels)
	}
	// the hold ended because of the update, not its timer
	endsAt(t, st, start, 2*24*time.Hour+time.Minute)
}

// Free text never fails a case: a 500-character Cyrillic reason is 1000 bytes, twice
// what the journal holds; it is clipped there, and the case goes on.
func TestRefundLongReasonsAreClippedNotFatal(t *testing.T) {
	long := strings.Repeat("я", MaxReasonChars)
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: long + "!"}, true) // 501 characters: refused
	h.decide(2*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: long}, false)
	in := input(3_000_000, "d1")
	in.Reason = long
	st := h.run(in)
	if st.Status != RefundPaid {
		t.Fatalf("got %+v", st)
	}
	for _, e := range h.journal() {
		if len(e.Reason) > 512 {
			t.Fatalf("journal entry %s holds %d bytes", e.Action, len(e.Reason))
		}
	}
}

// The operator's retry is an update: refused unless the payout has failed, and never lost.
func TestRefundRetryPayoutOnlyWhenFailed(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutErr = fnerr.Rejected("treasury refused the transfer: account closed")
	h.update(time.Hour, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, true, nil) // in review: nothing failed
	h.decide(2*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	h.env.RegisterDelayedCallback(func() { h.payoutErr = nil }, 24*time.Hour)
	h.update(24*time.Hour+time.Minute, RefundUpdateRetryPayout, RefundRetry{}, true, nil) // no operator named
	h.update(24*time.Hour+2*time.Minute, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, false, nil)
	st := h.run(input(3_000_000, "d1"))
	if st.Status != RefundPaid || h.payouts != 2 || !hasAction(h.journal(), "payout_retry") {
		t.Fatalf("got %s after %d payout calls", st.Status, h.payouts)
	}
}

// A payout retried by Temporal past its attempts goes to an operator; the bound on
// attempts is the activity's, and the loop's own bound ends the case.
func TestRefundPayoutLoopIsBounded(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.payoutErr = fnerr.Rejected("treasury refused the transfer")
	// every retry but the last round's is taken; the last round gives up at once (no task
	// is opened for a retry that could not be made)
	for i := range maxPayoutRounds - 1 {
		h.update(time.Duration(i+1)*24*time.Hour, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, false, func(st RefundStatus, err error) {
			if err != nil || st.Status != RefundPayoutFailed {
				t.Errorf("retry %d answered %s, %v", i+1, st.Status, err)
			}
		})
	}
	start := h.env.Now()
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	var appErr *temporal.ApplicationError
	if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != "PayoutFailed" {
		t.Fatalf("want PayoutFailed, got %v", err)
	}
	if h.payouts != maxPayoutRounds || h.reservation().State != contract.ReservationVoided {
		t.Fatalf("%d payout calls, reservation %s", h.payouts, h.reservation().State)
	}
	// ended by the bound on the day of the last retry, not by the operator timeout
	j := h.journal()
	if st, last := h.query(), j[len(j)-1]; st.Status != RefundPayoutFailed || last.Action != "reservation_voided" ||
		!last.At.Equal(start.Add(time.Duration(maxPayoutRounds-1)*24*time.Hour)) {
		t.Fatalf("status %s, journal ends with %s %v after the start", st.Status, last.Action, last.At.Sub(start))
	}
	_ = activities.PayoutOptions
}

// The reservation sweep voids a reservation that outlived its case, and only that one.
func TestSweepVoidsReservationsThatOutlivedTheirCase(t *testing.T) {
	db, s3 := newStores()
	for _, e := range ledger(500_000, 0) {
		mustPut(t, db, "ledger", "entry_id", e)
	}
	l := testLedger(db)
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for key, expires := range map[string]time.Time{"refund-dead": day.AddDate(0, 0, -1), "refund-live": day.AddDate(0, 6, 0)} {
		if _, err := l.Reserve(context.Background(), contract.LedgerInput{Key: key, INN: testINN, Period: 2025, Amount: 100_000, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflow(Sweep)
	registerActivities(env, realHandlers(db, s3))
	env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobReservations, Date: day.Format(time.DateOnly)})
	var res contract.SweepResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Sent != 1 || res.Flagged != 0 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	for key, want := range map[string]string{"refund-dead": contract.ReservationVoided, "refund-live": contract.ReservationReserved} {
		if r, _, _, _ := l.Get(context.Background(), key); r.State != want {
			t.Errorf("%s: %s, want %s", key, r.State, want)
		}
	}
}

// A requisites hold that nobody settles: escalated after 5 working days, an operator's
// task after the operator timeout, and, with no operator either, the reservation voided.
func TestRefundRequisitesNeverSettledEndsForAnOperatorThenVoids(t *testing.T) {
	h := newHarness(t, pending(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != RefundPayoutFailed || !st.RequisitesEscalated || !st.BankHold || st.PayoutError != "bank requisites were not verified in time" {
			t.Errorf("after 40 days: %+v", st)
		}
	}, 40*24*time.Hour)
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	var appErr *temporal.ApplicationError
	if err := h.env.GetWorkflowError(); !errors.As(err, &appErr) || appErr.Type() != "PayoutFailed" {
		t.Fatalf("want PayoutFailed, got %v", err)
	}
	if h.payouts != 0 || h.reservation().State != contract.ReservationVoided || h.balance().Reserved != 0 {
		t.Fatalf("payouts %d, reservation %+v", h.payouts, h.reservation())
	}
}
