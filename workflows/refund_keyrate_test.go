package workflows

import (
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/fnerr"
)

// Tax Code art. 78 p.10: interest runs to the day of the actual transfer, at the key
// rate of each day. A payout that failed and is retried by an operator days later is
// paid under a new key whose interest is computed on the day of the retry (from the
// key-rate table in force then, with any decision added meanwhile) — on both paths: the
// one since refund-folded-steps, and the one before it, which kept the failed key and
// its interest (since change refund-interest-per-attempt it fences it too).
func TestRefundRetryRecomputesInterestArt78p10(t *testing.T) {
	for _, old := range []bool{false, true} {
		h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
		if old {
			oldRefundPath(h)
		}
		h.upload("d1", pdfBytes)
		h.env.SetStartTime(time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC))                         // due one month on, by 12 February (art. 78 p.6)
		h.decide(40*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false) // 21 Feb: 9 days late
		h.payoutErr = fnerr.Rejected("treasury is closed for the holidays")
		h.env.RegisterDelayedCallback(func() { h.payoutErr = nil }, 45*24*time.Hour)
		h.update(45*24*time.Hour+time.Minute, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3"}, false, nil) // 26 Feb
		st := h.run(input(3_650_000, "d1"))
		// 3 650 000 a day: 1 600 at 16 % (13–15 Feb), 1 550 at 15.5 % (from 16 Feb)
		const first, paid = 3*1_600 + 6*1_550, 3*1_600 + 11*1_550 // to 21 Feb; to 26 Feb
		last := h.payIns[len(h.payIns)-1]
		if st.Status != RefundPaid || st.Interest != paid || st.Paid != 3_650_000+paid || last.Interest != paid || last.PayoutKey == h.payIns[0].PayoutKey ||
			h.payIns[0].Interest != first {
			t.Fatalf("old path %v: %s, interest %d, paid %d; payout inputs %+v; want %d to the day of the transfer", old, st.Status, st.Interest, st.Paid, h.payIns, paid)
		}
	}
}
