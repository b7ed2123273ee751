package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/decisionpdf"
	declarationfn "github.com/taxflow/taxflow/functions/declaration"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/pdfdoc/pdfdoctest"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/internal/term"
)

const declCase = "declaration-0c6f6f9e-0000-4000-8000-000000000003"

type declHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	db      *storetest.DB
	s3      *storetest.S3
	updates int
}

func rub(r int64) int64 { return r * 100 }

func goodDeclaration() ndfl.Declaration {
	return ndfl.Declaration{INN: testINN, Period: 2025,
		Incomes:     []ndfl.Income{{Source: "ООО Ромашка", Kind: "salary", Amount: rub(1_200_000)}},
		Withheld:    rub(156_000),
		Deductions:  []ndfl.Deduction{{Kind: "social", Amount: rub(100_000), Documents: []string{"receipt-1"}}},
		DeclaredTax: rub(143_000), DeclaredRefund: rub(13_000)}
}

func newDeclHarness(t *testing.T) *declHarness {
	h := &declHarness{t: t}
	db, s3 := newStores()
	h.db, h.s3 = db, s3
	handlers := realHandlers(db, s3)
	handlers[contract.FnDeclarationCheck] = fnHandler(declarationfn.Handler{S3: s3, Bucket: "documents", Rules: ndfl.DefaultRules()}.Check)
	handlers[contract.FnDecisionPDF] = fnHandler(decisionpdf.Handler{S3: s3, Bucket: "documents"}.Generate)
	var s testsuite.WorkflowTestSuite
	h.env = newTestEnv(&s)
	h.env.RegisterWorkflow(Declaration)
	h.env.RegisterWorkflow(Refund)
	registerActivities(h.env, handlers)
	return h
}

func (h *declHarness) store(version int, d ndfl.Declaration) DeclarationSubmission {
	b, _ := json.Marshal(d)
	key := fmt.Sprintf("declarations/%s/v%d.json", declCase, version)
	h.s3.Put(key, b)
	return DeclarationSubmission{Key: key, Format: "json"}
}

func (h *declHarness) input(d ndfl.Declaration, claimsRefund bool) DeclarationWorkflowInput {
	return DeclarationWorkflowInput{CaseID: declCase, INN: testINN, RequestID: "req-1", Submission: h.store(1, d),
		Confirmation: "sms", ClaimsRefund: claimsRefund, Policy: DefaultDeclarationPolicy()}
}

func (h *declHarness) update(at time.Duration, name string, arg any, wantErr bool) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) {
			if !wantErr {
				h.t.Errorf("%s refused: %v", name, err)
			}
		}, OnComplete: func(_ any, err error) {
			if (err != nil) != wantErr && err != nil {
				h.t.Errorf("%s: %v", name, err)
			}
		}}, arg)
	}, at)
}

func (h *declHarness) run(in DeclarationWorkflowInput) DeclarationStatus {
	h.t.Helper()
	h.env.ExecuteWorkflow(Declaration, in)
	var st DeclarationStatus
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("workflow error: %v", err)
	}
	return st
}

func (h *declHarness) query() DeclarationStatus {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(DeclarationQueryStatus)
	if err != nil {
		h.t.Fatal(err)
	}
	var st DeclarationStatus
	if err := v.Get(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// expect checks the status at a time after the start.
func (h *declHarness) expect(at time.Duration, check func(DeclarationStatus)) {
	h.env.RegisterDelayedCallback(func() { check(h.query()) }, at)
}

// updateResult sends an update and hands its outcome (refused by the validator, or
// completed with a result or an error) to check; a test that uses it fails unless the
// update was answered.
func (h *declHarness) updateResult(at time.Duration, name string, arg any, check func(st DeclarationStatus, err error)) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	answered := false
	h.t.Cleanup(func() {
		if !answered {
			h.t.Errorf("update %s at %s never answered", name, at)
		}
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { answered = true; check(DeclarationStatus{}, err) },
			OnComplete: func(v any, err error) {
				answered = true
				st, _ := v.(DeclarationStatus)
				check(st, err)
			}}, arg)
	}, at)
}

// startAt starts the workflow's clock at a Moscow time.
func (h *declHarness) startAt(y int, m time.Month, d, hour, minute int) time.Time {
	start := time.Date(y, m, d, hour, minute, 0, 0, term.Moscow)
	h.env.SetStartTime(start)
	return start
}

// transitionTo finds the last transition to a status.
func transitionTo(st DeclarationStatus, to string) (Transition, bool) {
	for i := len(st.History) - 1; i >= 0; i-- {
		if st.History[i].To == to {
			return st.History[i], true
		}
	}
	return Transition{}, false
}

func declStatuses(st DeclarationStatus) string {
	var out []string
	for _, tr := range st.History {
		out = append(out, tr.To)
	}
	return strings.Join(out, ">")
}

func TestDeclarationAcceptedReviewedDecided(t *testing.T) {
	h := newDeclHarness(t)
	h.env.SetStartTime(time.Date(2026, 4, 20, 6, 0, 0, 0, time.UTC))
	h.update(24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "документы подтверждают вычет", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided" || st.Decision != "confirmed" || st.Computed.Refund != rub(13_000) {
		t.Fatalf("got %s %+v", declStatuses(st), st)
	}
	pdf := h.s3.Objects[st.DecisionKey]
	if h.s3.SSE[st.DecisionKey] != "AES256" {
		t.Fatal("decision not stored encrypted")
	}
	text := pdfdoctest.Text(t, pdf)
	for _, want := range []string{"Решение по итогам камеральной налоговой проверки", "за 2025 год", "№ " + declCase + "/1",
		"Дата решения 21.04.2026", "Налогоплательщик (ИНН) ********2259", "Декларация подтверждена (код решения: confirmed)",
		"Основания документы подтверждают вычет", "Сумма налога 143 000,00 ₽", "Удержано налоговыми агентами 156 000,00 ₽",
		"К возврату 13 000,00 ₽", "Инспектор: insp-1"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q not in the decision document:\n%s", want, text)
		}
	}
	if strings.Contains(text, testINN) {
		t.Error("the decision document shows the full INN")
	}
}

func TestDeclarationFailsChecksThenCorrected(t *testing.T) {
	h := newDeclHarness(t)
	bad := goodDeclaration()
	bad.DeclaredTax = rub(140_000)
	bad.Deductions[0].Documents = nil
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != DeclarationClarification || len(st.Problems) == 0 || st.Problems[0].Field != "deductions[0].documents" {
			t.Errorf("before the correction: %s %v", st.Status, st.Problems)
		}
	}, 48*time.Hour)
	h.update(48*time.Hour, DeclarationUpdateCorrect, h.store(2, goodDeclaration()), false)
	h.update(72*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(bad, false))
	if declStatuses(st) != "received>auto_check>clarification_required>auto_check>accepted>in_review>decided" || st.Versions != 2 || len(st.Problems) != 0 {
		t.Fatalf("got %s, versions %d, problems %v", declStatuses(st), st.Versions, st.Problems)
	}
}

func TestDeclarationInspectorRequestsDocuments(t *testing.T) {
	h := newDeclHarness(t)
	h.update(time.Hour, DeclarationUpdateRequest, DocumentRequest{What: "справка об оплате лечения", Inspector: "insp-2"}, false)
	h.update(2*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "x", Inspector: "insp-2"}, true) // waiting for documents
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(DeclarationSignalAnswer, nil) }, 5*24*time.Hour)
	h.update(6*24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "additional_tax", Grounds: "вычет не подтверждён", Inspector: "insp-2"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>clarification_required>in_review>decided" || st.Decision != "additional_tax" {
		t.Fatalf("got %s", declStatuses(st))
	}
}

func TestDeclarationAppealGoesToAnotherInspector(t *testing.T) {
	h := newDeclHarness(t)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "refused", Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.update(10*24*time.Hour, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, false)
	h.update(11*24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "x", Inspector: "insp-1"}, true)
	h.update(12*24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "документы найдены", Inspector: "insp-3"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided>appealed>in_review>decided" || st.Decisions != 2 ||
		st.DecidedBy != "insp-3" || st.DecisionKey != decisionpdf.Key(declCase, 2) {
		t.Fatalf("got %s, %d decisions by %s", declStatuses(st), st.Decisions, st.DecidedBy)
	}
}

func TestDeclarationAppealAfterWindowRefused(t *testing.T) {
	h := newDeclHarness(t)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "refused", Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.update(40*24*time.Hour, DeclarationUpdateAppeal, Appeal{Reason: "late"}, true)
	st := h.run(h.input(goodDeclaration(), false))
	if st.Status != DeclarationDecided || st.Decisions != 1 || st.AppealBy != nil {
		t.Fatalf("got %+v", st)
	}
}

func TestDeclarationDeadlineRemindsAndEscalates(t *testing.T) {
	h := newDeclHarness(t)
	h.update(100*24*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if !st.Reminded || !st.Escalated {
		t.Fatalf("reminded %v escalated %v", st.Reminded, st.Escalated)
	}
}

func TestDeclarationClaimingRefundStartsIt(t *testing.T) {
	h := newDeclHarness(t)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), true))
	if st.RefundCase != "refund-0c6f6f9e-0000-4000-8000-000000000003" {
		t.Fatalf("refund case %q", st.RefundCase)
	}
}

func TestDeclarationCancelled(t *testing.T) {
	h := newDeclHarness(t)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(Declaration, h.input(goodDeclaration(), false))
	if err := h.env.GetWorkflowError(); err == nil {
		t.Fatal("want the cancellation")
	}
}

// The stored declaration unreadable for good (S3 keeps failing) exhausts the check's retries.
func TestDeclarationCheckRetriesExhausted(t *testing.T) {
	h := newDeclHarness(t)
	in := h.input(goodDeclaration(), false)
	delete(h.s3.Objects, in.Submission.Key)
	h.env.ExecuteWorkflow(Declaration, in)
	if appErr := activityCause(t, h.env.GetWorkflowError()); appErr.NonRetryable() {
		t.Fatalf("got %v", appErr)
	}
}

// Tax Code art. 88 p.2, art. 6.1 p.5, 7, 8: the desk review lasts 3 months from the
// filing; a last day that is not a working day moves to the next working day, and the
// term ends at 24:00 Moscow time. 30 November 2025 + 3 months is 28 February 2026, a
// Saturday: the review ends on Monday 2 March 2026.
func TestDeclarationReviewDeadlineArt88p2MonthsByArt61(t *testing.T) {
	for _, c := range []struct {
		y           int
		m           time.Month
		d           int
		day         string
		provisional []int
	}{
		{2025, time.November, 30, "2026-03-02", nil},         // 28.02.2026 is a Saturday
		{2025, time.October, 31, "2026-02-02", nil},          // 31.01.2026 (Saturday) → Monday 2 February
		{2026, time.March, 12, "2026-06-15", nil},            // 12.06.2026 Russia Day, then the weekend
		{2026, time.November, 30, "2027-03-01", []int{2027}}, // 28.02.2027 Sunday; no decree for 2027 yet
	} {
		t.Run(c.day, func(t *testing.T) {
			h := newDeclHarness(t)
			h.startAt(c.y, c.m, c.d, 15, 0)
			d := goodDeclaration()
			d.Period = c.y - 1 // a past year (the 2024 figures are the same)
			h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
			st := h.run(h.input(d, false))
			last, _ := term.ParseDate(c.day)
			if st.DeadlineDay != c.day || !st.Deadline.Equal(last.AddDate(0, 0, 1)) || fmt.Sprint(st.DeadlineProvisional) != fmt.Sprint(c.provisional) {
				t.Fatalf("deadline %s (%s), provisional %v; want %s, 24:00 Moscow, provisional %v",
					st.DeadlineDay, st.Deadline.In(term.Moscow), st.DeadlineProvisional, c.day, c.provisional)
			}
		})
	}
}

// Tax Code art. 88 p.3: explanations within 5 working days; art. 93 p.3: documents within
// 10. Requested on Monday 2 March 2026: explanations are due by 10 March (8 March is a
// Sunday holiday moved to Monday 9 March), documents by 17 March. Unanswered, the review
// goes on without them.
func TestDeclarationUnansweredRequestArt88p3Art93p3ReviewGoesOn(t *testing.T) {
	for _, c := range []struct {
		kind, day string
	}{{RequestExplanations, "2026-03-10"}, {RequestDocuments, "2026-03-17"}} {
		t.Run(c.kind, func(t *testing.T) {
			h := newDeclHarness(t)
			start := h.startAt(2026, time.March, 2, 10, 0)
			last, _ := term.ParseDate(c.day)
			end := last.AddDate(0, 0, 1) // 24:00 Moscow of the last day
			h.update(time.Hour, DeclarationUpdateRequest, DocumentRequest{What: "пояснения по вычету", Kind: c.kind, Inspector: "insp-2"}, false)
			h.expect(end.Sub(start)-time.Minute, func(st DeclarationStatus) {
				if st.Status != DeclarationClarification || st.AnswerBy == nil || !st.AnswerBy.Equal(end) || st.RequestKind != c.kind {
					t.Errorf("a minute before the term ends: %s, answer by %v", st.Status, st.AnswerBy)
				}
			})
			h.expect(end.Sub(start)+time.Minute, func(st DeclarationStatus) {
				tr, _ := transitionTo(st, DeclarationInReview)
				if st.Status != DeclarationInReview || st.AnswerBy != nil || tr.Actor != "system" || !strings.Contains(tr.Reason, "no answer") ||
					!strings.Contains(tr.Reason, c.day) {
					t.Errorf("a minute after the term: %s, last transition %+v", st.Status, tr)
				}
			})
			h.update(end.Sub(start)+time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-2"}, false)
			st := h.run(h.input(goodDeclaration(), false))
			if declStatuses(st) != "received>auto_check>accepted>in_review>clarification_required>in_review>decided" {
				t.Fatalf("got %s", declStatuses(st))
			}
		})
	}
}

// Tax Code art. 139.1 p.2: an appeal within one month of the decision's delivery, moved
// off non-working days (art. 6.1 p.7). Decided on 9 April 2026, delivered on 10 April: 10
// May is a Sunday and 11 May the moved Victory Day, so the appeal may come until 24:00 on
// 12 May; 30 days (720 h) would have ended on 9 May.
func TestDeclarationAppealWindowArt1391OneMonthMovedOffHolidays(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2026, time.April, 9, 10, 0)
	end := time.Date(2026, time.May, 13, 0, 0, 0, 0, term.Moscow)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.expect(2*time.Hour, func(st DeclarationStatus) {
		if st.AppealBy == nil || !st.AppealBy.Equal(end) {
			t.Errorf("appeal by %v, want %s", st.AppealBy, end)
		}
	})
	at := time.Date(2026, time.May, 12, 20, 0, 0, 0, term.Moscow).Sub(start)
	h.updateResult(at, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, func(st DeclarationStatus, err error) {
		if err != nil || st.Status != DeclarationInReview {
			t.Errorf("appeal on 12 May: %v %s", err, st.Status)
		}
	})
	h.update(at+time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "документы найдены", Inspector: "insp-3"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided>appealed>in_review>decided" {
		t.Fatalf("got %s", declStatuses(st))
	}
}

// Without an appeal the case closes when the month ends: at 24:00 Moscow time on 12 May
// 2026, not 720 hours after the decision.
func TestDeclarationAppealWindowArt1391ClosesAtItsEnd(t *testing.T) {
	h := newDeclHarness(t)
	h.startAt(2026, time.April, 9, 10, 0)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	end := time.Date(2026, time.May, 13, 0, 0, 0, 0, term.Moscow)
	if st.Status != DeclarationDecided || st.Decisions != 1 || st.AppealBy != nil || !h.env.Now().Equal(end) {
		t.Fatalf("got %s, closed at %s, want %s", declStatuses(st), h.env.Now().In(term.Moscow), end)
	}
}

// Tax Code art. 88 p.9.1, art. 81: a corrected declaration filed during the desk review
// ends the running review and starts a new one, whose 3-month term runs from the
// correction; the inspector's open request falls with the old review.
func TestDeclarationCorrectionDuringReviewArt88p91StartsNewReview(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2026, time.March, 2, 10, 0)
	h.update(time.Hour, DeclarationUpdateRequest, DocumentRequest{What: "чеки", Inspector: "insp-1"}, false)
	corrected := goodDeclaration()
	corrected.Incomes[0].Source = "ООО Ромашка (уточнено)"
	// Filed on 12 March 2026: the new review ends on 15 June (12 June is Russia Day, then the weekend).
	at := time.Date(2026, time.March, 12, 9, 0, 0, 0, term.Moscow).Sub(start)
	h.updateResult(at, DeclarationUpdateCorrect, h.store(2, corrected), func(st DeclarationStatus, err error) {
		if err != nil || st.Versions != 2 || st.Status != DeclarationAutoCheck || st.DeadlineDay != "2026-06-15" || st.Requested != "" {
			t.Errorf("correction answered %v: %+v", err, st)
		}
	})
	h.expect(at+time.Hour, func(st DeclarationStatus) {
		if st.Status != DeclarationInReview || st.Versions != 2 {
			t.Errorf("after the correction: %s v%d", st.Status, st.Versions)
		}
	})
	h.update(at+2*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
	// After the decision a correction is refused: that is a new declaration.
	h.updateResult(at+3*time.Hour, DeclarationUpdateCorrect, h.store(3, corrected), func(_ DeclarationStatus, err error) {
		if err == nil || !strings.Contains(err.Error(), "decision") {
			t.Errorf("a correction after the decision: %v", err)
		}
	})
	st := h.run(h.input(goodDeclaration(), false))
	want := "received>auto_check>accepted>in_review>clarification_required>auto_check>accepted>in_review>decided"
	if declStatuses(st) != want || st.Versions != 2 || st.DeadlineDay != "2026-06-15" {
		t.Fatalf("got %s v%d deadline %s", declStatuses(st), st.Versions, st.DeadlineDay)
	}
	tr, _ := transitionTo(st, DeclarationAutoCheck)
	if tr.Actor != "taxpayer" || !strings.Contains(tr.Reason, "art. 88 p.9.1") {
		t.Fatalf("the new review's journal entry: %+v", tr)
	}
}

// The new review's term runs from when the API accepted the correction (the time it stamps
// in the message), not from the workflow task that takes it: filed on 11 March (stamped),
// taken on the 12th, the review ends on 11 June.
func TestDeclarationCorrectionTermRunsFromItsMessage(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2026, time.March, 2, 10, 0)
	corrected := goodDeclaration()
	corrected.Incomes[0].Source = "ООО Ромашка (уточнено)"
	sub := h.store(2, corrected)
	sub.At = time.Date(2026, time.March, 11, 9, 0, 0, 0, term.Moscow)
	at := time.Date(2026, time.March, 12, 9, 0, 0, 0, term.Moscow).Sub(start)
	h.updateResult(at, DeclarationUpdateCorrect, sub, func(st DeclarationStatus, err error) {
		if err != nil || st.Versions != 2 || st.DeadlineDay != "2026-06-11" {
			t.Errorf("correction answered %v: v%d, deadline %s; want 2026-06-11", err, st.Versions, st.DeadlineDay)
		}
	})
	h.update(at+2*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
	if st := h.run(h.input(goodDeclaration(), false)); st.DeadlineDay != "2026-06-11" {
		t.Fatalf("deadline %s, want 2026-06-11", st.DeadlineDay)
	}
}

// A correction after the automatic checks failed also starts the term anew (art. 88 p.9.1).
func TestDeclarationCorrectionAfterFailedCheckMovesDeadline(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2025, time.November, 30, 12, 0)
	good := goodDeclaration()
	good.Period = 2024
	bad := good
	bad.DeclaredTax = rub(140_000)
	at := time.Date(2025, time.December, 31, 12, 0, 0, 0, term.Moscow).Sub(start) // + 3 months = 31 March 2026, a Tuesday
	h.update(at, DeclarationUpdateCorrect, h.store(2, good), false)
	h.update(at+time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(bad, false))
	if st.DeadlineDay != "2026-03-31" || st.Versions != 2 {
		t.Fatalf("deadline %s, versions %d", st.DeadlineDay, st.Versions)
	}
}

// refundStarts replaces the Refund child and records what each start asked for.
func (h *declHarness) refundStarts() *[]RefundWorkflowInput {
	var started []RefundWorkflowInput
	h.env.OnWorkflow(Refund, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in RefundWorkflowInput) (RefundStatus, error) {
		started = append(started, in)
		return RefundStatus{CaseID: in.CaseID}, nil
	})
	return &started
}

// Tax Code art. 78, 88: a refund claimed in a declaration is paid only for the
// overpayment the desk review confirms. Nothing starts at the automatic check.
func TestDeclarationRefundWaitsForDecisionArt78Art88(t *testing.T) {
	for _, c := range []struct {
		decision DeclarationDecision
		want     int64 // 0: no refund started
	}{
		{DeclarationDecision{Decision: DecisionConfirmed}, rub(13_000)},
		{DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: rub(5_000)}, rub(5_000)},
		{DeclarationDecision{Decision: DecisionRefused}, 0},
		{DeclarationDecision{Decision: DecisionAdditionalTax}, 0},
	} {
		t.Run(c.decision.Decision, func(t *testing.T) {
			h := newDeclHarness(t)
			started := h.refundStarts()
			h.expect(10*time.Hour, func(st DeclarationStatus) {
				if st.Status != DeclarationInReview || st.RefundCase != "" || len(*started) != 0 {
					t.Errorf("before the decision: %s, refund %q, %d started", st.Status, st.RefundCase, len(*started))
				}
			})
			d := c.decision
			d.Grounds, d.Inspector = "проверено", "insp-1"
			h.update(24*time.Hour, DeclarationUpdateDecide, d, false)
			st := h.run(h.input(goodDeclaration(), true))
			if st.ConfirmedRefund != c.want {
				t.Fatalf("confirmed %d, want %d", st.ConfirmedRefund, c.want)
			}
			if c.want == 0 {
				if len(*started) != 0 || st.RefundCase != "" {
					t.Fatalf("a refund started after %s: %+v", d.Decision, *started)
				}
				return
			}
			if len(*started) != 1 || (*started)[0].Amount != c.want || st.RefundCase != "refund-0c6f6f9e-0000-4000-8000-000000000003" {
				t.Fatalf("refunds started %+v, case %q", *started, st.RefundCase)
			}
		})
	}
}

func TestDeclarationPartlyConfirmedNeedsAnAmount(t *testing.T) {
	h := newDeclHarness(t)
	for i, amount := range []int64{0, rub(13_000), rub(20_000)} {
		h.updateResult(time.Duration(i+1)*time.Hour, DeclarationUpdateDecide,
			DeclarationDecision{Decision: DecisionPartlyConfirmed, RefundKopecks: amount, Grounds: "x", Inspector: "insp-1"},
			func(_ DeclarationStatus, err error) {
				if err == nil || !strings.Contains(err.Error(), "refund_kopecks") {
					t.Errorf("partly confirmed %d: %v", amount, err)
				}
			})
	}
	h.update(5*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "x", Inspector: "insp-1"}, false)
	if st := h.run(h.input(goodDeclaration(), false)); st.Decisions != 1 {
		t.Fatalf("got %s", declStatuses(st))
	}
}

// Tax years are Moscow years (domain.md, rules added after review): a 2025 declaration
// filed at 01:30 Moscow time on 1 January 2026 — still 31 December 2025 in UTC — is for a
// past year and passes the checks.
func TestDeclarationFiledOnNewYearNightMoscowIsPastYear(t *testing.T) {
	h := newDeclHarness(t)
	h.env.SetStartTime(time.Date(2025, time.December, 31, 22, 30, 0, 0, time.UTC))
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided" || len(st.Problems) != 0 || st.Period != 2025 {
		t.Fatalf("got %s %v", declStatuses(st), st.Problems)
	}
}

// sendDecl sends an update at a time and checks its result and error (checkOutcome); the
// test fails if the update is never answered.
func (h *declHarness) sendDecl(at time.Duration, name string, arg any, want msgOutcome) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	answered := false
	h.t.Cleanup(func() {
		if !answered {
			h.t.Errorf("update %s at %s never answered", name, at)
		}
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { answered = true; checkOutcome(h.t, name, "", err, want) },
			OnComplete: func(v any, err error) {
				answered = true
				var status string
				switch r := v.(type) {
				case DeclarationStatus:
					status = r.Status
				case AttachmentResult:
					status = r.Status
					// an attachment answers the request exactly when one is open
					if err == nil && r.AnswersRequest != (r.Status == DeclarationClarification) {
						h.t.Errorf("attachment in %s: answers_request %v", r.Status, r.AnswersRequest)
					}
				}
				checkOutcome(h.t, name, status, err, want)
			}}, arg)
	}, at)
}

// Every message in every waiting state of a declaration: right, wrong and late, with the
// update's result and error asserted.
func TestDeclarationMessagesInEveryWaitingState(t *testing.T) {
	decide := DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}
	request := DocumentRequest{What: "чеки", Kind: RequestDocuments, Inspector: "insp-1"}
	attach := DeclarationAttachment{Key: "declarations/" + declCase + "/attachments/a1.pdf"}
	const at = 3 * time.Hour
	// Each state is reached before at; then the case is led to its end.
	states := map[string]func(h *declHarness){
		DeclarationClarification: func(h *declHarness) {
			h.update(time.Hour, DeclarationUpdateRequest, request, false)
		},
		DeclarationInReview: func(h *declHarness) {},
		DeclarationDecided: func(h *declHarness) {
			h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
		},
		// the appeal window closed; the case's last entry takes an hour to write
		"ended": func(h *declHarness) {
			h.update(time.Hour, DeclarationUpdateDecide, decide, false)
			h.env.OnActivity("RecordTransition", mock.Anything, mock.MatchedBy(func(in contract.RecordInput) bool {
				return len(in.Entries) > 0 && in.Entries[0].Action == "appeal_window_closed"
			})).After(time.Hour).Return(contract.RecordResult{}, nil)
			h.env.OnActivity("RecordTransition", mock.Anything, mock.Anything).Return(recordFor(h))
		},
	}
	for _, c := range []struct {
		state, name string
		arg         any
		want        msgOutcome
	}{
		{DeclarationClarification, DeclarationUpdateAttach, attach, msgOutcome{status: DeclarationClarification}},
		{DeclarationClarification, DeclarationUpdateAttach, DeclarationAttachment{Key: "elsewhere.pdf"}, msgOutcome{wrong: "key"}},
		{DeclarationClarification, DeclarationUpdateDecide, decide, msgOutcome{late: DeclarationClarification}},
		{DeclarationClarification, DeclarationUpdateRequest, request, msgOutcome{late: DeclarationClarification}},
		{DeclarationClarification, DeclarationUpdateAppeal, Appeal{Reason: "x"}, msgOutcome{late: DeclarationClarification}},
		{DeclarationInReview, DeclarationUpdateDecide, decide, msgOutcome{status: DeclarationDecided}},
		{DeclarationInReview, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Inspector: "insp-1"}, msgOutcome{wrong: "grounds"}},
		{DeclarationInReview, DeclarationUpdateRequest, request, msgOutcome{status: DeclarationClarification}},
		{DeclarationInReview, DeclarationUpdateAttach, attach, msgOutcome{status: DeclarationInReview}},
		{DeclarationInReview, DeclarationUpdateAppeal, Appeal{Reason: "x"}, msgOutcome{late: DeclarationInReview}},
		{DeclarationDecided, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, msgOutcome{status: DeclarationInReview}},
		{DeclarationDecided, DeclarationUpdateAppeal, Appeal{}, msgOutcome{wrong: "reason"}},
		// free text is bounded in the case itself, whatever door sent it
		{DeclarationDecided, DeclarationUpdateAppeal, Appeal{Reason: strings.Repeat("я", MaxReasonChars+1)}, msgOutcome{wrong: "reason"}},
		{DeclarationInReview, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Inspector: "insp-1",
			Grounds: strings.Repeat("g", MaxReasonChars+1)}, msgOutcome{wrong: "grounds"}},
		{DeclarationInReview, DeclarationUpdateRequest, DocumentRequest{What: strings.Repeat("w", MaxReasonChars+1), Inspector: "insp-1"}, msgOutcome{wrong: "what"}},
		{DeclarationDecided, DeclarationUpdateAttach, attach, msgOutcome{late: DeclarationDecided}},
		{DeclarationDecided, DeclarationUpdateDecide, decide, msgOutcome{late: DeclarationDecided}},
		{DeclarationDecided, DeclarationUpdateCorrect, DeclarationSubmission{Key: "declarations/" + declCase + "/v2.json", Format: "json"}, msgOutcome{late: DeclarationDecided}},
		{"ended", DeclarationUpdateAppeal, Appeal{Reason: "x"}, msgOutcome{late: DeclarationDecided}},
		{"ended", DeclarationUpdateAttach, attach, msgOutcome{late: DeclarationDecided}},
		{"ended", DeclarationUpdateDecide, decide, msgOutcome{late: DeclarationDecided}},
	} {
		t.Run(c.state+"/"+c.name+"/"+fmt.Sprint(c.want), func(t *testing.T) {
			h := newDeclHarness(t)
			states[c.state](h)
			when := at
			if c.state == "ended" { // decided on 9 April 2026: the appeal window closes at 24:00 on 12 May
				start := h.startAt(2026, time.April, 9, 10, 0)
				when = time.Date(2026, time.May, 13, 0, 30, 0, 0, term.Moscow).Sub(start)
			}
			if c.state != "ended" {
				h.expect(when-time.Minute, func(st DeclarationStatus) {
					if st.Status != c.state {
						t.Errorf("the case is %s, not %s", st.Status, c.state)
					}
				})
			}
			h.sendDecl(when, c.name, c.arg, c.want)
			// lead the case to its end, whatever the message did
			h.update(when+time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-9"}, true)
			h.env.ExecuteWorkflow(Declaration, h.input(goodDeclaration(), false))
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("the case did not end")
			}
		})
	}
}

// recordFor writes a transition through the real function (for a test that delays one).
func recordFor(h *declHarness) func(context.Context, contract.RecordInput) (contract.RecordResult, error) {
	a := &activities.Activities{Invoker: invoker.NewInProcess(realHandlers(h.db, h.s3))}
	return a.RecordTransition
}

// Errors the automatic check found and neither corrected nor explained within 5 working
// days (art. 88 p.3) send the declaration to an inspector as filed; no decision by the act
// term (art. 100 p.1) then ends the review by itself, confirming no refund.
func TestDeclarationUncorrectedErrorsGoToInspectorThenLapse(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2026, time.March, 2, 10, 0)
	bad := goodDeclaration()
	bad.DeclaredTax = rub(140_000)
	end := time.Date(2026, time.March, 11, 0, 0, 0, 0, term.Moscow) // 5 working days: 24:00 on 10 March (8 March moved to 9 March)
	h.expect(end.Sub(start)-time.Minute, func(st DeclarationStatus) {
		if st.Status != DeclarationClarification || st.CorrectBy == nil || !st.CorrectBy.Equal(end) {
			t.Errorf("before the term: %s, correct by %v", st.Status, st.CorrectBy)
		}
	})
	h.expect(end.Sub(start)+time.Minute, func(st DeclarationStatus) {
		tr, _ := transitionTo(st, DeclarationInReview)
		if st.Status != DeclarationInReview || st.CorrectBy != nil || st.DecideBy == nil || !strings.Contains(tr.Reason, "art. 88 p.3") {
			t.Errorf("after the term: %s, %+v", st.Status, tr)
		}
	})
	st := h.run(h.input(bad, false))
	if declStatuses(st) != "received>auto_check>clarification_required>in_review>decided" || st.Decision != DecisionRefused ||
		st.DecidedBy != "system" || st.ConfirmedRefund != 0 || !strings.Contains(st.Grounds, "art. 100 p.1") {
		t.Fatalf("got %s, %s by %s: %s", declStatuses(st), st.Decision, st.DecidedBy, st.Grounds)
	}
}

// A desk review with no decision by the act term ends by itself: the declaration that
// passed the checks stands as filed (art. 88 p.2, art. 100 p.1), with its decision document.
func TestDeclarationReviewWithoutDecisionLapsesAtTheActTerm(t *testing.T) {
	h := newDeclHarness(t)
	h.startAt(2026, time.March, 2, 10, 0)
	var decideBy time.Time
	h.expect(time.Hour, func(st DeclarationStatus) {
		if st.Status != DeclarationInReview || st.DecideBy == nil || !st.DecideBy.After(st.Deadline) {
			t.Errorf("in review: %s, decide by %v, deadline %s", st.Status, st.DecideBy, st.Deadline)
			return
		}
		decideBy = *st.DecideBy
	})
	h.expect(120*24*time.Hour, func(st DeclarationStatus) {
		tr, _ := transitionTo(st, DeclarationDecided)
		if st.Status != DeclarationDecided || st.DecidedBy != "system" || st.Decision != DecisionConfirmed || !st.Escalated ||
			st.DecisionKey == "" || !tr.At.Equal(decideBy) {
			t.Errorf("after the act term: %s %s by %s at %s, want at %s", st.Status, st.Decision, st.DecidedBy, tr.At, decideBy)
		}
	})
	st := h.run(h.input(goodDeclaration(), false))
	if st.Decisions != 1 || st.DecidedBy != "system" {
		t.Fatalf("got %s", declStatuses(st))
	}
}

// An appeal not decided within a month (art. 140 p.6): the decision stands, the case ends.
func TestDeclarationAppealUndecidedLapses(t *testing.T) {
	h := newDeclHarness(t)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.sendDecl(2*time.Hour, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, msgOutcome{status: DeclarationInReview})
	st := h.run(h.input(goodDeclaration(), false))
	last := st.History[len(st.History)-1]
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided>appealed>in_review>decided" || st.Decisions != 1 ||
		st.Decision != DecisionRefused || last.Actor != "system" || !strings.Contains(last.Reason, "art. 140 p.6") {
		t.Fatalf("got %s, %d decisions, last %+v", declStatuses(st), st.Decisions, last)
	}
}

// A decision accepted before the case fails is answered, not left waiting for a status
// the failed case never reaches.
func TestDeclarationDecisionAnsweredWhenTheCaseFails(t *testing.T) {
	h := newDeclHarness(t)
	h.env.OnActivity("GenerateDecision", mock.Anything, mock.Anything).
		Return(contract.DecisionPDFResult{}, temporal.NewNonRetryableApplicationError("storage refused", "InternalError", nil))
	h.sendDecl(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"},
		msgOutcome{late: DeclarationInReview})
	h.env.ExecuteWorkflow(Declaration, h.input(goodDeclaration(), false))
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() == nil {
		t.Fatalf("want the case failed, got %v", h.env.GetWorkflowError())
	}
}

// An answer signal (the API before the attach update) with no request open is taken on
// the main coroutine and counted as late; one during a request answers it.
func TestDeclarationAnswerSignalsTakenOnTheMainCoroutine(t *testing.T) {
	h := newDeclHarness(t)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(DeclarationSignalAnswer, nil) }, 30*time.Minute)
	h.update(time.Hour, DeclarationUpdateRequest, DocumentRequest{What: "чеки", Inspector: "insp-1"}, false)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(DeclarationSignalAnswer, nil) }, 2*time.Hour)
	h.update(3*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	tr, _ := transitionTo(st, DeclarationInReview)
	if st.LateSignals != 1 || st.Decisions != 1 || tr.Actor != "taxpayer" {
		t.Fatalf("late %d, decisions %d, answer %+v", st.LateSignals, st.Decisions, tr)
	}
}

// The confirmation's reference is recorded with the case and shown in its status, through
// a correction too (the correction does not confirm anew: the filing's confirmation stands).
func TestDeclarationKeepsItsConfirmationReference(t *testing.T) {
	h := newDeclHarness(t)
	h.env.RegisterDelayedCallback(func() {
		if st := h.query(); st.Confirmation != "sms" || st.ConfirmationReference != "sms-check-42" {
			t.Errorf("while running: %q %q", st.Confirmation, st.ConfirmationReference)
		}
	}, time.Hour)
	h.update(48*time.Hour, DeclarationUpdateCorrect, h.store(2, goodDeclaration()), false)
	h.update(72*time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: "confirmed", Grounds: "ok", Inspector: "insp-1"}, false)
	in := h.input(goodDeclaration(), false)
	in.ConfirmationReference = "sms-check-42"
	st := h.run(in)
	if st.Versions != 2 || st.Confirmation != "sms" || st.ConfirmationReference != "sms-check-42" {
		t.Fatalf("versions %d, confirmation %q %q", st.Versions, st.Confirmation, st.ConfirmationReference)
	}
}

// A decision accepted in the same instant the case is cancelled is answered as late with
// the case's status (its handler waits on a disconnected context), not with a
// cancellation error.
func TestDeclarationDecisionAnsweredWhenTheCaseIsCancelled(t *testing.T) {
	h := newDeclHarness(t)
	h.sendDecl(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "ok", Inspector: "insp-1"},
		msgOutcome{late: DeclarationInReview})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(Declaration, h.input(goodDeclaration(), false))
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() == nil {
		t.Fatalf("want the case cancelled, got %v", h.env.GetWorkflowError())
	}
}

// Tax Code art. 100 p.1 with art. 6.1 p.2, 6: the act is due within 10 working days
// after the desk review's last day, so the term counts from that day, not from the day
// after it. Filed 2 March 2026: the review ends on 2 June (art. 88 p.2); the 10 working
// days are 3–5, 8–11, 15–17 June (12 June is a holiday): the review with no decision ends
// at 24:00 on 17 June, not on 18 June.
func TestDeclarationActTermArt100p1CountsFromTheReviewsLastDay(t *testing.T) {
	h := newDeclHarness(t)
	h.startAt(2026, time.March, 2, 10, 0)
	want := time.Date(2026, time.June, 18, 0, 0, 0, 0, term.Moscow)
	h.expect(time.Hour, func(st DeclarationStatus) {
		if st.DeadlineDay != "2026-06-02" || st.DecideBy == nil || !st.DecideBy.Equal(want) {
			t.Errorf("review until %s, decide by %v; want 2026-06-02 and %s", st.DeadlineDay, st.DecideBy, want)
		}
	})
	st := h.run(h.input(goodDeclaration(), false))
	if tr, _ := transitionTo(st, DeclarationDecided); !tr.At.Equal(want) {
		t.Fatalf("lapsed at %s, want %s", tr.At.In(term.Moscow), want)
	}
}

// Tax Code art. 139.1 p.2, art. 101 p.9: the appeal month runs from the decision's
// delivery. The decision document is placed in the taxpayer's cabinet when it is taken,
// and a document placed there is delivered the day after (art. 31 p.4, art. 11.2 p.2).
// Decided on Tuesday 10 March 2026: delivered on 11 March, the month ends on 11 April, a
// Saturday, moved to Monday 13 April (art. 6.1 p.7): the appeal may come until 24:00 on 13
// April. From the decision's instant it would have ended on Friday 10 April.
func TestDeclarationAppealWindowArt1391RunsFromDelivery(t *testing.T) {
	h := newDeclHarness(t)
	start := h.startAt(2026, time.March, 10, 10, 0)
	end := time.Date(2026, time.April, 14, 0, 0, 0, 0, term.Moscow)
	h.update(time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionRefused, Grounds: "нет документов", Inspector: "insp-1"}, false)
	h.expect(2*time.Hour, func(st DeclarationStatus) {
		if st.AppealBy == nil || !st.AppealBy.Equal(end) {
			t.Errorf("appeal by %v, want %s", st.AppealBy, end)
		}
	})
	at := time.Date(2026, time.April, 13, 15, 0, 0, 0, term.Moscow).Sub(start)
	h.updateResult(at, DeclarationUpdateAppeal, Appeal{Reason: "документы были приложены"}, func(st DeclarationStatus, err error) {
		if err != nil || st.Status != DeclarationInReview {
			t.Errorf("appeal on 13 April: %v %s", err, st.Status)
		}
	})
	h.update(at+time.Hour, DeclarationUpdateDecide, DeclarationDecision{Decision: DecisionConfirmed, Grounds: "документы найдены", Inspector: "insp-3"}, false)
	st := h.run(h.input(goodDeclaration(), false))
	if declStatuses(st) != "received>auto_check>accepted>in_review>decided>appealed>in_review>decided" {
		t.Fatalf("got %s", declStatuses(st))
	}
}
