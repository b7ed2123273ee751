// Package refunddue is the one place that answers, for every refund taxflow pays, "by
// when is it due" and "how much interest is owed for a payout made on a given day".
//
// When a refund is due (Tax Code art. 78 p.6, counted by art. 6.1 over the production
// calendar, internal/term):
//
//   - a claim: one month from the day the tax authority received it. The seeds say
//     30 days [004:210]; the Code says one month, and we follow the Code (docs/domain-notes.md):
//     5 February → 5 March; 1 July 2026 → 1 August, a Saturday → Monday 3 August.
//   - a refund a 3-НДФЛ desk review confirmed (the claim was filed with the declaration,
//     before the review ended): one month from the day the desk review ended, or from
//     the day it had to end (art. 88 p.2: three months from filing), whichever is
//     earlier (art. 78 p.6 with art. 88; Plenum of the Supreme Arbitration Court No. 57
//     of 30 July 2013, p.11; the single-tax-account wording "со дня, когда такая
//     проверка должна быть завершена"). A review with no decision in its term (it
//     lapses) had to end on its last day: a declaration filed 15 January 2026 with no
//     decision is reviewed until 15 April, and its refund is due by 15 May, not from
//     whenever our workflow takes it up.
//
// How much interest (art. 78 p.10): for each day from the day after the term's last day
// to the day the money actually leaves, inclusive, at the key rate of each day
// (internal/keyrate). It is computed for each payout attempt, to that attempt's own day:
// a failed transfer retried 20 days later owes 20 days more.
//
// A term is a function of its basis and of the calendar; the caller keeps the result (a
// workflow inside workflow.SideEffect) and records a changed term as a journal entry.
package refunddue

import (
	"time"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/term"
)

// Source says what starts a refund's term.
type Source string

const (
	// Claim: a refund claimed by the taxpayer's claim (art. 78 p.6).
	Claim Source = "claim"
	// DeskReviewEnded: confirmed by a desk review decided within its term.
	DeskReviewEnded Source = "desk_review_ended"
	// DeskReviewDue: confirmed by a desk review whose term ran out first (decided late,
	// or never): the month runs from the day it had to end.
	DeskReviewDue Source = "desk_review_due"
)

// DeskReview is the desk review that confirmed a refund claimed in a declaration.
type DeskReview struct {
	// Decided: when the review's decision was taken (zero: none; it lapsed).
	Decided time.Time `json:"decided,omitzero"`
	// Due: the end of the review's term (term.Result.End of art. 88 p.2: 24:00 Moscow time
	// of its last day).
	Due time.Time `json:"due"`
}

// Basis is what a refund's term is counted from.
type Basis struct {
	// Claimed: when the tax authority received the claim.
	Claimed time.Time
	// Review: the desk review that confirmed the refund, when a declaration claimed it.
	Review *DeskReview
}

// Due is when a refund is due and why.
type Due struct {
	term.Result
	Source Source `json:"source"`
	// From is the Moscow day the month is counted from (the term starts the day after).
	From time.Time `json:"from"`
	// Rule names the rule and its articles, for the journal and the status.
	Rule string `json:"rule"`
}

// Months is the refund term of art. 78 p.6.
const Months = 1

// Term is when a refund on the given basis is due, over the calendar of t.
func Term(t term.Terms, b Basis) Due {
	if b.Review == nil || b.Review.Due.IsZero() && b.Review.Decided.IsZero() {
		from := term.Today(b.Claimed)
		return Due{Result: t.Months(from, Months), Source: Claim, From: from,
			Rule: "one month from the receipt of the claim (Tax Code art. 78 p.6, art. 6.1)"}
	}
	// The review's last day is the day before its End (24:00 of the last day).
	src, from := DeskReviewDue, time.Time{}
	if !b.Review.Due.IsZero() {
		from = term.Today(b.Review.Due.Add(-time.Nanosecond))
	}
	if d := b.Review.Decided; !d.IsZero() && (from.IsZero() || !term.Today(d).After(from)) {
		src, from = DeskReviewEnded, term.Today(d)
	}
	rule := "one month from the day the desk review ended (Tax Code art. 78 p.6 with art. 88; Plenum of the Supreme Arbitration Court No. 57, p.11)"
	if src == DeskReviewDue {
		rule = "one month from the day the desk review had to end, " + from.Format(time.DateOnly) +
			" (Tax Code art. 78 p.6 with art. 88 p.2; Plenum of the Supreme Arbitration Court No. 57, p.11)"
	}
	return Due{Result: t.Months(from, Months), Source: src, From: from, Rule: rule}
}

// Interest is the interest owed on amount kopecks of a refund due by dueEnd
// (Due.End: 24:00 Moscow of the term's last day) and transferred at paidAt: each day from
// the first day of delay to the day of the transfer, inclusive, at the key rate of that
// day (art. 78 p.10); nothing when paid in time. Every payout attempt asks it for its own
// day: the interest is never carried over from an earlier attempt.
func Interest(rates *keyrate.Table, amount int64, dueEnd, paidAt time.Time) (keyrate.Interest, error) {
	return rates.LateRefund(amount, dueEnd, paidAt)
}
