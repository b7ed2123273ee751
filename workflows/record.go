package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
)

// Typed search attributes (registered on the server); never personal data in clear text.
var (
	SearchProcess = temporal.NewSearchAttributeKeyKeyword("TaxflowProcess")
	SearchStatus  = temporal.NewSearchAttributeKeyKeyword("TaxflowStatus")
	// SearchSubject is a keyed hash of the taxpayer's INN (never the INN), so that the
	// cases of one taxpayer can be found, for example when consent is revoked.
	SearchSubject = temporal.NewSearchAttributeKeyKeyword("TaxflowSubject")
)

// journal keeps a case's record: status and history, and for every change the audit
// journal, the case projection and the taxpayer's notification [000:86, 004:210-211].
// Each process owns one and points it at its status fields.
type journal struct {
	process   string
	caseID    string
	inn       string
	requestID string
	labels    map[string]string

	status  *string
	label   *string
	history *[]Transition
	// project describes the case for the read projection (amounts, deadline, flags).
	project func(workflow.Context) contract.CaseRecord

	version int64             // of the case projection
	seq     int64             // of audit entries
	pending []workflow.Future // journal writes waited for with the next change
}

// record moves the case to a new status; the three writes run in parallel, and the
// status the query shows changes only once they are done, so a status a caller can see
// is always already in the audit journal.
func (j *journal) record(ctx workflow.Context, to, actor, reason string) error {
	from := *j.status
	var a *activities.Activities
	rctx := workflow.WithActivityOptions(ctx, activities.RecordOptions)
	futures := append(j.pending,
		workflow.ExecuteActivity(rctx, a.AppendAudit, j.entry(ctx, "status_changed", from, to, actor, reason)),
		workflow.ExecuteActivity(rctx, a.UpdateCase, j.caseRecordAs(ctx, to)),
		workflow.ExecuteActivity(rctx, a.Notify, j.notification(ctx, "taxpayer", j.process+"."+to, "label", j.labels[to], "reason", reason)),
	)
	j.pending = nil
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return fmt.Errorf("record transition to %s: %w", to, err)
		}
	}
	*j.status, *j.label = to, j.labels[to]
	*j.history = append(*j.history, Transition{From: from, To: to, At: workflow.Now(ctx), Actor: actor, Reason: reason})
	if from != "" { // the first status is set when the case starts
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(to))
	}
	return nil
}

func (j *journal) entry(ctx workflow.Context, action, from, to, actor, reason string) contract.AuditEntry {
	j.seq++
	return contract.AuditEntry{CaseID: j.caseID, At: workflow.Now(ctx), Seq: j.seq, Actor: actor, Action: action, From: from, To: to,
		Reason: reason, RequestID: j.requestID}
}

// audit writes a journal entry that is not a status change (the status stays).
func (j *journal) audit(ctx workflow.Context, action, actor, reason string) error {
	return j.auditAsync(ctx, action, actor, reason).Get(ctx, nil)
}

func (j *journal) auditAsync(ctx workflow.Context, action, actor, reason string) workflow.Future {
	var a *activities.Activities
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.AppendAudit,
		j.entry(ctx, action, *j.status, *j.status, actor, reason))
}

func (j *journal) caseRecord(ctx workflow.Context) contract.CaseRecord {
	return j.caseRecordAs(ctx, *j.status)
}

func (j *journal) caseRecordAs(ctx workflow.Context, status string) contract.CaseRecord {
	j.version++
	rec := j.project(ctx)
	rec.CaseID, rec.Process, rec.Status, rec.Label, rec.Version, rec.UpdatedAt = j.caseID, j.process, status, j.labels[status], j.version, workflow.Now(ctx)
	return rec
}

// refresh rewrites the case projection (a flag or an amount changed, not the status).
func (j *journal) refresh(ctx workflow.Context) error {
	var a *activities.Activities
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.UpdateCase, j.caseRecord(ctx)).Get(ctx, nil)
}

func (j *journal) notification(ctx workflow.Context, recipient, template string, params ...string) contract.Notification {
	n := contract.Notification{CaseID: j.caseID, Recipient: recipient, Template: template, At: workflow.Now(ctx), Params: map[string]string{}}
	if recipient == "taxpayer" {
		n.INN = j.inn
	}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			n.Params[params[i]] = params[i+1]
		}
	}
	return n
}

// notify queues a notification to the taxpayer or to staff.
func (j *journal) notify(ctx workflow.Context, recipient, template string, params ...string) error {
	var a *activities.Activities
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.Notify,
		j.notification(ctx, recipient, template, params...)).Get(ctx, nil)
}

// deadlineWatch reminds staff before a case's deadline and escalates when it passes,
// unless the case no longer needs it (settled says so when each timer fires).
type deadlineWatch struct {
	deadline       time.Time
	reminderBefore time.Duration
	settled        func() bool
	remind         string // template to the reviewer
	escalate       string // template to the supervisor
	reason         string // journal entry at escalation
	reminded       *bool
	escalated      *bool
}

func (j *journal) watch(ctx workflow.Context, w deadlineWatch) {
	workflow.Go(ctx, func(ctx workflow.Context) {
		if d := w.deadline.Add(-w.reminderBefore).Sub(workflow.Now(ctx)); w.reminderBefore > 0 && d > 0 {
			if workflow.Sleep(ctx, d) != nil {
				return
			}
			if !w.settled() {
				*w.reminded = true
				_ = j.notify(ctx, "reviewer", w.remind)
			}
		}
		if workflow.Sleep(ctx, w.deadline.Sub(workflow.Now(ctx))) != nil || w.settled() {
			return
		}
		*w.escalated = true
		_ = j.notify(ctx, "supervisor", w.escalate)
		_ = j.audit(ctx, "deadline_passed", "system", w.reason)
		_ = j.refresh(ctx)
	})
}
