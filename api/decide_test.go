package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/workflows"
)

// The console and the API build their Updates through caseAction: each decision names the
// Update of its process, carries the principal as the decider, and needs its role's scope.
// (An account stored without a person is its login's person: the decider is person:anna.)
func TestCaseActionNamesTheUpdateOfEachDecision(t *testing.T) {
	p := StaffAccount{Login: "anna", Role: RoleReviewer}.Principal()
	for _, c := range []struct {
		a     caseAction
		name  string
		scope string
		check func(any) bool
	}{
		{caseAction{Process: procRefund, Action: ActApprove}, workflows.RefundUpdateDecide, ScopeRefundsDecide,
			func(a any) bool { d := a.(workflows.RefundDecision); return d.Approve && d.Reviewer == "person:anna" }},
		{caseAction{Process: procRefund, Action: ActReject, Reason: "no"}, workflows.RefundUpdateDecide, ScopeRefundsDecide,
			func(a any) bool { d := a.(workflows.RefundDecision); return !d.Approve && d.Reason == "no" }},
		{caseAction{Process: procRefund, Action: ActRetry}, workflows.RefundUpdateRetryPayout, ScopeOperate,
			func(a any) bool { return a.(workflows.RefundRetry).Operator == "person:anna" }},
		{caseAction{Process: procIdent, Action: ActApprove}, workflows.IdentityUpdateReview, ScopeIdentityReview,
			func(a any) bool { return a.(workflows.IdentityReview).Operator == "person:anna" }},
		{caseAction{Process: procAccount, Action: ActReject, Reason: "r"}, workflows.AccountUpdateDecision, ScopeAccountSpecialist,
			func(a any) bool {
				d := a.(workflows.SpecialistDecision)
				return !d.Approve && d.Specialist == "person:anna"
			}},
		{caseAction{Process: procDecl, Action: ActRequest, What: "w", Kind: "explanations"}, workflows.DeclarationUpdateRequest, ScopeDeclarationsReview,
			func(a any) bool { d := a.(workflows.DocumentRequest); return d.What == "w" && d.Kind == "explanations" }},
		{caseAction{Process: procDecl, Action: ActDecide, Decision: "partly_confirmed", RefundKopecks: 5, Reason: "g"}, workflows.DeclarationUpdateDecide, ScopeDeclarationsReview,
			func(a any) bool {
				d := a.(workflows.DeclarationDecision)
				return d.Grounds == "g" && d.RefundKopecks == 5
			}},
	} {
		name, arg, out, scope, err := c.a.update(p)
		if err != nil || name != c.name || scope != c.scope || out == nil || !c.check(arg) {
			t.Errorf("%+v: %s %+v %s %v", c.a, name, arg, scope, err)
		}
	}
	if _, _, _, _, err := (caseAction{Process: procDecl, Action: ActApprove}).update(p); err == nil {
		t.Error("a declaration was approved like a refund")
	}
}

func TestUpdateFormErrorPutsTheValidatorsErrorNextToItsField(t *testing.T) {
	s, _ := newTestServer()
	ctx := context.Background()
	fe := s.updateFormError(ctx, "refund-x", temporal.NewApplicationError("reason: a rejection must give the reason", fnerr.TypeInvalidInput))
	if fe.Field != "reason" || fe.Message != "a rejection must give the reason" || fe.Status != http.StatusBadRequest {
		t.Errorf("invalid input: %+v", fe)
	}
	fe = s.updateFormError(ctx, "refund-x", temporal.NewApplicationError("no decision can be taken: the case is approved", fnerr.TypeConflict,
		workflows.LateMessage{Status: workflows.RefundApproved}))
	if fe.Field != "" || fe.Current != workflows.RefundApproved || fe.Status != http.StatusConflict {
		t.Errorf("late: %+v", fe)
	}
	if fe = s.updateFormError(ctx, "refund-x", errors.New("boom")); fe.Status != http.StatusServiceUnavailable || fe.Message == "boom" {
		t.Errorf("other: %+v", fe)
	}
}
