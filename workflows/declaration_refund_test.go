package workflows

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ledgerfn "github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/term"
)

const declRefundCase = "refund-0c6f6f9e-0000-4000-8000-000000000003"

// employerLedger is what the employer's figures put in the ledger for a year: the tax
// withheld charged, and paid month by month (the last month takes the rounding).
func employerLedger(period int, withheld int64) []contract.LedgerEntry {
	out := []contract.LedgerEntry{{INN: testINN, EntryID: fmt.Sprintf("%d#ndfl#charge", period), Kind: "charge", Tax: "ndfl", Period: period, Amount: withheld}}
	var sum int64
	for m := 1; m <= 12; m++ {
		amount := withheld / 12
		if m == 12 {
			amount = withheld - sum
		}
		sum += amount
		out = append(out, contract.LedgerEntry{INN: testINN, EntryID: fmt.Sprintf("%d#ndfl#p%02d", period, m), Kind: "payment", Tax: "ndfl",
			Period: period, Amount: amount, Date: time.Date(period, time.Month(m), 28, 10, 0, 0, 0, term.Moscow)})
	}
	return out
}

// treasuryTransfers are the transfers that left.
func treasuryTransfers(t *testing.T, h *declHarness) []payout.Record {
	t.Helper()
	var out []payout.Record
	for _, it := range h.db.Items("treasury") {
		var r payout.Record
		if err := store.Unmarshal(it, &r); err != nil {
			t.Fatal(err)
		}
		if r.Transferred() {
			out = append(out, r)
		}
	}
	return out
}

func caseJournal(t *testing.T, h *declHarness, caseID string) []contract.AuditEntry {
	t.Helper()
	j, err := audit.Journal(context.Background(), h.db, "audit", caseID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Tax Code art. 78 p.6, art. 88: a refund the desk review confirms is paid. The decision
// writes the assessed tax to the taxpayer's ledger (the employer's charge reduced by the
// refund confirmed) in the transaction that records it, so the refund it starts finds
// the overpayment; that refund is not reviewed a second time, whatever the automatic
// limit (13 000 ₽ is above the default 10 000 ₽), and pays the confirmed amount (plus
// interest: none here, it is paid within its term). The figures: salary 1.2M,
// withheld 156 000, treatment 100 000 → confirmed refund 13 000 ₽.
//
// Art. 78 p.7: the decision's entry is dated by the filing (the refund's own window is
// TestRefundOfLateFiledDeclarationArt78p7: the test environment starts a child workflow
// on the wall clock, not on the parent's).
func TestDeclarationConfirmedRefundIsPaidArt78Art88(t *testing.T) {
	for _, c := range []struct {
		name     string
		period   int
		filed    time.Time
		decision DeclarationDecision
		after    time.Duration // from the filing to the decision
		want     int64
	}{
		{"confirmed", 2025, time.Date(2026, 1, 15, 10, 0, 0, 0, term.Moscow), DeclarationDecision{Decision: DecisionConfirmed}, 24 * time.Hour, rub(13_000)},
		{"partly confirmed", 2025, time.Date(2026, 1, 15, 10, 0, 0, 0, term.Moscow),
			DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(12_000)}, 24 * time.Hour, rub(12_000)},
		// decided on 14 Jan 2027: 3 years after every employer payment of 2023 (the last on
		// 28 Dec 2023), within 3 years of the filing
		{"2023 filed on 5 Dec 2026 (art. 78 p.7)", 2023, time.Date(2026, 12, 5, 11, 0, 0, 0, term.Moscow), DeclarationDecision{Decision: DecisionConfirmed},
			40 * 24 * time.Hour, rub(13_000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newDeclHarness(t)
			mustPut(t, h.db, "taxpayers", "inn", eligible())
			for _, e := range employerLedger(c.period, rub(156_000)) {
				mustPut(t, h.db, "ledger", "entry_id", e)
			}
			h.env.SetStartTime(c.filed)
			d := c.decision
			d.Grounds, d.Inspector = "проверено", "insp-1"
			h.update(c.after, DeclarationUpdateDecide, d, false)
			decl := goodDeclaration()
			decl.Period = c.period
			st := h.run(h.input(decl, true))
			if st.ConfirmedRefund != c.want || st.RefundCase != declRefundCase {
				t.Fatalf("confirmed %d, refund case %q", st.ConfirmedRefund, st.RefundCase)
			}

			// The ledger holds the decision's entry, dated by the filing.
			var found *contract.LedgerEntry
			var all []contract.LedgerEntry
			if err := store.QueryAll(context.Background(), h.db, "ledger", "inn", testINN, &all); err != nil {
				t.Fatal(err)
			}
			for i, e := range all {
				if e.Kind == contract.LedgerReduction {
					if found != nil {
						t.Fatalf("two reductions: %+v", all)
					}
					found = &all[i]
				}
			}
			wantID := fmt.Sprintf("%d#ndfl#decl-0c6f6f9e-0000-4000-8000-000000000003#1", c.period)
			if found == nil || found.EntryID != wantID || found.Amount != c.want || found.CaseID != declCase || !found.Date.Equal(c.filed) {
				t.Fatalf("ledger entry of the decision: %+v; want %s of %d dated %s", found, wantID, c.want, c.filed)
			}
			// ... written with the step that records the decision: the `decided` status
			// change is in the journal, under the step whose key the entry's transaction
			// carried (one step, one record key).
			var decided []contract.AuditEntry
			for _, e := range caseJournal(t, h, declCase) {
				if e.Action == "status_changed" && e.To == DeclarationDecided {
					decided = append(decided, e)
				}
			}
			if len(decided) != 1 || !strings.Contains(decided[0].Reason, fmt.Sprintf("refund confirmed: %d kopecks", c.want)) {
				t.Fatalf("decided steps: %+v", decided)
			}

			// The refund: paid, the confirmed amount, no second review.
			transfers := treasuryTransfers(t, h)
			if len(transfers) != 1 || transfers[0].CaseID != declRefundCase || transfers[0].Principal != c.want ||
				transfers[0].Amount != c.want+transfers[0].Interest {
				t.Fatalf("treasury: %+v; want one transfer of %d plus interest", transfers, c.want)
			}
			rec, _, err := cases.Get(context.Background(), h.db, "cases", declRefundCase)
			if err != nil || rec.Status != RefundPaid {
				t.Fatalf("refund case %+v (%v), want paid", rec, err)
			}
			for _, e := range caseJournal(t, h, declRefundCase) {
				if e.Action == "status_changed" && (e.To == RefundInReview || e.To == RefundRejected || e.To == RefundExpired) {
					t.Fatalf("refund journal: %s", journalString(caseJournal(t, h, declRefundCase)))
				}
			}
		})
	}
}

// Art. 78, 88: a decision that confirms no refund writes nothing to the ledger.
func TestDeclarationRefusedDecisionWritesNoAssessment(t *testing.T) {
	for _, dec := range []string{DecisionRefused, DecisionAdditionalTax} {
		h := newDeclHarness(t)
		mustPut(t, h.db, "taxpayers", "inn", eligible())
		h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: dec, Grounds: "нет", Inspector: "insp-1"}, false)
		st := h.run(h.input(goodDeclaration(), true))
		if st.RefundCase != "" || len(h.db.Items("ledger")) != 0 {
			t.Fatalf("%s: refund %q, ledger %d items", dec, st.RefundCase, len(h.db.Items("ledger")))
		}
	}
}

// The decision's entry and step are one transaction: when the record refuses the step
// (another step under its key), the entry is not written and the case stops, for an
// operator to see; no refund starts on a decision the record does not show.
func TestDeclarationDecisionRefusedByTheRecordWritesNoEntry(t *testing.T) {
	h := newDeclHarness(t)
	mustPut(t, h.db, "taxpayers", "inn", eligible())
	rec := transition.Handler{DB: h.db, Journal: "audit", Cases: "cases", Outbox: "outbox"}
	// Just before the decision, something else writes the step the decision would take.
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		var seq int64
		for _, e := range caseJournal(t, h, declCase) {
			seq = max(seq, e.Seq)
		}
		if _, err := rec.Record(context.Background(), contract.RecordInput{CaseID: declCase, Seq: seq + 1,
			Entries: []contract.AuditEntry{{At: time.Now(), Actor: "intruder", Action: "note", From: st.Status, To: st.Status}}}); err != nil {
			t.Fatal(err)
		}
	}, 23*time.Hour)
	h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "проверено", Inspector: "insp-1"}, true)
	h.env.ExecuteWorkflow(Declaration, h.input(goodDeclaration(), true))
	if err := h.env.GetWorkflowError(); err == nil {
		t.Fatal("the case went on over a record it did not write")
	}
	for _, it := range h.db.Items("ledger") {
		t.Fatalf("ledger entry written without its step: %v", it)
	}
	if len(treasuryTransfers(t, h)) != 0 {
		t.Fatal("money left")
	}
}

// Tax Code art. 78 p.6, art. 88: a refund the desk review confirmed (13 000 ₽, above the
// automatic limit of 10 000 ₽) is approved as confirmed: no in_review, no reviewer, and
// it is paid. The same claim without the desk review's confirmation is reviewed.
func TestRefundConfirmedByDeskReviewIsNotReviewedAgainArt78p6(t *testing.T) {
	for _, c := range []struct {
		name      string
		confirmed int64
		reviewed  bool
	}{{"confirmed by the desk review", rub(13_000), false}, {"claimed without one", 0, true}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(rub(13_000), 0)...)
			in := input(rub(13_000))
			in.LinkedDeclaration, in.ConfirmedByReview = declCase, c.confirmed
			if in.Policy.AutoApproveMax >= rub(13_000) {
				t.Fatalf("the automatic limit %d does not test anything", in.Policy.AutoApproveMax)
			}
			if c.reviewed {
				h.decide(time.Hour, RefundDecision{Approve: true, Reason: "ok", Reviewer: "rev-1"}, false)
			}
			st := h.run(in)
			var inReview bool
			for _, tr := range st.History {
				inReview = inReview || tr.To == RefundInReview
			}
			if st.Status != RefundPaid || st.Paid != rub(13_000) || inReview != c.reviewed {
				t.Fatalf("status %s, paid %d, in_review %v (want %v): %+v", st.Status, st.Paid, inReview, c.reviewed, st.History)
			}
			if !c.reviewed && (st.DecidedBy != "system" || !strings.Contains(st.History[len(st.History)-2].Reason, "art. 78 p.6")) {
				t.Fatalf("decided by %q: %+v", st.DecidedBy, st.History)
			}
		})
	}
}

// Tax Code art. 78 p.7: the overpayment a 3-НДФЛ creates arises when the declaration is
// filed, so the 3 years count from the filing. A 2023 declaration filed on 5 Dec 2026,
// confirmed, its refund started on 14 Jan 2027: 3 years after every one of the
// employer's 2023 payments (the last on 28 Dec 2023), within 3 years of the filing. The
// whole 13 000 ₽ is paid; counted from each payment nothing would be left.
func TestRefundOfLateFiledDeclarationArt78p7(t *testing.T) {
	filed := time.Date(2026, 12, 5, 11, 0, 0, 0, term.Moscow)
	entries := append(employerLedger(2023, rub(156_000)), contract.LedgerEntry{INN: testINN, EntryID: "2023#ndfl#decl-x#1",
		Kind: contract.LedgerReduction, Tax: "ndfl", Period: 2023, Amount: rub(13_000), Date: filed, CaseID: declCase})
	h := newHarness(t, eligible(), entries...)
	h.env.SetStartTime(time.Date(2027, 1, 14, 12, 0, 0, 0, term.Moscow))
	in := input(rub(13_000))
	in.Period, in.LinkedDeclaration, in.ConfirmedByReview = 2023, declCase, rub(13_000)
	st := h.run(in)
	if st.Status != RefundPaid || st.Paid != rub(13_000) || st.Capped {
		t.Fatalf("status %s, paid %d, capped %v (%s): %+v", st.Status, st.Paid, st.Capped, st.CapReason, st.History)
	}
}

// Tax Code art. 78 p.6, art. 88, art. 140: a decision partly confirms the refund (5 000
// ₽), the taxpayer appeals, and the appeal's decision confirms all of it (13 000 ₽). The
// case writes the 8 000 ₽ more to the ledger as a reduction, so the confirmed refund is
// 13 000 ₽: the taxpayer must receive 13 000 ₽, not the first decision's 5 000 ₽ with
// the other 8 000 ₽ left in the account for nobody to pay (the refund starts once per
// declaration, at the first decision).
func TestDeclarationAppealRaisingTheConfirmedRefundPaysItArt78Art140(t *testing.T) {
	h := newDeclHarness(t)
	mustPut(t, h.db, "taxpayers", "inn", eligible())
	for _, e := range employerLedger(2025, rub(156_000)) {
		mustPut(t, h.db, "ledger", "entry_id", e)
	}
	h.env.SetStartTime(time.Date(2026, 1, 15, 10, 0, 0, 0, term.Moscow))
	h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(5_000),
		Grounds: "часть чеков не читается", Inspector: "insp-1"}, false)
	h.update(10*24*time.Hour, DeclarationUpdateAppeal, Appeal{Reason: "чеки приложены заново"}, false)
	h.update(12*24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "чеки читаются", Inspector: "insp-3"}, false)
	st := h.run(h.input(goodDeclaration(), true))
	if st.ConfirmedRefund != rub(13_000) || st.Decisions != 2 {
		t.Fatalf("confirmed %d after %d decisions", st.ConfirmedRefund, st.Decisions)
	}
	var reduced int64
	var all []contract.LedgerEntry
	if err := store.QueryAll(context.Background(), h.db, "ledger", "inn", testINN, &all); err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.Kind == contract.LedgerReduction {
			reduced += e.Amount
		}
	}
	var principal int64
	for _, tr := range treasuryTransfers(t, h) {
		principal += tr.Principal
	}
	if reduced != rub(13_000) || principal != rub(13_000) {
		t.Fatalf("the ledger reduced by %d, the treasury paid %d: want the 13 000 ₽ confirmed, paid", reduced, principal)
	}
}

// Tax Code art. 78, 140: two appeals. The first decision partly confirms 5 000 ₽ (its
// refund is paid); the first appeal's decision confirms less (3 000 ₽): nothing already
// written or paid shrinks, no refund starts; the second appeal's decision confirms all
// 13 000 ₽: the ledger is reduced by 13 000 ₽ in all, a refund for the 8 000 ₽ more
// starts under its own id (refund-<key>-3, the decision's number), approved as confirmed,
// and the treasury pays 13 000 ₽ in all.
func TestDeclarationTwoAppealsLessThenMoreArt78Art140(t *testing.T) {
	h := newDeclHarness(t)
	mustPut(t, h.db, "taxpayers", "inn", eligible())
	for _, e := range employerLedger(2025, rub(156_000)) {
		mustPut(t, h.db, "ledger", "entry_id", e)
	}
	h.env.SetStartTime(time.Date(2026, 1, 15, 10, 0, 0, 0, term.Moscow))
	day := 24 * time.Hour
	h.update(day, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(5_000),
		Grounds: "часть чеков не читается", Inspector: "insp-1"}, false)
	h.update(10*day, DeclarationUpdateAppeal, Appeal{Reason: "чеки приложены заново"}, false)
	h.update(12*day, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(3_000),
		Grounds: "меньше", Inspector: "insp-3"}, false)
	h.update(20*day, DeclarationUpdateAppeal, Appeal{Reason: "всё ещё не так"}, false)
	h.update(22*day, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "всё читается", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), true))
	if st.ConfirmedRefund != rub(13_000) || st.Decisions != 3 || st.RefundCase != declRefundCase {
		t.Fatalf("confirmed %d after %d decisions, refund case %q", st.ConfirmedRefund, st.Decisions, st.RefundCase)
	}
	var all []contract.LedgerEntry
	if err := store.QueryAll(context.Background(), h.db, "ledger", "inn", testINN, &all); err != nil {
		t.Fatal(err)
	}
	reductions := map[string]int64{}
	for _, e := range all {
		if e.Kind == contract.LedgerReduction {
			reductions[e.EntryID] += e.Amount
		}
	}
	key := strings.TrimPrefix(declCase, "declaration-")
	if len(reductions) != 2 || reductions["2025#ndfl#decl-"+key+"#1"] != rub(5_000) || reductions["2025#ndfl#decl-"+key+"#3"] != rub(8_000) {
		t.Fatalf("reductions %v", reductions)
	}
	paid := map[string]int64{}
	for _, tr := range treasuryTransfers(t, h) {
		paid[tr.CaseID] += tr.Principal
	}
	if len(paid) != 2 || paid[declRefundCase] != rub(5_000) || paid[declRefundCase+"-3"] != rub(8_000) {
		t.Fatalf("treasury paid %v: want 5 000 ₽ and the 8 000 ₽ difference", paid)
	}
	for _, id := range []string{declRefundCase, declRefundCase + "-3"} {
		for _, e := range caseJournal(t, h, id) {
			if e.Action == "status_changed" && (e.To == RefundInReview || e.To == RefundRejected) {
				t.Fatalf("%s reviewed again: %s", id, journalString(caseJournal(t, h, id)))
			}
		}
	}
}

// Tax Code art. 78 p.6, art. 88: another declaration of the period already brought the
// 13 000 ₽ into the account (its reduction and the period's guard are there), so this
// declaration's decisions write entries of 0. Its refunds — the first decision's 5 000 ₽
// and the appeal's 8 000 ₽ difference — claim money no decision of this case put in the
// account: each is reviewed, neither is approved as confirmed by the desk review.
func TestDeclarationDifferenceRefundOverAnotherDeclarationsReductionIsReviewed(t *testing.T) {
	h := newDeclHarness(t)
	mustPut(t, h.db, "taxpayers", "inn", eligible())
	for _, e := range employerLedger(2025, rub(156_000)) {
		mustPut(t, h.db, "ledger", "entry_id", e)
	}
	const other = "declaration-0c6f6f9e-0000-4000-8000-0000000000ff"
	mustPut(t, h.db, "ledger", "entry_id", contract.LedgerEntry{INN: testINN, EntryID: "2025#ndfl#decl-other#1", Kind: contract.LedgerReduction,
		Tax: "ndfl", Period: 2025, Amount: rub(13_000), Date: time.Date(2026, 1, 10, 10, 0, 0, 0, term.Moscow), CaseID: other})
	mustPut(t, h.db, "reservations", "key", ledgerfn.Reductions{Key: ledgerfn.ReductionsKey(testINN, 2025, "ndfl"), Kind: "reductions",
		Confirmed: map[string]int64{other: rub(13_000)}, Written: rub(13_000), Version: 1})
	h.env.SetStartTime(time.Date(2026, 1, 15, 10, 0, 0, 0, term.Moscow))
	day := 24 * time.Hour
	h.update(day, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(5_000),
		Grounds: "часть чеков не читается", Inspector: "insp-1"}, false)
	h.update(10*day, DeclarationUpdateAppeal, Appeal{Reason: "чеки приложены заново"}, false)
	h.update(12*day, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "чеки читаются", Inspector: "insp-3"}, false)
	in := h.input(goodDeclaration(), true)
	in.Policy.Refund.AutoApproveMax = 0 // no automatic approval: only the desk review's confirmation skips the review
	st := h.run(in)
	if st.ConfirmedRefund != rub(13_000) || st.Decisions != 2 {
		t.Fatalf("confirmed %d after %d decisions", st.ConfirmedRefund, st.Decisions)
	}
	var all []contract.LedgerEntry
	if err := store.QueryAll(context.Background(), h.db, "ledger", "inn", testINN, &all); err != nil {
		t.Fatal(err)
	}
	var reduced int64
	for _, e := range all {
		if e.Kind == contract.LedgerReduction {
			reduced += e.Amount
		}
	}
	if reduced != rub(13_000) {
		t.Fatalf("the period's tax reduced by %d, want the 13 000 ₽ once", reduced)
	}
	for _, id := range []string{declRefundCase, declRefundCase + "-2"} {
		j := caseJournal(t, h, id)
		reviewed := false
		for _, e := range j {
			reviewed = reviewed || (e.Action == "status_changed" && e.To == RefundInReview)
			if e.Action == "status_changed" && e.To == RefundApproved && e.Actor == "system" {
				t.Fatalf("%s approved with no review over money this case did not bring: %s", id, journalString(j))
			}
		}
		if !reviewed {
			t.Fatalf("%s not reviewed: %s", id, journalString(j))
		}
	}
}
