package refunddue

import (
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/term"
)

func msk(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Tax Code art. 78 p.6: one month from the receipt of the claim (not 30 days), by
// art. 6.1 p.5, 7 over the production calendar.
func TestClaimOneMonthArt78p6(t *testing.T) {
	for _, c := range []struct {
		claimed, last string
		moved         bool
	}{
		{"2026-02-05T10:00:00+03:00", "2026-03-05", false}, // 30 days would be 7 March
		{"2026-07-01T10:00:00+03:00", "2026-08-03", true},  // 1 August is a Saturday
		{"2026-01-31T10:00:00+03:00", "2026-03-02", true},  // 28 February (Saturday) → 2 March
		{"2026-02-04T23:30:00+03:00", "2026-03-04", false}, // a Moscow day, not UTC's
	} {
		d := Term(term.Default(), Basis{Claimed: msk(c.claimed)})
		if d.Source != Claim || d.LastDay.Format(time.DateOnly) != c.last || d.Moved != c.moved {
			t.Errorf("claimed %s: %s last day %s moved %v, want %s moved %v", c.claimed, d.Source, d.LastDay.Format(time.DateOnly), d.Moved, c.last, c.moved)
		}
	}
}

// Tax Code art. 78 p.6 with art. 88 (Plenum of the Supreme Arbitration Court No. 57,
// p.11): after a desk review the month runs from the day the review ended, or had to
// end, whichever is earlier — never from when a refund workflow starts.
func TestDeskReviewArt78p6Art88(t *testing.T) {
	ts := term.Default()
	// filed 15 January 2026: the review's term is 3 months (art. 88 p.2), to 15 April
	review := ts.Months(msk("2026-01-15T12:00:00+03:00"), 3)
	if review.LastDay.Format(time.DateOnly) != "2026-04-15" {
		t.Fatalf("review term %s", review.LastDay)
	}
	for _, c := range []struct {
		name    string
		decided string
		claimed string // when a refund workflow starts (irrelevant to the term)
		src     Source
		last    string
	}{
		// no decision (the review lapsed); the refund starts after the act's 10 working
		// days: the term is 15 May, not 1 June
		{"lapsed", "", "2026-04-29T21:00:00Z", DeskReviewDue, "2026-05-15"},
		// decided 10 March: from that day
		{"decided in the term", "2026-03-10T15:00:00+03:00", "2026-03-10T15:00:01+03:00", DeskReviewEnded, "2026-04-10"},
		// decided on 20 May, past the term: from the day it had to end
		{"decided late", "2026-05-20T15:00:00+03:00", "2026-05-20T15:00:01+03:00", DeskReviewDue, "2026-05-15"},
		// decided on the last day of the term
		{"decided on the last day", "2026-04-15T23:00:00+03:00", "2026-04-16T09:00:00+03:00", DeskReviewEnded, "2026-05-15"},
	} {
		var decided time.Time
		if c.decided != "" {
			decided = msk(c.decided)
		}
		d := Term(ts, Basis{Claimed: msk(c.claimed), Review: &DeskReview{Decided: decided, Due: review.End}})
		if d.Source != c.src || d.LastDay.Format(time.DateOnly) != c.last {
			t.Errorf("%s: %s last day %s, want %s %s", c.name, d.Source, d.LastDay.Format(time.DateOnly), c.src, c.last)
		}
	}
}

// Tax Code art. 78 p.10: interest to the day of the actual transfer, for each attempt.
func TestInterestToTheTransferDayArt78p10(t *testing.T) {
	rates, err := keyrate.Open("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	due := Term(term.Default(), Basis{Claimed: msk("2026-01-12T09:00:00+03:00")}) // to 12 Feb
	first, err := Interest(rates, 3_650_000, due.End, msk("2026-02-18T12:00:00+03:00"))
	if err != nil || first.Days != 6 {
		t.Fatalf("first attempt: %+v %v", first, err)
	}
	retry, err := Interest(rates, 3_650_000, due.End, msk("2026-03-10T12:00:00+03:00"))
	if err != nil || retry.Days != 26 || retry.Kopecks <= first.Kopecks {
		t.Fatalf("retry 20 days later: %+v %v (first %+v)", retry, err, first)
	}
}
