package api

import (
	"fmt"

	"github.com/taxflow/taxflow/workflows"
)

// Decision actions of the human steps, as the staff console names them.
const (
	ActApprove  = "approve"  // refund, identity review, account unblock
	ActReject   = "reject"   // refund, identity review, account unblock (refuse)
	ActRetry    = "retry"    // refund: retry a failed payout (operator)
	ActRequest  = "request"  // declaration: request documents or explanations
	ActDecide   = "decide"   // declaration: the decision with grounds
	procRefund  = "refund"   // process names, as in the search attribute TaxflowProcess
	procIdent   = "identity" //
	procDecl    = "declaration"
	procAccount = "account"
)

// caseAction is one decision on a human step. The API's decision routes and the staff
// console both turn it into the case's Update through update, so the two can never send
// different messages for the same decision.
type caseAction struct {
	Process       string
	Action        string
	Reason        string // approve/reject/retry: reason; declaration decide: grounds
	What          string // declaration request: what is asked for
	Kind          string // declaration request: explanations or documents
	Decision      string // declaration decide: confirmed, partly_confirmed, additional_tax, refused
	RefundKopecks int64  // declaration decide: partly_confirmed refund
}

// update names the Update, its argument, the value its result decodes into and the scope
// the principal needs; ok is false for an action the process does not have.
func (a caseAction) update(p Principal) (name string, arg, out any, scope string, err error) {
	approve := a.Action == ActApprove
	// Who decides is the person (StaffIdentity), whichever channel they use: the
	// declaration's appeal goes to another inspector than the one who decided it.
	who := StaffIdentity(p)
	switch {
	case a.Process == procRefund && (a.Action == ActApprove || a.Action == ActReject):
		return workflows.RefundUpdateDecide, workflows.RefundDecision{Approve: approve, Reason: a.Reason, Reviewer: who},
			&workflows.RefundStatus{}, ScopeRefundsDecide, nil
	case a.Process == procRefund && a.Action == ActRetry:
		return workflows.RefundUpdateRetryPayout, workflows.RefundRetry{Operator: who, Reason: a.Reason},
			&workflows.RefundStatus{}, ScopeOperate, nil
	case a.Process == procIdent && (a.Action == ActApprove || a.Action == ActReject):
		return workflows.IdentityUpdateReview, workflows.IdentityReview{Approve: approve, Reason: a.Reason, Operator: who},
			&workflows.IdentityStatus{}, ScopeIdentityReview, nil
	case a.Process == procAccount && (a.Action == ActApprove || a.Action == ActReject):
		return workflows.AccountUpdateDecision, workflows.SpecialistDecision{Approve: approve, Reason: a.Reason, Specialist: who},
			&workflows.AccountStatus{}, ScopeAccountSpecialist, nil
	case a.Process == procDecl && a.Action == ActRequest:
		return workflows.DeclarationUpdateRequest, workflows.DocumentRequest{What: a.What, Kind: a.Kind, Inspector: who},
			&workflows.DeclarationStatus{}, ScopeDeclarationsReview, nil
	case a.Process == procDecl && a.Action == ActDecide:
		return workflows.DeclarationUpdateDecide, workflows.DeclarationDecision{Decision: a.Decision, RefundKopecks: a.RefundKopecks,
			Grounds: a.Reason, Inspector: who}, &workflows.DeclarationStatus{}, ScopeDeclarationsReview, nil
	}
	return "", nil, nil, "", fmt.Errorf("process %q has no action %q", a.Process, a.Action)
}

func approveAction(approve bool) string {
	if approve {
		return ActApprove
	}
	return ActReject
}
