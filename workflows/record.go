package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
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
	owner     *contract.CaseOwner // written by the first step (seq 1)

	status  *string
	label   *string
	history *[]Transition
	// project describes the case for the read projection (amounts, deadline, flags).
	project func(workflow.Context) contract.CaseRecord

	seq int64 // the last step written; carried across continue-as-new
	// path is how steps run (changes record-step-task and record-step-local), asked at
	// the first step; a run that continues as new asks again.
	path stepPath
	// the workflow task (history length at its start) whose step ran as a local
	// activity (record-step-local runs only)
	localTask int
	// diverged: a step was refused because the record holds another step under its key
	// (KeyReused) or is not at the step this one follows (Conflict): this run no longer
	// knows what the record says, and writes nothing more (the error is every later
	// step's answer) — never a step on top of one it did not decide.
	diverged error
	// decided is the status of the last transition decided: it may still be being
	// written (the refund's `received` runs in the background), and entries made
	// meanwhile describe the case at it, whatever the order the steps' answers come in.
	decided string
	// failed: a step written in the background (recordAsync) failed; every later step is
	// refused with it.
	failed error
	// recheck: the deadline watch checks again, once it holds the step mutex, that the
	// case still needs its step (runs of refund-folded-steps, whose histories have it).
	recheck bool
	queued  []contract.AuditEntry // entries that ride with the next step
	settle  []workflow.Settable   // their futures, settled when that step is written
	pending []workflow.Future     // waited for with the next change
	mu      workflow.Mutex
}

// transitionSeen, set by the tests only (states_test.go), is told of every transition a
// case decides to take, as the step that records it is made: the tests check each against
// the process's table (StateMachines). Nil in a worker; it produces no command.
var transitionSeen func(process, from, to string)

// taking tells transitionSeen of a transition decided.
func (j *journal) taking(from, to string) {
	if transitionSeen != nil {
		transitionSeen(j.process, from, to)
	}
}

// current is the status entries and steps describe: the last decided.
func (j *journal) current() string {
	if j.decided != "" {
		return j.decided
	}
	return *j.status
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
	from := j.current()
	j.taking(from, to)
	j.decided = to
	j.queue(ctx, "status_changed", from, to, actor, reason)
	for _, n := range notes {
		j.queue(ctx, n.action, to, to, n.actor, n.reason)
	}
	err := j.write(ctx, to, j.notification(ctx, "taxpayer", j.process+"."+to, "label", j.labels[to], "reason", reason))
	if err != nil {
		j.decided = from
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
	j.queued = append(j.queued, j.entry(ctx, action, from, to, actor, reason))
}

func (j *journal) entry(ctx workflow.Context, action, from, to, actor, reason string) contract.AuditEntry {
	return contract.AuditEntry{CaseID: j.caseID, At: workflow.Now(ctx), Actor: actor, Action: action, From: from, To: to,
		Reason: reason, RequestID: j.requestID}
}

// write records one step: the queued journal entries, the projection with the given
// status and the notifications.
//
// A step's seq is given back only when the function refused the step before writing
// anything (invalid input). After any other failure — a write cancelled or timed out may
// have committed — seq stays taken: the next step follows it, and if it was not written
// the next step is refused as a Conflict, for an operator to see, instead of reusing a
// key that may already name a committed step.
func (j *journal) write(ctx workflow.Context, status string, notes ...contract.Notification) error {
	if err := j.lock(ctx); err != nil {
		return err
	}
	defer j.mu.Unlock()
	return j.writeLocked(ctx, status, notes...)
}

// writeLocked is write with the step mutex held.
func (j *journal) writeLocked(ctx workflow.Context, status string, notes ...contract.Notification) error {
	if err := j.refused(); err != nil {
		return err
	}
	// The futures waited for are those added before this step: their entries are in it
	// or in an earlier one, so they are settled by the time it is written.
	entries, settle, futures := j.queued, j.settle, j.pending
	j.queued, j.settle, j.pending = nil, nil, nil
	in := j.step(ctx, status, entries, notes)
	var a *activities.Activities
	var err error
	switch {
	case j.stepsLocal(ctx):
		err = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, activities.RecordLocalOptions), a.RecordTransition, in).Get(ctx, nil)
	case j.path == stepsTask:
		// A step decided is written, whatever happens to the case meanwhile: on a
		// disconnected context a cancellation of the case never leaves the step's outcome
		// unknown to the workflow (it waits for the activity's answer).
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, activities.RecordOptions), a.RecordTransition, in).Get(dctx, nil)
	default:
		err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.RecordTransition, in).Get(ctx, nil)
	}
	switch {
	case err == nil:
	case refusedUnwritten(err):
		j.seq--
	case isType(err, fnerr.TypeKeyReused), isType(err, fnerr.TypeConflict):
		j.diverged = err
	}
	return j.settled(ctx, err, settle, futures)
}

// lock takes the step mutex: steps are written one at a time, in seq order.
func (j *journal) lock(ctx workflow.Context) error {
	if j.mu == nil {
		j.mu = workflow.NewMutex(ctx)
	}
	return j.mu.Lock(ctx)
}

// refused is the answer of every step after the record diverged or a step written in
// the background failed; it settles the entries waiting for a step.
func (j *journal) refused() error {
	var err error
	switch {
	case j.diverged != nil:
		err = fmt.Errorf("the case's record holds steps this run did not decide: %w", j.diverged)
	case j.failed != nil:
		err = fmt.Errorf("an earlier step of the case failed: %w", j.failed)
	default:
		return nil
	}
	for _, s := range j.settle {
		s.Set(nil, err)
	}
	j.queued, j.settle, j.pending = nil, nil, nil
	return err
}

// step takes the next seq and makes its input: the entries, the projection with the
// given status and the notifications.
func (j *journal) step(ctx workflow.Context, status string, entries []contract.AuditEntry, notes []contract.Notification) contract.RecordInput {
	j.seq++
	rec := j.project(ctx)
	rec.CaseID, rec.Process, rec.Status, rec.Label, rec.Version, rec.UpdatedAt = j.caseID, j.process, status, j.labels[status], j.seq, workflow.Now(ctx)
	in := contract.RecordInput{CaseID: j.caseID, Seq: j.seq, Entries: entries, Case: &rec, Notifications: notes}
	if j.seq == 1 {
		in.Owner = j.owner
	}
	return in
}

// settled answers the entries that rode in a step with its outcome, then waits for the
// futures the step was to wait for.
func (j *journal) settled(ctx workflow.Context, err error, settle []workflow.Settable, futures []workflow.Future) error {
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

// recordAsync is record in a coroutine of its own: the step is scheduled now and written
// while the caller goes on (the refund's `received`, scheduled with its reads). Steps
// stay in seq order (every later step waits for the mutex); should it fail, every later
// step is refused with its error, as a step written in line would have stopped the
// case. The future is ready once it is written or has failed.
func (j *journal) recordAsync(ctx workflow.Context, to, actor, reason string, notes ...note) workflow.Future {
	f, s := workflow.NewFuture(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		err := j.record(ctx, to, actor, reason, notes...)
		if err != nil && j.failed == nil && j.diverged == nil {
			j.failed = err
		}
		s.Set(nil, err)
	})
	return f
}

// fold moves the case to a new status with a step that rides in the transaction of the
// operation it records (change refund-folded-steps): the reservation that approves a
// refund, the posting of the payout that paid it. The step is made as record makes it,
// under the step mutex, and run carries it to the function, which says what became of
// it: written (the case is at `to`; outcome.Reason is the reason as written), not
// written (the operation decided something the step does not describe: its seq is
// free again and the entries that were to ride with it wait for the next step),
// refused (the record holds other steps: nothing more is written), or run's error (the
// outcome is unknown: seq stays taken, as for a record step that failed). Nothing but
// run's activity may be scheduled between the step's making and its outcome. patch
// changes the projection to what it is once the operation is done (the amount paid),
// which the case's state shows only then.
func (j *journal) fold(ctx workflow.Context, to, actor, reason string, patch func(*contract.CaseRecord),
	run func(ctx workflow.Context, step contract.RecordInput) (*contract.StepOutcome, error)) (written bool, err error) {
	if err := j.lock(ctx); err != nil {
		return false, err
	}
	defer j.mu.Unlock()
	if err := j.refused(); err != nil {
		return false, err
	}
	j.steps(ctx) // the step path is asked at the first step, as for any other
	from := j.current()
	j.taking(from, to)
	queued, settle, futures := j.queued, j.settle, j.pending
	j.queued, j.settle, j.pending = nil, nil, nil
	entries := append(append([]contract.AuditEntry(nil), queued...), j.entry(ctx, "status_changed", from, to, actor, reason))
	in := j.step(ctx, to, entries, []contract.Notification{j.notification(ctx, "taxpayer", j.process+"."+to, "label", j.labels[to], "reason", reason)})
	if patch != nil {
		patch(in.Case)
	}
	out, err := run(ctx, in)
	switch {
	case err != nil:
		return false, j.settled(ctx, fmt.Errorf("record transition to %s: %w", to, err), settle, futures)
	case out != nil && out.Refused != "":
		j.diverged = temporal.NewNonRetryableApplicationError(out.Refused, out.RefusedType, nil)
		return false, j.settled(ctx, fmt.Errorf("record transition to %s: %w", to, j.diverged), settle, futures)
	case out == nil || !out.Written:
		j.seq--
		j.queued, j.settle, j.pending = append(queued, j.queued...), append(settle, j.settle...), append(futures, j.pending...)
		return false, nil
	}
	if out.Reason != "" {
		reason = out.Reason
	}
	j.moved(ctx, from, to, actor, reason)
	return true, j.settled(ctx, nil, settle, futures)
}

// moved sets the case at a status a step has recorded.
func (j *journal) moved(ctx workflow.Context, from, to, actor, reason string) {
	j.decided, *j.status, *j.label = to, to, j.labels[to]
	*j.history = append(*j.history, Transition{From: from, To: to, At: workflow.Now(ctx), Actor: actor, Reason: reason})
	if from != "" {
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(to))
	}
}

// adopt sets the case at the status of a folded step whose outcome run could not tell
// (fold answered its error, seq stayed taken) and which a later operation carrying the
// same step found written.
func (j *journal) adopt(ctx workflow.Context, to, actor, reason string) {
	j.taking(j.current(), to)
	j.moved(ctx, j.current(), to, actor, reason)
}

func isType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}

// refusedUnwritten: the record function refused the step before it wrote anything
// (invalid input), so its seq is still free.
func refusedUnwritten(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == fnerr.TypeInvalidInput
}

// stepPath is how a run writes its transition records.
type stepPath int8

const (
	stepsUnasked stepPath = iota
	stepsBefore           // activity tasks, recorded before record-step-local (no marker)
	stepsLocal            // record-step-local: the first step of each workflow task a local activity
	stepsTask             // record-step-task: every step an activity task, on a disconnected context
)

// changeRecordStepTask is the workflow.GetVersion change id of transition records run as
// activity tasks again, after record-step-local. A record's input is fixed in the
// history when its activity is scheduled, so every retry writes the same bytes and a
// committed step is never replaced: the conditional put and the content digest
// (Duplicate, KeyReused) are the whole protocol. A local activity writes before its
// workflow task is committed, and a failed task's next attempt could decide the step
// otherwise — which needed a protocol that replaced committed steps (removed).
//
// Runs recorded with the marker of record-step-local (and none of this change) keep
// their local steps on replay; an open run of that kind (README, "Changing a workflow
// safely", tells how to find one) writes its local steps without replacement: a failed
// task's next attempt that decides otherwise fails as KeyReused, visible, never an edit.
const changeRecordStepTask = "record-step-task"

// changeRecordStepLocal is the change id of transition records run as local activities
// (the first step of each workflow task), superseded by record-step-task; kept so that
// the runs recorded with its marker replay.
const changeRecordStepLocal = "record-step-local"

// steps says how the run writes its steps, asked once, at the first step, under the
// step mutex, so the markers sit at the same place on replay. A new run records the
// marker of record-step-task; a run recorded before it finds no such marker (the
// default) and then asks record-step-local, whose marker it may carry.
func (j *journal) steps(ctx workflow.Context) stepPath {
	if j.path == stepsUnasked {
		switch {
		case workflow.GetVersion(ctx, changeRecordStepTask, workflow.DefaultVersion, 1) != workflow.DefaultVersion:
			j.path = stepsTask
		case workflow.GetVersion(ctx, changeRecordStepLocal, workflow.DefaultVersion, 1) != workflow.DefaultVersion:
			j.path = stepsLocal
		default:
			j.path = stepsBefore
		}
	}
	return j.path
}

// newSteps says whether the run is on the path of record-step-local or after it (notes
// ride with the first step).
func (j *journal) newSteps(ctx workflow.Context) bool { return j.steps(ctx) != stepsBefore }

// stepsLocal says whether the next step runs as a local activity: in a run on the path
// of record-step-local only, for the first step of each workflow task. A task is told by
// the history length at its start; the test suite reports none (0).
func (j *journal) stepsLocal(ctx workflow.Context) bool {
	if j.steps(ctx) != stepsLocal {
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
	j.queue(ctx, action, j.current(), j.current(), actor, reason)
	return j.write(ctx, j.current())
}

// auditAsync adds a journal entry to the next step, which costs no step of its own; the
// future is ready once that step is written.
func (j *journal) auditAsync(ctx workflow.Context, action, actor, reason string) workflow.Future {
	j.queue(ctx, action, j.current(), j.current(), actor, reason)
	f, s := workflow.NewFuture(ctx)
	j.settle = append(j.settle, s)
	return f
}

// refresh rewrites the case projection (a flag or an amount changed, not the status).
func (j *journal) refresh(ctx workflow.Context) error {
	return j.write(ctx, j.current())
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
	return j.write(ctx, j.current(), j.notification(ctx, recipient, template, params...))
}

// auditNotify writes a journal entry and a notification about it in one step (the
// status stays).
func (j *journal) auditNotify(ctx workflow.Context, action, actor, reason, recipient, template string, params ...string) error {
	j.queue(ctx, action, j.current(), j.current(), actor, reason)
	return j.write(ctx, j.current(), j.notification(ctx, recipient, template, params...))
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
				_ = j.watchStep(ctx, w, w.reminded, "", j.notification(ctx, "reviewer", w.remind))
			}
		}
		if workflow.Sleep(ctx, w.deadline.Sub(workflow.Now(ctx))) != nil || w.settled() {
			return
		}
		// one step: the journal entry, the escalated projection, the supervisor's notice
		_ = j.watchStep(ctx, w, w.escalated, "deadline_passed", j.notification(ctx, "supervisor", w.escalate))
	})
}

// watchStep writes a step of the deadline watch — its notification and, with action, a
// journal entry — made once the step mutex is held: the entry and the projection describe
// the case as it is then. A step folded into another operation's transaction (fold) holds
// the mutex while that operation runs and decides the case's status only when it answers,
// so a status read before the mutex could be one the case has left (a projection back at
// in_review after approved). In runs that ask for it (recheck) a case that settled while
// the watch waited gets no step: nothing is written after its last one.
func (j *journal) watchStep(ctx workflow.Context, w deadlineWatch, flag *bool, action string, n contract.Notification) error {
	if err := j.lock(ctx); err != nil {
		return err
	}
	defer j.mu.Unlock()
	if j.recheck && w.settled() {
		return nil
	}
	*flag = true
	if action != "" {
		j.queue(ctx, action, j.current(), j.current(), "system", w.reason)
	}
	return j.writeLocked(ctx, j.current(), n)
}
