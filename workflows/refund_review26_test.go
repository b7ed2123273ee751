package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/taxflow/taxflow/internal/cases"

	ledgerfn "github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/internal/contract"
)

// slowReserve makes the reservation (the real handler) answer d after it is scheduled.
func slowReserve(h *harness, d time.Duration) {
	reserve := ledgerfn.Handler{Ledger: testLedger(h.db)}
	h.env.OnActivity("Reserve", mock.Anything, mock.Anything).After(d).Return(
		func(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
			in.Op = contract.LedgerReserve
			res, err := reserve.Handle(ctx, in)
			if h.afterReserve != nil {
				h.afterReserve(in, res, err)
			}
			return res, err
		})
}

// A step the deadline watch writes (the reviewer's reminder, the supervisor's escalation)
// while the reservation that carries the `approved` step is in flight waits for the step
// mutex; once it gets it the case is approved, and the step must say so. Since change
// refund-folded-steps the watch's step was made with the status from before the
// reservation (fold sets the decided status only once the reservation answers), so the
// projection went back to in_review after the journal said approved — and stayed so
// while the payout was held for the requisites — and the escalation's journal entry said
// the case was in_review after it had been approved: a committed entry, wrong for ever.
func TestRefundWatchStepDuringTheFoldedReservationDescribesTheApprovedCase(t *testing.T) {
	// requested Monday 12 January 2026, 09:00 Moscow: the term ends 24:00 Moscow of
	// Wednesday 11 February (21:00 UTC); the reminder is 72 hours before it
	start := time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC)
	deadline := time.Date(2026, 2, 11, 21, 0, 0, 0, time.UTC)
	for name, fires := range map[string]time.Time{"reminder": deadline.Add(-72 * time.Hour), "escalation": deadline} {
		t.Run(name, func(t *testing.T) {
			// a change of requisites holds the payout after the approval
			h := newHarness(t, pending(), ledger(5_000_000, 0)...)
			h.upload("d1", pdfBytes)
			h.env.SetStartTime(start)
			slowReserve(h, time.Hour) // the watch fires half-way through it
			steps := map[int64]string{}
			var mu sync.Mutex // record activities run on goroutines of their own
			h.afterRecord = func(in contract.RecordInput, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err == nil && in.Case != nil {
					steps[in.Seq] = in.Case.Status
				}
			}
			decided := fires.Add(-30 * time.Minute).Sub(start)
			h.decide(decided, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
			var held string // the projection while the payout is held
			h.env.RegisterDelayedCallback(func() {
				rec, _, err := cases.Get(context.Background(), h.db, "cases", testCase)
				if err != nil {
					t.Error(err)
				}
				held = rec.Status
				h.db.Replace("taxpayers", "inn", eligible())
			}, decided+3*time.Hour)
			h.update(decided+3*time.Hour+time.Minute, RefundUpdateRequisites, RefundRequisites{Verified: true, By: "back-office"}, false, nil)
			st := h.run(input(3_000_000, "d1"))
			mu.Lock()
			defer mu.Unlock()
			j := h.journal()
			t.Logf("journal: %s; steps %v", journalString(j), steps)
			if st.Status != RefundPaid {
				t.Fatalf("the case is %s", st.Status)
			}
			if held != RefundApproved {
				t.Errorf("while the payout was held the projection said %q, want approved", held)
			}
			var approvedAt int64
			for _, e := range j {
				if e.Action == "status_changed" && e.To == RefundApproved {
					approvedAt = e.Seq
				}
				if approvedAt > 0 && e.Seq > approvedAt && (e.From == RefundInReview || e.To == RefundInReview) {
					t.Errorf("entry %d %s %s→%s after the approval", e.Seq, e.Action, e.From, e.To)
				}
			}
			if approvedAt == 0 {
				t.Fatal("no approval in the journal")
			}
			for seq, status := range steps {
				if seq > approvedAt && status == RefundInReview {
					t.Errorf("step %d wrote the projection as %s after the approval (step %d)", seq, status, approvedAt)
				}
			}
		})
	}
}

// The reservation that carries the `approved` step commits, and then every attempt of
// its activity fails (the function's answer is lost each time, until the retries run
// out): the workflow does not know whether it reserved. The case fails; before it does,
// whatever it may hold must be released (a void of a reservation never made is harmless),
// as a failed case releases a reservation it knows of — never the taxpayer's overpayment
// held by a dead case until the expire sweep, 21 months later.
// (Runs recorded before refund-folded-steps keep the reservation, as they always did: a
// void added to their failure path would change the commands of their histories.)
func TestRefundReservationOutcomeUnknownIsReleased(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.env.SetStartTime(decreedYearDay)
	h.upload("d1", pdfBytes)
	reserve := ledgerfn.Handler{Ledger: testLedger(h.db)}
	attempts := 0
	h.env.OnActivity("Reserve", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
			attempts++
			in.Op = contract.LedgerReserve
			if _, err := reserve.Handle(ctx, in); err != nil {
				return contract.LedgerResult{}, err
			}
			return contract.LedgerResult{}, errors.New("the ledger function timed out")
		})
	h.env.ExecuteWorkflow(Refund, input(500_000, "d1"))
	if h.env.GetWorkflowError() == nil {
		t.Fatal("want the case failed")
	}
	t.Logf("%d attempts; journal %s", attempts, journalString(h.journal()))
	if res := h.reservation(); res.State == contract.ReservationReserved {
		t.Fatalf("the failed case left its reservation held: %+v", res)
	}
	if b := h.balance(); b.Reserved != 0 {
		t.Fatalf("balance %+v: the failed case holds the overpayment", b)
	}
}

// A pay that carried the `paid` step fails after the money left (its answer lost every
// time), and so does the cancel that settles the key carrying the same step: it posted
// the reservation with the step, then its answer was lost until its retries ran out.
// The case fails with the step's outcome unknown to it; when it releases what it holds,
// the cancel it sends then finds the transfer — and the case must not record a second
// `paid` (a second journal entry approved→paid and a second refund.paid to the taxpayer).
func TestRefundSettlingCancelLostAfterThePostingRecordsPaidOnce(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.env.SetStartTime(decreedYearDay)
	h.upload("d1", pdfBytes)
	h.afterPay = func(int) error { return errors.New("treasury gateway timeout") }
	pay := payoutHandler(h.db)
	lost := 0
	h.env.OnActivity("CancelPayout", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
			in.Op = contract.PayoutCancel
			res, err := pay.Handle(ctx, in)
			if err == nil && in.Step != nil && lost < 50 { // every attempt of the settling cancel (LedgerOptions)
				lost++
				return contract.PayoutResult{}, errors.New("the payout function timed out")
			}
			return res, err
		})
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	t.Logf("workflow error %v; %d settling cancels lost; journal %s", h.env.GetWorkflowError(), lost, journalString(h.journal()))
	if lost == 0 {
		t.Fatal("no settling cancel ran")
	}
	paidAgrees(t, h, 400_000)
}
