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
// the principal needs (the route's it stands for: routeName); err for an action the
// process does not have.
func (a caseAction) update(p Principal) (name string, arg, out any, scope string, err error) {
	approve := a.Action == ActApprove
	// Who decides is the person (StaffIdentity), whichever channel they use: the
	// declaration's appeal goes to another inspector than the one who decided it.
	who := StaffIdentity(p)
	switch {
	case a.Process == procRefund && (a.Action == ActApprove || a.Action == ActReject):
		name, arg, out = workflows.RefundUpdateDecide, workflows.RefundDecision{Approve: approve, Reason: a.Reason, Reviewer: who}, &workflows.RefundStatus{}
	case a.Process == procRefund && a.Action == ActRetry:
		name, arg, out = workflows.RefundUpdateRetryPayout, workflows.RefundRetry{Operator: who, Reason: a.Reason}, &workflows.RefundStatus{}
	case a.Process == procIdent && (a.Action == ActApprove || a.Action == ActReject):
		name, arg, out = workflows.IdentityUpdateReview, workflows.IdentityReview{Approve: approve, Reason: a.Reason, Operator: who}, &workflows.IdentityStatus{}
	case a.Process == procAccount && (a.Action == ActApprove || a.Action == ActReject):
		name, arg, out = workflows.AccountUpdateDecision, workflows.SpecialistDecision{Approve: approve, Reason: a.Reason, Specialist: who}, &workflows.AccountStatus{}
	case a.Process == procDecl && a.Action == ActRequest:
		name, arg, out = workflows.DeclarationUpdateRequest, workflows.DocumentRequest{What: a.What, Kind: a.Kind, Inspector: who}, &workflows.DeclarationStatus{}
	case a.Process == procDecl && a.Action == ActDecide:
		name, arg, out = workflows.DeclarationUpdateDecide, workflows.DeclarationDecision{Decision: a.Decision, RefundKopecks: a.RefundKopecks,
			Grounds: a.Reason, Inspector: who}, &workflows.DeclarationStatus{}
	default:
		return "", nil, nil, "", fmt.Errorf("process %q has no action %q", a.Process, a.Action)
	}
	rt, ok := a.route()
	if !ok {
		return "", nil, nil, "", fmt.Errorf("action %q of process %q has no route", a.Action, a.Process)
	}
	return name, arg, out, rt.scope, nil
}

// actionRoutes are the API routes the actions stand for, by process and action.
var actionRoutes = map[[2]string]string{
	{procRefund, ActApprove}:  "POST /v1/refunds/{id}/decision",
	{procRefund, ActReject}:   "POST /v1/refunds/{id}/decision",
	{procRefund, ActRetry}:    "POST /v1/refunds/{id}/retry-payout",
	{procIdent, ActApprove}:   "POST /v1/identity-verifications/{id}/review",
	{procIdent, ActReject}:    "POST /v1/identity-verifications/{id}/review",
	{procAccount, ActApprove}: "POST /v1/accounts/{inn}/unblock/specialist-decision",
	{procAccount, ActReject}:  "POST /v1/accounts/{inn}/unblock/specialist-decision",
	{procDecl, ActRequest}:    "POST /v1/declarations/{id}/request-documents",
	{procDecl, ActDecide}:     "POST /v1/declarations/{id}/decision",
}

// route is the API route an action stands for: a console form takes its scope and its
// separation of duties (decides) from that row, so the route table is the one place
// both live, whichever channel the action comes by.
func (a caseAction) route() (route, bool) {
	name, ok := actionRoutes[[2]string{a.Process, a.Action}]
	if !ok {
		return route{}, false
	}
	return routeRule(name)
}

func approveAction(approve bool) string {
	if approve {
		return ActApprove
	}
	return ActReject
}
