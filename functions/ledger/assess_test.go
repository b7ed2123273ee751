package ledger

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

const declCase = "declaration-d1"

// assessLedger is stepLedger's ledger with the declaration's step 1 recorded, so that
// the decision's step is seq 2.
func assessLedger(t *testing.T) (Ledger, *countingDB) {
	t.Helper()
	l, db := stepLedger(t)
	if _, err := l.Steps.Record(context.Background(), caseStep(declCase, 1, "", "in_review")); err != nil {
		t.Fatal(err)
	}
	return l, db
}

func reductionEntry(amount int64) contract.LedgerEntry {
	return contract.LedgerEntry{INN: inn, EntryID: "2025#ndfl#decl-d1#1", Kind: contract.LedgerReduction, Tax: "ndfl", Period: 2025,
		Amount: amount, Date: time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC), CaseID: declCase}
}

func assessIn(amount int64) contract.LedgerInput {
	e := reductionEntry(amount)
	s := caseStep(declCase, 2, "in_review", "decided")
	return contract.LedgerInput{Op: contract.LedgerAssess, CaseID: declCase, Entry: &e, Step: &s}
}

func entries(t *testing.T, l Ledger) map[string]contract.LedgerEntry {
	t.Helper()
	var all []contract.LedgerEntry
	if err := store.QueryAll(context.Background(), l.DB, l.Entries, "inn", inn, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]contract.LedgerEntry{}
	for _, e := range all {
		out[e.EntryID] = e
	}
	return out
}

// Tax Code art. 78, 88: the desk review's decision changes the taxpayer's account. Its
// entry (the charge reduced by the refund confirmed) and the step that records the
// decision are one transaction; a retry is a duplicate and writes nothing more; the
// refund then finds the overpayment it pays.
func TestAssessWritesTheEntryWithTheDecisionStepArt78Art88(t *testing.T) {
	l, db := assessLedger(t)
	ctx := context.Background()
	before, _ := l.Refundable(ctx, inn, 2025)
	n := db.tx.Load()
	res, err := Handler{Ledger: l}.Handle(ctx, assessIn(1_300_000))
	if err != nil || res.State != contract.AssessmentWritten || res.Duplicate || res.Step == nil || !res.Step.Written || res.Step.Refused != "" {
		t.Fatalf("assess: %+v %+v %v", res, res.Step, err)
	}
	if k := db.tx.Load() - n; k != 1 {
		t.Fatalf("%d transactions, want the one", k)
	}
	checkRecord(t, l, db, declCase, 2, true)
	got, ok := entries(t, l)["2025#ndfl#decl-d1#1"]
	if !ok || got.Kind != contract.LedgerReduction || got.Amount != 1_300_000 || got.CaseID != declCase {
		t.Fatalf("entry: %+v", got)
	}
	after, _ := l.Refundable(ctx, inn, 2025)
	if after-before != 1_300_000 {
		t.Fatalf("refundable %d → %d: the reduction must add the refund confirmed", before, after)
	}
	// A retry: the same entry and step, answered as a duplicate; nothing written twice.
	res, err = Handler{Ledger: l}.Handle(ctx, assessIn(1_300_000))
	if err != nil || !res.Duplicate || res.Step == nil || !res.Step.Written || !res.Step.Duplicate {
		t.Fatalf("retry: %+v %+v %v", res, res.Step, err)
	}
	checkRecord(t, l, db, declCase, 2, true)
	if again, _ := l.Refundable(ctx, inn, 2025); again != after {
		t.Fatalf("refundable after a retry %d, want %d", again, after)
	}
	// The same entry id with another amount is a bug to surface, not a new entry.
	_, err = Handler{Ledger: l}.Handle(ctx, assessIn(500_000))
	var fe *fnerr.Error
	if !asFnErr(err, &fe) || fe.Type != fnerr.TypeKeyReused {
		t.Fatalf("another amount under the entry id: %v", err)
	}
}

// The record refuses the step (the case's record is not at the step it follows, or
// holds other content under its key): nothing is written, the entry neither.
func TestAssessStepRefusedWritesNothing(t *testing.T) {
	for _, c := range []struct {
		name string
		prep func(t *testing.T, l Ledger)
		typ  string
	}{
		{"other content under the step's key", func(t *testing.T, l Ledger) {
			other := caseStep(declCase, 2, "in_review", "clarification_required")
			if _, err := l.Steps.Record(context.Background(), other); err != nil {
				t.Fatal(err)
			}
		}, fnerr.TypeKeyReused},
		{"the record is not at the step it follows", func(t *testing.T, l Ledger) {}, fnerr.TypeConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, _ := assessLedger(t)
			c.prep(t, l)
			in := assessIn(1_300_000)
			if c.typ == fnerr.TypeConflict { // seq 3 follows version 2; the record is at 1
				s := caseStep(declCase, 3, "in_review", "decided")
				in.Step = &s
			}
			res, err := Handler{Ledger: l}.Handle(context.Background(), in)
			if err != nil || res.Step == nil || res.Step.Written || res.Step.RefusedType != c.typ || res.State == contract.AssessmentWritten {
				t.Fatalf("assess: %+v %+v %v", res, res.Step, err)
			}
			if _, ok := entries(t, l)["2025#ndfl#decl-d1#1"]; ok {
				t.Fatal("the entry was written without its step")
			}
		})
	}
}

// The content is the workflow's: an entry that is not a reduction of this case, or a
// step of another case, is refused before anything is written.
func TestAssessRefusesBadInput(t *testing.T) {
	l, _ := assessLedger(t)
	for name, mut := range map[string]func(*contract.LedgerInput){
		"no entry":           func(in *contract.LedgerInput) { in.Entry = nil },
		"no step":            func(in *contract.LedgerInput) { in.Step = nil },
		"zero amount":        func(in *contract.LedgerInput) { in.Entry.Amount = 0 },
		"a payment":          func(in *contract.LedgerInput) { in.Entry.Kind = contract.LedgerPayment },
		"another case":       func(in *contract.LedgerInput) { in.Entry.CaseID = "declaration-x" },
		"no date":            func(in *contract.LedgerInput) { in.Entry.Date = time.Time{} },
		"id of other period": func(in *contract.LedgerInput) { in.Entry.EntryID = "2024#ndfl#decl-d1#1" },
		"step of other case": func(in *contract.LedgerInput) { s := caseStep("declaration-x", 2, "a", "b"); in.Step = &s },
	} {
		in := assessIn(1_300_000)
		mut(&in)
		_, err := Handler{Ledger: l}.Handle(context.Background(), in)
		var fe *fnerr.Error
		if !asFnErr(err, &fe) || fe.Type != fnerr.TypeInvalidInput {
			t.Errorf("%s: want InvalidInput, got %v", name, err)
		}
		if _, ok := entries(t, l)["2025#ndfl#decl-d1#1"]; ok {
			t.Fatalf("%s: written", name)
		}
	}
	if _, err := (Handler{Ledger: l}).Handle(context.Background(), contract.LedgerInput{Op: contract.LedgerVoid, Key: "k",
		Entry: &contract.LedgerEntry{}}); err == nil || !strings.Contains(err.Error(), "entry") {
		t.Errorf("an entry on a void: %v", err)
	}
}

func asFnErr(err error, fe **fnerr.Error) bool { return errors.As(err, fe) }

// Tax Code art. 78 p.6, art. 88, art. 81: a period's НДФЛ is assessed once. Two
// declarations of the same taxpayer for the same period (the same 3-НДФЛ filed twice
// under two idempotency keys, or a corrected one filed as a new declaration after the
// first was decided, as the API tells the taxpayer to) each confirmed for 13 000 ₽ —
// by an inspector, or by the lapse of the desk review with no act, which confirms "as
// filed" with nobody looking — lower the tax charged for the period by 13 000 ₽, not
// by 26 000 ₽. Otherwise the second declaration's refund, approved without review
// (confirmed by review), finds a fresh 13 000 ₽ of overpayment after the first refund
// was paid, and the taxpayer is paid twice.
func TestAssessTwoDeclarationsOfOnePeriodDoNotDoubleTheReduction(t *testing.T) {
	l, _ := assessLedger(t)
	ctx := context.Background()
	const d2 = "declaration-d2"
	if _, err := l.Steps.Record(ctx, caseStep(d2, 1, "", "in_review")); err != nil {
		t.Fatal(err)
	}
	before, _ := l.Refundable(ctx, inn, 2025)
	if _, err := (Handler{Ledger: l}).Handle(ctx, assessIn(1_300_000)); err != nil {
		t.Fatal(err)
	}
	// The first declaration's refund is reserved and paid.
	if res, err := l.Reserve(ctx, reserve("refund-d1", before+1_300_000)); err != nil || res.Amount != before+1_300_000 {
		t.Fatalf("first refund: %+v %v", res, err)
	}
	if _, err := l.ClaimPayout(ctx, "refund-d1", "payout-d1-1", before+1_300_000); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, "refund-d1", "payout-d1-1"); err != nil {
		t.Fatal(err)
	}
	// The second declaration, the same figures, confirmed too.
	e := reductionEntry(1_300_000)
	e.EntryID, e.CaseID = "2025#ndfl#decl-d2#1", d2
	s := caseStep(d2, 2, "in_review", "decided")
	if _, err := (Handler{Ledger: l}).Handle(ctx, contract.LedgerInput{Op: contract.LedgerAssess, CaseID: d2, Entry: &e, Step: &s}); err != nil {
		t.Fatal(err)
	}
	if after, _ := l.Refundable(ctx, inn, 2025); after-before > 1_300_000 {
		t.Errorf("refundable %d → %d: two confirmed declarations of one period reduced its tax by %d, want at most the 1 300 000 confirmed",
			before, after, after-before)
	}
	res, err := l.Reserve(ctx, reserve("refund-d2", 1_300_000))
	if err != nil {
		t.Fatal(err)
	}
	if res.Amount > 0 {
		t.Errorf("the second declaration's refund reserved %d after the first was paid in full: paid twice", res.Amount)
	}
}

// Two declarations of one period confirmed at the same moment: the guard of the period's
// reductions lets one of them write the confirmed refund and the other 0 (it reads the
// guard again after losing), never both.
func TestAssessTwoDeclarationsAtOnceReduceThePeriodOnce(t *testing.T) {
	for round := 0; round < 20; round++ {
		l, _ := assessLedger(t)
		ctx := context.Background()
		const d2 = "declaration-d2"
		if _, err := l.Steps.Record(ctx, caseStep(d2, 1, "", "in_review")); err != nil {
			t.Fatal(err)
		}
		before, _ := l.Refundable(ctx, inn, 2025)
		e2 := reductionEntry(1_300_000)
		e2.EntryID, e2.CaseID = "2025#ndfl#decl-d2#1", d2
		s2 := caseStep(d2, 2, "in_review", "decided")
		ins := []contract.LedgerInput{assessIn(1_300_000), {Op: contract.LedgerAssess, CaseID: d2, Entry: &e2, Step: &s2}}
		var wg sync.WaitGroup
		written := make([]int64, 2)
		for i := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := l.Assess(ctx, ins[i])
				if err != nil || res.Step == nil || !res.Step.Written {
					t.Errorf("assessment %d: %+v %v", i, res, err)
				}
				written[i] = res.Amount
			}()
		}
		wg.Wait()
		after, _ := l.Refundable(ctx, inn, 2025)
		if after-before != 1_300_000 || written[0]+written[1] != 1_300_000 {
			t.Fatalf("round %d: written %v, refundable %d → %d; want the period reduced by 1 300 000 once", round, written, before, after)
		}
	}
}

// The entry id names one content: the same id asked again for a LARGER reduction (a
// workflow reset that took another decision under the same decision number, a bug in
// the amount the workflow sends) is KeyReused, as a smaller one is. The entry's written
// amount may be below the one asked (the period's guard capped it), so the amount
// asked is what a retry is compared with; reading "got ≤ want" as the same entry
// answers Duplicate with the old 5 000 ₽ while the decision confirmed 13 000 ₽, and the
// 8 000 ₽ are lost silently.
func TestAssessSameEntryIDWithALargerAmountIsKeyReused(t *testing.T) {
	l, _ := assessLedger(t)
	ctx := context.Background()
	if res, err := (Handler{Ledger: l}).Handle(ctx, assessIn(500_000)); err != nil || res.Amount != 500_000 {
		t.Fatalf("assess: %+v %v", res, err)
	}
	res, err := Handler{Ledger: l}.Handle(ctx, assessIn(1_300_000))
	var fe *fnerr.Error
	if !asFnErr(err, &fe) || fe.Type != fnerr.TypeKeyReused {
		t.Fatalf("a larger amount under the entry id: %+v %v, want KeyReused", res, err)
	}
}

// A retry of an assessment that committed, after another declaration of the period moved
// the guard: no second entry, the answer is the amount written then (a cap of 0 for the
// one that came second), the step made sure of, the guard unmoved by the retry.
func TestAssessRetryAfterTheGuardMovedAnswersTheFirstAmount(t *testing.T) {
	l, _ := assessLedger(t)
	ctx := context.Background()
	const d2 = "declaration-d2"
	if _, err := l.Steps.Record(ctx, caseStep(d2, 1, "", "in_review")); err != nil {
		t.Fatal(err)
	}
	before, _ := l.Refundable(ctx, inn, 2025)
	e2 := reductionEntry(1_300_000)
	e2.EntryID, e2.CaseID = "2025#ndfl#decl-d2#1", d2
	s2 := caseStep(d2, 2, "in_review", "decided")
	in2 := contract.LedgerInput{Op: contract.LedgerAssess, CaseID: d2, Entry: &e2, Step: &s2}
	if res, err := (Handler{Ledger: l}).Handle(ctx, assessIn(1_300_000)); err != nil || res.Amount != 1_300_000 {
		t.Fatalf("first: %+v %v", res, err)
	}
	if res, err := (Handler{Ledger: l}).Handle(ctx, in2); err != nil || res.Amount != 0 || !res.Capped || res.Step == nil || !res.Step.Written {
		t.Fatalf("second declaration: %+v %v", res, err)
	}
	var g Reductions
	key := map[string]types.AttributeValue{"key": store.S(ReductionsKey(inn, 2025, "ndfl"))}
	if _, err := store.Get(ctx, l.DB, l.Table, key, &g); err != nil {
		t.Fatal(err)
	}
	for i, in := range []contract.LedgerInput{assessIn(1_300_000), in2} {
		res, err := Handler{Ledger: l}.Handle(ctx, in)
		want := []int64{1_300_000, 0}[i]
		if err != nil || !res.Duplicate || res.Amount != want || res.Step == nil || !res.Step.Written || !res.Step.Duplicate {
			t.Fatalf("retry %d: %+v %+v %v; want a duplicate answering %d", i, res, res.Step, err, want)
		}
	}
	var g2 Reductions
	if _, err := store.Get(ctx, l.DB, l.Table, key, &g2); err != nil {
		t.Fatal(err)
	}
	if g2.Version != g.Version || g2.Written != 1_300_000 || g2.Confirmed[declCase] != 1_300_000 || g2.Confirmed[d2] != 1_300_000 {
		t.Fatalf("guard after the retries %+v, before %+v", g2, g)
	}
	if after, _ := l.Refundable(ctx, inn, 2025); after-before != 1_300_000 || len(entries(t, l)) == 0 {
		t.Fatalf("refundable %d → %d", before, after)
	}
	// The expire sweep meets the guard item in the reservations table and leaves it.
	if _, err := l.Expire(ctx, contract.LedgerInput{Op: contract.LedgerExpire}); err != nil {
		t.Fatalf("expire over a table holding a reductions guard: %v", err)
	}
}
