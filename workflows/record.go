package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
)

// Typed search attributes (registered on the server); never personal data.
var (
	SearchProcess = temporal.NewSearchAttributeKeyKeyword("TaxflowProcess")
	SearchStatus  = temporal.NewSearchAttributeKeyKeyword("TaxflowStatus")
)

// record moves the case to a new status: history, search attributes, and in parallel the
// audit journal, the case projection and the taxpayer's notification [004:210].
func (r *refund) record(ctx workflow.Context, from, to, actor, reason string) error {
	r.st.Status, r.st.Label = to, RefundLabels[to]
	r.st.History = append(r.st.History, Transition{From: from, To: to, At: workflow.Now(ctx), Actor: actor, Reason: reason})
	if from != "" { // the first status is set when the case starts
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchProcess.ValueSet("refund"), SearchStatus.ValueSet(to))
	}
	var a *activities.Activities
	rctx := workflow.WithActivityOptions(ctx, activities.RecordOptions)
	r.version++
	futures := append(r.pending,
		workflow.ExecuteActivity(rctx, a.AppendAudit, r.entry(ctx, "status_changed", from, to, actor, reason)),
		workflow.ExecuteActivity(rctx, a.UpdateCase, r.caseRecord(ctx)),
		workflow.ExecuteActivity(rctx, a.Notify, r.notification(ctx, "taxpayer", "refund."+to, "label", r.st.Label, "reason", reason)),
	)
	r.pending = nil
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return fmt.Errorf("record transition to %s: %w", to, err)
		}
	}
	return nil
}

func (r *refund) entry(ctx workflow.Context, action, from, to, actor, reason string) contract.AuditEntry {
	r.seq++
	return contract.AuditEntry{CaseID: r.in.CaseID, At: workflow.Now(ctx), Seq: r.seq, Actor: actor, Action: action, From: from, To: to,
		Reason: reason, RequestID: r.in.RequestID}
}

func (r *refund) audit(ctx workflow.Context, action, from, to, actor, reason string) error {
	return r.auditAsync(ctx, action, from, to, actor, reason).Get(ctx, nil)
}

func (r *refund) auditAsync(ctx workflow.Context, action, from, to, actor, reason string) workflow.Future {
	var a *activities.Activities
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.AppendAudit,
		r.entry(ctx, action, from, to, actor, reason))
}

func (r *refund) caseRecord(ctx workflow.Context) contract.CaseRecord {
	return contract.CaseRecord{CaseID: r.in.CaseID, Process: "refund", Status: r.st.Status, Label: r.st.Label, Version: r.version,
		UpdatedAt: workflow.Now(ctx), Deadline: r.st.Deadline, Escalated: r.st.Escalated,
		Amounts: map[string]int64{"claimed": r.st.Claimed, "approved": r.st.Approved, "interest": r.st.Interest, "paid": r.st.Paid}}
}

func (r *refund) project(ctx workflow.Context) error {
	var a *activities.Activities
	r.version++
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.UpdateCase, r.caseRecord(ctx)).Get(ctx, nil)
}

func (r *refund) notification(ctx workflow.Context, recipient, template string, params ...string) contract.Notification {
	n := contract.Notification{CaseID: r.in.CaseID, Recipient: recipient, Template: template, At: workflow.Now(ctx), Params: map[string]string{}}
	if recipient == "taxpayer" {
		n.INN = r.in.INN
	}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			n.Params[params[i]] = params[i+1]
		}
	}
	return n
}

func (r *refund) notify(ctx workflow.Context, recipient, template string, params ...string) error {
	var a *activities.Activities
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.Notify,
		r.notification(ctx, recipient, template, params...)).Get(ctx, nil)
}
