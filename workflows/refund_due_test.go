package workflows

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/refunddue"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/term"
)

func lateInterest(t *testing.T, amount int64, due, paidAt time.Time) keyrate.Interest {
	t.Helper()
	rates, err := keyrate.Open("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in, err := rates.LateRefund(amount, due, paidAt)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func journalHas(j []contract.AuditEntry, action, sub string) bool {
	for _, e := range j {
		if e.Action == action && strings.Contains(e.Reason, sub) {
			return true
		}
	}
	return false
}

// Tax Code art. 78 p.6: a refund is due one month from the receipt of the claim, not
// 30 days (the seeds' figure; docs/domain-notes.md), counted by art. 6.1: 5 February →
// 5 March (30 days: 7 March); 1 July 2026 → 1 August, a Saturday → Monday 3 August.
func TestRefundTermOneMonthFromTheClaimArt78p6(t *testing.T) {
	for _, c := range []struct {
		start time.Time
		day   string
	}{
		{time.Date(2026, 2, 5, 7, 0, 0, 0, time.UTC), "2026-03-05"},
		{time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), "2026-08-03"},
	} {
		h := newHarness(t, eligible(), ledger(500_000, 0)...)
		h.upload("d1", pdfBytes)
		h.env.SetStartTime(c.start)
		st := h.run(input(400_000, "d1")) // approved automatically, paid at once
		if st.Status != RefundPaid || st.DeadlineDay != c.day {
			t.Errorf("claimed %s: %s, due %s, want %s", c.start.Format(time.DateOnly), st.Status, st.DeadlineDay, c.day)
		}
	}
}

// Tax Code art. 78 p.10: interest runs to the day the money actually leaves. A transfer
// that fails and is retried by an operator 20 days later is a new payout key whose
// interest is recomputed to its own day (26 days, not the first attempt's 6), and the
// changed interest is a journal entry. On every path a run may be on.
func TestRefundInterestToTheDayOfEachPayoutAttemptArt78p10(t *testing.T) {
	for name, p := range map[string]stepsPath{"refund-folded-steps": foldedPath, "record-step-task": taskPath} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
			onPath(h, p)
			h.upload("d1", pdfBytes)
			start := time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC) // 09:00 Moscow, Monday 12 January
			h.env.SetStartTime(start)
			decided := 37 * 24 * time.Hour // 18 February
			h.decide(decided, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
			h.payoutErr = fnerr.Rejected("treasury refused the transfer: account blocked")
			retry := decided + 20*24*time.Hour // 10 March
			h.env.RegisterDelayedCallback(func() { h.payoutErr = nil }, retry-time.Minute)
			h.update(retry, RefundUpdateRetryPayout, RefundRetry{Operator: "operator-3", Reason: "account unblocked"}, false, nil)
			st := h.run(input(3_650_000, "d1"))
			if st.Status != RefundPaid || len(h.payIns) < 2 {
				t.Fatalf("status %s, %d payout calls", st.Status, len(h.payIns))
			}
			first := lateInterest(t, 3_650_000, st.Deadline, start.Add(decided))
			want := lateInterest(t, 3_650_000, st.Deadline, start.Add(retry))
			last := h.payIns[len(h.payIns)-1]
			if want.Days != first.Days+20 || h.payIns[0].Interest != first.Kopecks || last.Interest != want.Kopecks ||
				st.DaysLate != int64(want.Days) || st.Interest != want.Kopecks || st.Paid != 3_650_000+want.Kopecks {
				t.Fatalf("first attempt %d (want %d, %d days), last %d under %s (want %d, %d days); status: %d days, interest %d, paid %d",
					h.payIns[0].Interest, first.Kopecks, first.Days, last.Interest, last.PayoutKey, want.Kopecks, want.Days, st.DaysLate, st.Interest, st.Paid)
			}
			if last.PayoutKey == h.payIns[0].PayoutKey {
				t.Fatalf("the retry reused key %s with other content", last.PayoutKey)
			}
			if !journalHas(h.journal(), "interest_recomputed", "art. 78 p.10") {
				t.Fatalf("no journal entry for the changed interest: %s", journalString(h.journal()))
			}
		})
	}
}

// Tax Code art. 78, 79: the tax office's silence does not end the taxpayer's right. A
// refund no reviewer decides never ends `expired` with nothing paid: it escalates again
// each review-expiry period, stays due (in review), and when a decision comes at last it
// is paid with interest for every day of delay.
func TestRefundInactionNeverEndsTheClaimArt78(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	start := time.Date(2026, 1, 12, 6, 0, 0, 0, time.UTC)
	h.env.SetStartTime(start)
	expiry := DefaultRefundPolicy().ReviewExpiry
	// the old path expired at deadline + expiry (about 13 March): 100 days later, still due
	late := 130 * 24 * time.Hour
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != RefundInReview || !st.DeadlineEscalated {
			t.Errorf("undecided after %v: %s, escalated %v; want in review, escalated", late, st.Status, st.DeadlineEscalated)
		}
	}, late-time.Hour)
	h.decide(late, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: "finally looked at"}, false)
	st := h.run(input(3_650_000, "d1"))
	want := lateInterest(t, 3_650_000, st.Deadline, start.Add(late))
	if st.Status != RefundPaid || st.Interest != want.Kopecks || st.Paid != 3_650_000+want.Kopecks || st.DaysLate != int64(want.Days) {
		t.Fatalf("status %s, interest %d over %d days, paid %d; want paid with %d over %d days", st.Status, st.Interest, st.DaysLate, st.Paid, want.Kopecks, want.Days)
	}
	j := h.journal()
	if hasAction(j, "review_expired") {
		t.Fatal("the case recorded an expiry")
	}
	overdue := 0
	for _, e := range j {
		if e.Action == "review_overdue" {
			overdue++
		}
	}
	// escalated at deadline + expiry, + 2×expiry, + 3×expiry before the decision
	if wantN := int((start.Add(late).Sub(st.Deadline)) / expiry); overdue != wantN {
		t.Fatalf("%d review_overdue entries, want %d: %s", overdue, wantN, journalString(j))
	}
	var notices int
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		if n.Template == "refund.review_overdue" {
			notices++
		}
	}
	if notices != overdue {
		t.Fatalf("%d supervisor notices for %d escalations", notices, overdue)
	}
}

// Tax Code art. 78 p.6 with art. 88 (Plenum of the Supreme Arbitration Court No. 57,
// p.11): the refund a desk review confirms is due one month from the day the review
// ended, or had to end, whichever is earlier. The declaration hands the review's end to
// the refund it starts: filed 15 January 2026 with no decision, the review had to end on
// 15 April and the refund is due by 15 May (not 30 days from the lapse at the act term,
// 1 June); decided on 10 March, the refund is due by 10 April.
func TestDeclarationRefundDueFromTheDeskReviewArt78p6Art88(t *testing.T) {
	for _, c := range []struct {
		name   string
		decide time.Duration // 0: no decision, the review lapses
		src    refunddue.Source
		day    string
	}{
		{"lapsed", 0, refunddue.DeskReviewDue, "2026-05-15"},
		{"decided on 10 March", 54*24*time.Hour + 3*time.Hour, refunddue.DeskReviewEnded, "2026-04-10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newDeclHarness(t)
			h.startAt(2026, time.January, 15, 12, 0)
			started := h.refundStarts()
			if c.decide > 0 {
				h.update(c.decide, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "проверено", Inspector: "insp-1"}, false)
			}
			st := h.run(h.input(goodDeclaration(), true))
			if st.DeadlineDay != "2026-04-15" || len(*started) != 1 || (*started)[0].DeskReview == nil {
				t.Fatalf("review due %s, refunds started %+v", st.DeadlineDay, *started)
			}
			due := refunddue.Term(term.Default(), refunddue.Basis{Claimed: time.Now(), Review: (*started)[0].DeskReview})
			if due.Source != c.src || due.LastDay.Format(time.DateOnly) != c.day {
				t.Fatalf("the refund is due by %s (%s), want %s (%s)", due.LastDay.Format(time.DateOnly), due.Source, c.day, c.src)
			}
		})
	}
}

// The refund side of the same rule: a refund started on 29 April, after the lapsed
// review's act term, is due by 15 May; decided on 25 May it is 10 days late (16-25 May),
// and the journal says what the term runs from.
func TestRefundDueFromTheDeskReviewArt78p6Art88(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	review := term.Default().Months(time.Date(2026, 1, 15, 12, 0, 0, 0, term.Moscow), 3) // to 15 April
	start := time.Date(2026, 4, 29, 18, 0, 0, 0, term.Moscow)
	h.env.SetStartTime(start)
	paidAt := time.Date(2026, 5, 25, 12, 0, 0, 0, term.Moscow)
	h.decide(paidAt.Sub(start), RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	in := input(3_650_000, "d1")
	in.DeskReview = &refunddue.DeskReview{Due: review.End}
	st := h.run(in)
	want := lateInterest(t, 3_650_000, st.Deadline, paidAt)
	if st.DeadlineDay != "2026-05-15" || st.DeadlineSource != string(refunddue.DeskReviewDue) || !strings.Contains(st.DeadlineRule, "art. 88") ||
		st.DaysLate != 10 || want.Days != 10 || st.Interest != want.Kopecks || st.Paid != 3_650_000+want.Kopecks {
		t.Fatalf("due %s (%s: %s), %d days late, interest %d, paid %d; want 2026-05-15, 10 days, %d", st.DeadlineDay, st.DeadlineSource, st.DeadlineRule,
			st.DaysLate, st.Interest, st.Paid, want.Kopecks)
	}
	if !journalHas(h.journal(), "refund_term", "2026-04-15") {
		t.Fatalf("the journal does not say what the term runs from: %s", journalString(h.journal()))
	}
}

// A bench's timer wave (policy deadline_at): the case's term ends at that instant instead
// of the Code's month, the watch reminds before it and escalates at it, once, and the
// journal says where the term came from. Without it the Code's month applies.
func TestRefundPolicyDeadlineAtEndsTheTermThere(t *testing.T) {
	start := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	for _, set := range []bool{true, false} {
		t.Run(fmt.Sprint("deadline_at=", set), func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
			h.upload("d1", pdfBytes)
			h.env.SetStartTime(start)
			in := input(3_650_000, "d1")
			at := start.Add(3 * time.Hour)
			if set {
				in.Policy.DeadlineAt = &at
			}
			in.Policy.ReminderBefore = time.Hour
			h.env.RegisterDelayedCallback(func() {
				if st := h.query(); st.DeadlineEscalated || st.Reminded {
					t.Errorf("before the reminder: reminded %v, escalated %v", st.Reminded, st.DeadlineEscalated)
				}
			}, 110*time.Minute)
			h.env.RegisterDelayedCallback(func() {
				st := h.query()
				if st.DeadlineEscalated != set || st.Reminded != set || st.Status != RefundInReview {
					t.Errorf("after the wave's instant: %s, reminded %v, escalated %v; want both %v", st.Status, st.Reminded, st.DeadlineEscalated, set)
				}
			}, 3*time.Hour+time.Minute)
			h.decide(48*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: "looked at"}, false)
			st := h.run(in)
			if st.Status != RefundPaid {
				t.Fatalf("ended %s", st.Status)
			}
			passed := 0
			for _, e := range h.journal() {
				if e.Action == "deadline_passed" {
					passed++
				}
			}
			if set && (passed != 1 || !st.Deadline.Equal(at) || st.DeadlineSource != "policy" || !journalHas(h.journal(), "refund_term", "policy of a bench run")) {
				t.Fatalf("deadline %v (source %s), %d escalations: %s", st.Deadline, st.DeadlineSource, passed, journalString(h.journal()))
			}
			if !set && (passed != 0 || st.DeadlineDay != "2026-04-02") {
				t.Fatalf("the Code's term: due %s, %d escalations", st.DeadlineDay, passed)
			}
		})
	}
}
