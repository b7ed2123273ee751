package workflows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/term"
	"go.temporal.io/sdk/testsuite"
)

// decree2027 is a stand-in for the 2027 production-calendar decree (not yet published):
// 2027 has 2021's layout, and 5 November and 31 December may become days off.
const decree2027 = `# test stand-in: 2027 with 2021's layout
off 2027-01-01 2027-01-04 2027-01-05 2027-01-06 2027-01-07 2027-01-08
off 2027-02-23 2027-03-08 2027-05-03 2027-05-10 2027-06-14 2027-11-04 2027-11-05 2027-12-31
`

// loadDecree2027 makes the worker's calendar one with the 2027 decree loaded, as a new
// release would, until the test ends.
func loadDecree2027(t *testing.T) {
	t.Helper()
	cal, err := calendar.Load(fstest.MapFS{"data/2027.txt": {Data: []byte(decree2027)}}, "data")
	if err != nil {
		t.Fatal(err)
	}
	terms := term.New(cal)
	workerTerms.Store(&terms)
}

func restoreTerms(t *testing.T) { t.Cleanup(func() { workerTerms.Store(nil) }) }

// notifiedAt lists when each notification of a template was made.
func notifiedAt(t *testing.T, h *harness, template string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		if n.Template == template {
			out = append(out, n.At)
		}
	}
	return out
}

// A claim of Tuesday 5 October 2027 is due Friday 5 November on the provisional 2027
// calendar. The 2027 decree makes 5 November a day off: recomputed, the last day is
// Monday 8 November, the journal says so, the reminder and the escalation come at the
// new deadline and never at the old, and the late interest counts from the new one.
func TestRefundTermRecomputedWhenTheDecreeIsLoaded(t *testing.T) {
	restoreTerms(t)
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	start := time.Date(2027, 10, 5, 6, 0, 0, 0, time.UTC)
	h.env.SetStartTime(start)
	oldEnd, newEnd := time.Date(2027, 11, 5, 21, 0, 0, 0, time.UTC), time.Date(2027, 11, 8, 21, 0, 0, 0, time.UTC)
	var before RefundStatus
	h.env.RegisterDelayedCallback(func() { before = h.query(); loadDecree2027(t) }, 20*24*time.Hour)
	var got TermRecomputed
	var gotErr error
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(RefundUpdateRecomputeTerm, "recompute-1", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { got, _ = v.(TermRecomputed); gotErr = err },
			OnReject:   func(err error) { gotErr = err }})
	}, 20*24*time.Hour+time.Minute)
	var again TermRecomputed
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(RefundUpdateRecomputeTerm, "recompute-2", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnComplete: func(v any, err error) { again, _ = v.(TermRecomputed) },
			OnReject: func(err error) { t.Errorf("second recompute refused: %v", err) }})
	}, 21*24*time.Hour)
	// decided on 14 November: late from 9 November, 6 days
	h.decide(40*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(3_650_000, "d1"))

	if before.DeadlineDay != "2027-11-05" || len(before.DeadlineProvisional) != 1 {
		t.Fatalf("before the decree: due %s provisional %v", before.DeadlineDay, before.DeadlineProvisional)
	}
	if gotErr != nil || !got.Changed || got.Previous != "2027-11-05" || got.DeadlineDay != "2027-11-08" || !got.Deadline.Equal(newEnd) ||
		len(got.Decreed) != 1 || got.Decreed[0] != 2027 || len(got.Provisional) != 0 {
		t.Fatalf("recompute answered %+v, %v", got, gotErr)
	}
	if again.Changed || again.DeadlineDay != "2027-11-08" {
		t.Fatalf("a second recompute answered %+v", again)
	}
	if st.DeadlineDay != "2027-11-08" || len(st.DeadlineProvisional) != 0 || !st.DeadlineEscalated || st.DaysLate != 6 {
		t.Fatalf("due %s provisional %v escalated %v days late %d", st.DeadlineDay, st.DeadlineProvisional, st.DeadlineEscalated, st.DaysLate)
	}
	n := 0
	for _, e := range h.journal() {
		switch e.Action {
		case "term_recomputed":
			n++
			if !journalHas([]contract.AuditEntry{e}, "term_recomputed", "2027-11-05 → 2027-11-08") || !strings.Contains(e.Reason, "decree now loaded for [2027]") {
				t.Errorf("term_recomputed says %q", e.Reason)
			}
		case "deadline_passed":
			if !e.At.Equal(newEnd) {
				t.Errorf("escalated at %s, want at the new deadline %s (old %s)", e.At, newEnd, oldEnd)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d term_recomputed entries, want 1", n)
	}
	if at := notifiedAt(t, h, "refund.deadline_passed"); len(at) != 1 || !at[0].Equal(newEnd) {
		t.Fatalf("escalations at %v, want one at %s", at, newEnd)
	}
	if at := notifiedAt(t, h, "refund.deadline_reminder"); len(at) != 1 || !at[0].Equal(newEnd.Add(-72*time.Hour)) {
		t.Fatalf("reminders at %v, want one at %s", at, newEnd.Add(-72*time.Hour))
	}
}

// The calendar unchanged: the update answers unchanged and the case takes no step.
func TestRefundTermRecomputedUnchangedTakesNoStep(t *testing.T) {
	restoreTerms(t)
	steps := func(recompute bool) (int, TermRecomputed) {
		h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
		h.upload("d1", pdfBytes)
		h.env.SetStartTime(time.Date(2027, 10, 5, 6, 0, 0, 0, time.UTC))
		n := 0
		h.afterRecord = func(contract.RecordInput, error) { n++ }
		var got TermRecomputed
		if recompute {
			h.env.RegisterDelayedCallback(func() {
				h.env.UpdateWorkflow(RefundUpdateRecomputeTerm, "recompute", &testsuite.TestUpdateCallback{
					OnAccept: func() {}, OnReject: func(err error) { t.Errorf("recompute refused: %v", err) },
					OnComplete: func(v any, err error) {
						got, _ = v.(TermRecomputed)
						if err != nil {
							t.Errorf("recompute: %v", err)
						}
					}})
			}, 20*24*time.Hour)
		}
		h.decide(25*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
		if st := h.run(input(3_650_000, "d1")); st.Status != RefundPaid {
			t.Fatalf("status %s", st.Status)
		}
		if hasAction(h.journal(), "term_recomputed") {
			t.Fatal("an unchanged term was journalled")
		}
		return n, got
	}
	without, _ := steps(false)
	with, got := steps(true)
	if with != without || got.Changed || got.DeadlineDay != "2027-11-05" || got.Previous != "2027-11-05" {
		t.Fatalf("steps %d with the update, %d without; answered %+v", with, without, got)
	}
}

// A refund whose payout has started refuses the update (a late message): its term no
// longer changes anything, and nothing is written.
func TestRefundTermRecomputeRefusedOncePayoutStarted(t *testing.T) {
	restoreTerms(t)
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(time.Date(2027, 10, 5, 6, 0, 0, 0, time.UTC))
	h.payoutErr = fnerr.Rejected("treasury refused the transfer: account closed")
	h.env.RegisterDelayedCallback(func() { loadDecree2027(t) }, 24*time.Hour)
	var refused error
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(RefundUpdateRecomputeTerm, "recompute", &testsuite.TestUpdateCallback{
			OnAccept: func() { t.Error("recompute accepted after the payout started") }, OnReject: func(err error) { refused = err },
			OnComplete: func(any, error) {}})
	}, 24*time.Hour+time.Minute)
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1")) // ends failed: no operator retries
	st := h.query()
	if _, late := AsLate(refused); !late {
		t.Fatalf("recompute refused with %v, want a late message", refused)
	}
	if st.DeadlineDay != "2027-11-05" || hasAction(h.journal(), "term_recomputed") {
		t.Fatalf("due %s, journal %v", st.DeadlineDay, h.journal())
	}
}

// recomputeDecl sends the recompute update to a declaration at a delay and keeps its answer.
func recomputeDecl(h *declHarness, at time.Duration, got *TermRecomputed, gotErr *error) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(DeclarationUpdateRecomputeTerm, fmt.Sprintf("recompute-%s", at), &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { *got, _ = v.(TermRecomputed); *gotErr = err },
			OnReject:   func(err error) { *gotErr = err }})
	}, at)
}

func declJournal(t *testing.T, h *declHarness) []contract.AuditEntry {
	t.Helper()
	j, err := audit.Journal(context.Background(), h.db, "audit", declCase)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A declaration filed on Thursday 5 August 2027 is reviewed until Friday 5 November on
// the provisional calendar. With the decree loaded the term is recomputed to Monday
// 8 November: the escalation comes at the new deadline, and the review with no decision
// ends by itself 10 working days after the new last day (22 November), not the old (19).
func TestDeclarationReviewTermRecomputedWhenTheDecreeIsLoaded(t *testing.T) {
	restoreTerms(t)
	h := newDeclHarness(t)
	h.startAt(2027, time.August, 5, 10, 0)
	newEnd := time.Date(2027, time.November, 9, 0, 0, 0, 0, term.Moscow)
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); st.DeadlineDay != "2027-11-05" {
			t.Errorf("before the decree: due %s", st.DeadlineDay)
		}
		loadDecree2027(t)
	}, 30*24*time.Hour)
	var got, again TermRecomputed
	var gotErr, againErr error
	recomputeDecl(h, 30*24*time.Hour+time.Minute, &got, &gotErr)
	recomputeDecl(h, 31*24*time.Hour, &again, &againErr)
	st := h.run(h.input(goodDeclaration(), false))
	if gotErr != nil || !got.Changed || got.Previous != "2027-11-05" || got.DeadlineDay != "2027-11-08" || !got.Deadline.Equal(newEnd) || fmt.Sprint(got.Decreed) != "[2027]" {
		t.Fatalf("recompute answered %+v, %v", got, gotErr)
	}
	if againErr != nil || again.Changed {
		t.Fatalf("a second recompute answered %+v, %v", again, againErr)
	}
	tr, _ := transitionTo(st, DeclarationDecided)
	if st.DeadlineDay != "2027-11-08" || !st.Escalated || st.DecidedBy != "system" || !tr.At.Equal(time.Date(2027, time.November, 23, 0, 0, 0, 0, term.Moscow)) {
		t.Fatalf("due %s escalated %v, decided by %s at %s", st.DeadlineDay, st.Escalated, st.DecidedBy, tr.At.In(term.Moscow))
	}
	n := 0
	for _, e := range declJournal(t, h) {
		switch e.Action {
		case "term_recomputed":
			n++
			if !strings.Contains(e.Reason, "2027-11-05 → 2027-11-08") || !strings.Contains(e.Reason, "2027-11-22") {
				t.Errorf("term_recomputed says %q", e.Reason)
			}
		case "deadline_passed":
			if !e.At.Equal(newEnd) {
				t.Errorf("escalated at %s, want at the new deadline %s", e.At.In(term.Moscow), newEnd)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d term_recomputed entries", n)
	}
}

// A decision taken on Monday 4 October 2027 is delivered on the 5th: the appeal window
// ends on Friday 5 November on the provisional calendar, on Monday 8 November once the
// decree is loaded, and the case closes at the new end. Once closed, the update is late.
func TestDeclarationAppealWindowRecomputedWhenTheDecreeIsLoaded(t *testing.T) {
	restoreTerms(t)
	h := newDeclHarness(t)
	start := h.startAt(2027, time.October, 4, 10, 0)
	newEnd := time.Date(2027, time.November, 9, 0, 0, 0, 0, term.Moscow)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.expect(2*time.Hour, func(st DeclarationStatus) {
		if st.AppealBy == nil || !st.AppealBy.Equal(time.Date(2027, time.November, 6, 0, 0, 0, 0, term.Moscow)) {
			t.Errorf("appeal by %v before the decree", st.AppealBy)
		}
	})
	h.env.RegisterDelayedCallback(func() { loadDecree2027(t) }, 10*24*time.Hour)
	var got TermRecomputed
	var gotErr error
	recomputeDecl(h, 10*24*time.Hour+time.Minute, &got, &gotErr)
	st := h.run(h.input(goodDeclaration(), false))
	if gotErr != nil || !got.Changed || got.DeadlineDay != "2027-11-08" || !got.Deadline.Equal(newEnd) {
		t.Fatalf("recompute answered %+v, %v", got, gotErr)
	}
	if st.Status != DeclarationDecided || !h.env.Now().Equal(newEnd) || !hasAction(declJournal(t, h), "term_recomputed") {
		t.Fatalf("%s closed at %s (started %s), want %s", st.Status, h.env.Now().In(term.Moscow), start, newEnd)
	}
}

// An appealed decision: no term the update can move runs (the appeal's own month is not
// recomputed), so it is refused as late and nothing is written.
func TestDeclarationTermRecomputeRefusedDuringAnAppeal(t *testing.T) {
	restoreTerms(t)
	h := newDeclHarness(t)
	h.startAt(2027, time.October, 4, 10, 0)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.update(2*time.Hour, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, false)
	h.env.RegisterDelayedCallback(func() { loadDecree2027(t) }, 3*time.Hour)
	var got TermRecomputed
	var gotErr error
	recomputeDecl(h, 3*time.Hour+time.Minute, &got, &gotErr)
	h.update(4*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "документы найдены", Inspector: "insp-3"}, false)
	h.run(h.input(goodDeclaration(), false))
	if _, late := AsLate(gotErr); !late || got.Changed || hasAction(declJournal(t, h), "term_recomputed") {
		t.Fatalf("recompute during the appeal answered %+v, %v", got, gotErr)
	}
}

// A term recomputed while the payout's interest is being counted (the decree loaded in the
// middle of it): the interest is counted again from the term the case now has, and the
// payout key carries that interest — never the old term's (Tax Code art. 78 p.10).
func TestRefundTermRecomputedWhileTheInterestIsCountedArt78p10(t *testing.T) {
	restoreTerms(t)
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.env.SetStartTime(time.Date(2027, 10, 5, 6, 0, 0, 0, time.UTC))
	newEnd := time.Date(2027, 11, 8, 21, 0, 0, 0, time.UTC)
	var deadlines []time.Time
	h.env.OnActivity("RefundInterest", mock.Anything, mock.Anything).After(time.Hour).Return(
		func(_ context.Context, in activities.RefundInterestInput) (keyrate.Interest, error) {
			deadlines = append(deadlines, in.Deadline)
			days := int(in.PaidAt.Sub(in.Deadline).Hours() / 24)
			return keyrate.Interest{Kopecks: int64(days) * 1_000, Days: days}, nil
		})
	h.decide(40*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false) // 14 Nov: late on either term
	var got TermRecomputed
	var gotErr error
	h.env.RegisterDelayedCallback(func() {
		loadDecree2027(t)
		h.env.UpdateWorkflow(RefundUpdateRecomputeTerm, "recompute-1", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { got, _ = v.(TermRecomputed); gotErr = err },
			OnReject:   func(err error) { gotErr = err }})
	}, 40*24*time.Hour+30*time.Minute) // while the first count runs
	st := h.run(input(3_000_000, "d1"))
	if gotErr != nil || !got.Changed || !got.Deadline.Equal(newEnd) {
		t.Fatalf("recompute answered %+v, %v; want the term moved to %v", got, gotErr, newEnd)
	}
	if len(deadlines) != 2 || !deadlines[1].Equal(newEnd) {
		t.Fatalf("interest counted from %v; want a second count from the new term %v", deadlines, newEnd)
	}
	last := h.payIns[len(h.payIns)-1]
	wantDays := int64(last.Interest / 1_000)
	if st.Status != RefundPaid || last.Interest == 0 || st.DaysLate != wantDays || !st.Deadline.Equal(newEnd) {
		t.Fatalf("paid %s with interest %d for %d days, deadline %v; want the interest of the new term", st.Status, last.Interest, st.DaysLate, st.Deadline)
	}
}
