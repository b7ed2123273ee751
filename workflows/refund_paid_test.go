package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// paidAgrees checks that once money left, every record says paid and nothing says
// otherwise: one transfer in the treasury of the amount the ledger posted; the journal
// 1..N without a gap, its last status change "paid" and none to cancelled, withdrawn,
// expired or rejected; the projection at version N, paid, with the paid amount; the
// outbox one refund.paid and no notification of another end, each notification a step
// of the journal.
func paidAgrees(t *testing.T, h *harness, amount int64) {
	t.Helper()
	var transferred []payout.Record
	for _, it := range h.db.Items("treasury") {
		var r payout.Record
		if err := store.Unmarshal(it, &r); err != nil {
			t.Fatal(err)
		}
		if r.Transferred() {
			transferred = append(transferred, r)
		}
	}
	if len(transferred) != 1 || transferred[0].Amount != amount {
		t.Fatalf("treasury: %d transfers %+v, want one of %d", len(transferred), transferred, amount)
	}
	if b, r := h.balance(), h.reservation(); b.Paid != amount || b.Reserved != 0 || r.State != contract.ReservationPosted {
		t.Fatalf("ledger: balance %+v, reservation %+v; want %d paid, posted", b, r, amount)
	}
	j := h.journal()
	var last contract.AuditEntry
	seqs := map[int64]bool{}
	var top int64
	for _, e := range j {
		seqs[e.Seq], top = true, max(top, e.Seq)
		if e.Action != "status_changed" {
			continue
		}
		switch e.To {
		case RefundCancelled, RefundWithdrawn, RefundExpired, RefundRejected:
			t.Fatalf("journal records %s: %s", e.To, journalString(j))
		}
		last = e
	}
	for s := int64(1); s <= top; s++ {
		if !seqs[s] {
			t.Fatalf("journal has a gap at %d: %s", s, journalString(j))
		}
	}
	if last.To != RefundPaid {
		t.Fatalf("journal's last status %q: %s", last.To, journalString(j))
	}
	rec, _, err := cases.Get(context.Background(), h.db, "cases", testCase)
	if err != nil || rec.Status != RefundPaid || rec.Version != top || rec.Amounts["paid"] != amount {
		t.Fatalf("projection %+v (%v), want paid %d at version %d", rec, err, amount, top)
	}
	templates := map[string]int{}
	for _, n := range outbox(t, h) {
		templates[n.Template]++
		var seq int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(n.NotificationID, testCase+"/"), "%d/", &seq); err != nil || !seqs[seq] {
			t.Fatalf("notification %s is no step of the journal", n.NotificationID)
		}
	}
	if templates["refund."+RefundPaid] != 1 {
		t.Fatalf("outbox %v: want one refund.paid", templates)
	}
	for _, end := range []string{RefundCancelled, RefundWithdrawn, RefundExpired, RefundRejected} {
		if templates["refund."+end] != 0 {
			t.Fatalf("outbox %v: a refund.%s after the transfer", templates, end)
		}
	}
	if st := h.query(); st.Status != RefundPaid || st.Paid != amount {
		t.Fatalf("status %s, paid %d", st.Status, st.Paid)
	}
}

func journalString(j []contract.AuditEntry) string {
	var out []string
	for _, e := range j {
		out = append(out, fmt.Sprintf("%d %s %s", e.Seq, e.Action, e.To))
	}
	return strings.Join(out, "; ")
}

// stepsPath is a way a run writes its steps.
type stepsPath int

const (
	foldedPath stepsPath = iota // refund-folded-steps: approved and paid ride in the reservation and the payout (every new run)
	taskPath                    // record-step-task: every step a record-transition activity task
	localPath                   // a run recorded on the path of record-step-local
)

// paths are the ways a run writes its steps that these tests cover.
var paths = map[string]stepsPath{"refund-folded-steps": foldedPath, "record-step-task": taskPath, "record-step-local": localPath}

func onPath(h *harness, p stepsPath) {
	if p != foldedPath {
		oldRefundPath(h)
	}
	if p == localPath {
		h.env.OnGetVersion(changeRecordStepTask, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	}
}

// The attack the review reproduced: the case is cancelled while the step that records
// "paid" is being written, after its transaction committed. The case is final the moment
// the payout's effect is known: it never records "cancelled" after the transfer, never
// deletes the refund.paid notification, and the journal, projection, outbox, ledger and
// treasury all say paid, once.
func TestRefundCancelledWhilePaidIsRecordedStaysPaid(t *testing.T) {
	for name, local := range paths {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(500_000, 0)...)
			onPath(h, local)
			h.env.SetStartTime(decreedYearDay)
			h.upload("d1", pdfBytes)
			cancelled := false
			h.afterRecord = func(in contract.RecordInput, err error) {
				if err == nil && in.Case != nil && in.Case.Status == RefundPaid && !cancelled {
					cancelled = true
					h.env.CancelWorkflow()
					time.Sleep(50 * time.Millisecond) // the cancellation is seen before the step's answer
				}
			}
			if local == foldedPath { // the paid step rides in the payout's posting
				h.afterPay = func(int) error {
					if !cancelled {
						cancelled = true
						h.env.CancelWorkflow()
						time.Sleep(50 * time.Millisecond)
					}
					return nil
				}
			}
			h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
			if !cancelled {
				t.Fatal("the paid step was never written")
			}
			t.Logf("workflow ended with %v", h.env.GetWorkflowError())
			paidAgrees(t, h, 400_000)
		})
	}
}

// Cancelled while the payout runs, after the treasury transferred: the case learns the
// transfer when it fences the key in its cleanup, and records paid, not cancelled.
func TestRefundCancelledDuringThePayoutAfterTheTransferIsPaid(t *testing.T) {
	for name, local := range paths {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(500_000, 0)...)
			onPath(h, local)
			h.env.SetStartTime(decreedYearDay)
			h.upload("d1", pdfBytes)
			h.afterPay = func(int) error {
				h.env.CancelWorkflow()
				time.Sleep(50 * time.Millisecond)
				return nil
			}
			h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
			t.Logf("workflow ended with %v", h.env.GetWorkflowError())
			paidAgrees(t, h, 400_000)
		})
	}
}

// The payout call times out after the treasury transferred (the answer is lost), and the
// case is cancelled before the retry: the fence finds the transfer, the case is paid.
// Without the cancellation the retry of the same key is answered with the same transfer.
func TestRefundPayoutTimedOutAfterTheTransfer(t *testing.T) {
	for _, cancel := range []bool{false, true} {
		for name, local := range paths {
			t.Run(fmt.Sprintf("%s/cancel=%v", name, cancel), func(t *testing.T) {
				h := newHarness(t, eligible(), ledger(500_000, 0)...)
				onPath(h, local)
				h.env.SetStartTime(decreedYearDay)
				h.upload("d1", pdfBytes)
				h.afterPay = func(n int) error {
					if n > 1 {
						return nil
					}
					if cancel {
						h.env.CancelWorkflow()
					}
					return errors.New("treasury gateway timeout (the transfer was made)")
				}
				h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
				t.Logf("workflow ended with %v after %d payout calls", h.env.GetWorkflowError(), h.payouts)
				paidAgrees(t, h, 400_000)
			})
		}
	}
}

// A reset run (here: the case run again from its start over the same stores, which is
// what a reset to the first workflow task decides) writes the same steps — duplicates —
// and is answered the same transfer for the same payout key; cancelled before its
// payout, it cannot record "cancelled" over the paid step either.
func TestRefundRunAgainAfterPaidChangesNothing(t *testing.T) {
	for _, cancel := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel=%v", cancel), func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(500_000, 0)...)
			h.env.SetStartTime(decreedYearDay)
			h.upload("d1", pdfBytes)
			h.run(input(400_000, "d1"))
			paidAgrees(t, h, 400_000)
			first := journalString(h.journal())

			again := newHarnessOn(t, h.db, h.s3)
			again.env.SetStartTime(decreedYearDay)
			cancelled := false
			if cancel { // cancelled once its approved step is written (in the reservation), before its payout
				again.afterReserve = func(in contract.LedgerInput, res contract.LedgerResult, err error) {
					if err == nil && res.Step != nil && res.Step.Written && !cancelled {
						cancelled = true
						again.env.CancelWorkflow()
						time.Sleep(50 * time.Millisecond)
					}
				}
			}
			again.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
			t.Logf("the second run ended with %v (%d payout calls, %d fences)", again.env.GetWorkflowError(), again.payouts, again.cancels)
			if cancel != cancelled {
				t.Fatal("the second run was not cancelled")
			}
			paidAgrees(t, again, 400_000)
			if got := journalString(again.journal()); got != first {
				t.Fatalf("the journal changed:\n%s\n%s", first, got)
			}
		})
	}
}
