package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/taxflow/taxflow/functions/decisionpdf"
	declarationfn "github.com/taxflow/taxflow/functions/declaration"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/pdfdoc/pdfdoctest"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const declCase = "declaration-0c6f6f9e-0000-4000-8000-000000000003"

type declHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
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
	h.s3 = s3
	handlers := realHandlers(db, s3)
	handlers[contract.FnDeclarationCheck] = fnHandler(declarationfn.Handler{S3: s3, Bucket: "documents", Rules: ndfl.DefaultRules()}.Check)
	handlers[contract.FnDecisionPDF] = fnHandler(decisionpdf.Handler{S3: s3, Bucket: "documents"}.Generate)
	var s testsuite.WorkflowTestSuite
	h.env = s.NewTestWorkflowEnvironment()
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
		v, _ := h.env.QueryWorkflow(DeclarationQueryStatus)
		var st DeclarationStatus
		_ = v.Get(&st)
		if st.Status != DeclarationClarification || len(st.Problems) == 0 || st.Problems[0].Field != "deductions[0].documents" {
			t.Errorf("before the correction: %s %v", st.Status, st.Problems)
		}
		h.env.SignalWorkflow(DeclarationSignalCorrection, h.store(2, goodDeclaration()))
	}, 48*time.Hour)
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
