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
//
// Every write is one step of the record-transition function: the journal entries, the
// projection and the notifications of one change in one transaction, so they never
// disagree. A step's idempotency key is the case id and seq, the case's transition
// sequence, which is the projection's version too. seq lives in the workflow's state:
// a process that continues as new must carry it (Seq) into the next run, or the next
// run's steps would collide with the journal it already wrote. Steps are written one at
// a time (a mutex), so seq order is write order.
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

	seq   int64 // the last step written; carried across continue-as-new
	local *bool // steps run as local activities (changeRecordStepLocal), asked at the first step
	// the workflow task (history length at its start) whose step ran as a local activity
	localTask int
	queued    []contract.AuditEntry // entries that ride with the next step
	settle    []workflow.Settable   // their futures, settled when that step is written
	pending   []workflow.Future     // waited for with the next change
	mu        workflow.Mutex
}

// Seq is the last step written, for a process to carry into continue-as-new.
func (j *journal) Seq() int64 { return j.seq }

// record moves the case to a new status: the journal entry (after any queued ones), the
// projection with the new status and the taxpayer's notification, in one step. The
// status the query shows changes only once it is written, so a status a caller can see
// is always already in the audit journal.
// Notes are journal entries about the new status that ride in the same step, after the
// transition's own.
func (j *journal) record(ctx workflow.Context, to, actor, reason string, notes ...note) error {
	from := *j.status
	j.queue(ctx, "status_changed", from, to, actor, reason)
	for _, n := range notes {
		j.queue(ctx, n.action, to, to, n.actor, n.reason)
	}
	err := j.write(ctx, to, j.notification(ctx, "taxpayer", j.process+"."+to, "label", j.labels[to], "reason", reason))
	if err != nil {
		return fmt.Errorf("record transition to %s: %w", to, err)
	}
	*j.status, *j.label = to, j.labels[to]
	*j.history = append(*j.history, Transition{From: from, To: to, At: workflow.Now(ctx), Actor: actor, Reason: reason})
	if from != "" { // the first status is set when the case starts
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(to))
	}
	return nil
}

// queue adds a journal entry to the next step.
func (j *journal) queue(ctx workflow.Context, action, from, to, actor, reason string) {
	j.queued = append(j.queued, contract.AuditEntry{CaseID: j.caseID, At: workflow.Now(ctx), Actor: actor, Action: action, From: from, To: to,
		Reason: reason, RequestID: j.requestID})
}

// write records one step: the queued journal entries, the projection with the given
// status and the notifications. A step that fails for good gives its seq back, so the
// next step follows the last one written.
func (j *journal) write(ctx workflow.Context, status string, notes ...contract.Notification) error {
	if j.mu == nil {
		j.mu = workflow.NewMutex(ctx)
	}
	if err := j.mu.Lock(ctx); err != nil {
		return err
	}
	defer j.mu.Unlock()
	// The futures waited for are those added before this step: their entries are in it
	// or in an earlier one, so they are settled by the time it is written.
	entries, settle, futures := j.queued, j.settle, j.pending
	j.queued, j.settle, j.pending = nil, nil, nil
	j.seq++
	rec := j.project(ctx)
	rec.CaseID, rec.Process, rec.Status, rec.Label, rec.Version, rec.UpdatedAt = j.caseID, j.process, status, j.labels[status], j.seq, workflow.Now(ctx)
	in := contract.RecordInput{CaseID: j.caseID, Seq: j.seq, Entries: entries, Case: &rec, Notifications: notes}
	var a *activities.Activities
	var err error
	if j.stepsLocal(ctx) {
		info := workflow.GetInfo(ctx)
		in.Writer = &contract.RecordWriter{Chain: info.WorkflowExecution.RunID, Previous: info.ContinuedExecutionRunID, At: workflow.Now(ctx)}
		err = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, activities.RecordLocalOptions), a.RecordTransition, in).Get(ctx, nil)
	} else {
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.RecordTransition, in).Get(ctx, nil)
	}
	if err != nil {
		j.seq--
	}
	for _, s := range settle {
		s.Set(nil, err)
	}
	for _, f := range futures {
		if ferr := f.Get(ctx, nil); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// changeRecordStepLocal is the workflow.GetVersion change id of transition records run as
// local activities: the record-transition function is invoked by the worker that runs the
// workflow task, inside it, instead of through an activity task. A record is one short,
// idempotent write (keyed by case and seq): as a local activity it costs a marker in the
// history, not three events and a workflow task of its own, and the step after it is
// scheduled in the same workflow task. Runs that wrote records before the change (no
// marker) keep activity tasks; a run that continues as new asks again.
//
// A local activity writes before its workflow task is committed. If the task fails (it
// times out under load, its worker dies), the next attempt runs from the last committed
// history and may decide the step otherwise (a later clock, signals that came
// meanwhile): each local step carries its writer (the run and the attempt's start on the
// workflow clock), and the function replaces a step an earlier attempt of the same run
// wrote (see functions/transition). That replacement is sound only if a failed attempt wrote at most
// one step of its own, so a workflow task starts at most one step as a local activity; the
// steps after it in the same task are activity tasks, fixed in the history when scheduled.
// (A local step started in an earlier task may finish in a later one — a long retry — but
// its input was fixed when it started, so an attempt after a failure repeats it: a
// duplicate, not a replacement.) The writer is the run, not the first run of the chain: a
// reset run, which keeps the first run, must not replace what the run it was reset from
// wrote, which did count; the run it continues as new (Previous) may have left one.
const changeRecordStepLocal = "record-step-local"

// newSteps says whether the run is on the path of change record-step-local (asked once:
// the first time decides where the marker sits).
func (j *journal) newSteps(ctx workflow.Context) bool {
	if j.local == nil {
		local := workflow.GetVersion(ctx, changeRecordStepLocal, workflow.DefaultVersion, 1) != workflow.DefaultVersion
		j.local = &local
	}
	return *j.local
}

// stepsLocal says whether the next step runs as a local activity: in a run on the new
// path (asked once, at the first step, under the step mutex, so the marker sits at the
// same place on replay), for the first step of each workflow task. A task is told by the
// history length at its start; the test suite reports none (0), and has no failed
// attempts to replace.
func (j *journal) stepsLocal(ctx workflow.Context) bool {
	if !j.newSteps(ctx) {
		return false
	}
	task := workflow.GetInfo(ctx).GetCurrentHistoryLength()
	if task != 0 && task == j.localTask {
		return false
	}
	j.localTask = task
	return true
}

// audit writes a journal entry that is not a status change (the status stays).
func (j *journal) audit(ctx workflow.Context, action, actor, reason string) error {
	j.queue(ctx, action, *j.status, *j.status, actor, reason)
	return j.write(ctx, *j.status)
}

// auditAsync adds a journal entry to the next step, which costs no step of its own; the
// future is ready once that step is written.
func (j *journal) auditAsync(ctx workflow.Context, action, actor, reason string) workflow.Future {
	j.queue(ctx, action, *j.status, *j.status, actor, reason)
	f, s := workflow.NewFuture(ctx)
	j.settle = append(j.settle, s)
	return f
}

// refresh rewrites the case projection (a flag or an amount changed, not the status).
func (j *journal) refresh(ctx workflow.Context) error {
	return j.write(ctx, *j.status)
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
	return j.write(ctx, *j.status, j.notification(ctx, recipient, template, params...))
}

// auditNotify writes a journal entry and a notification about it in one step (the
// status stays).
func (j *journal) auditNotify(ctx workflow.Context, action, actor, reason, recipient, template string, params ...string) error {
	j.queue(ctx, action, *j.status, *j.status, actor, reason)
	return j.write(ctx, *j.status, j.notification(ctx, recipient, template, params...))
}

// note is a journal entry that is not a status change, to ride with a transition.
type note struct{ action, actor, reason string }

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
		// one step: the journal entry, the escalated projection, the supervisor's notice
		j.queue(ctx, "deadline_passed", *j.status, *j.status, "system", w.reason)
		_ = j.write(ctx, *j.status, j.notification(ctx, "supervisor", w.escalate))
	})
}
