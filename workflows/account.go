package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Account lock and unblock, domain.md §4, seed-rules A4: one long-lived workflow per
// account, fed by login and security events.

// Names of the account workflow's handlers.
const (
	AccountQueryStatus       = "status"
	AccountSignalEvent       = "event"
	AccountUpdateSelfService = "self_service"       // INN + full name + passport series [002:161-163]
	AccountUpdateIdentity    = "identity"           // start identity re-verification (suspicious activity)
	AccountUpdateSpecialist  = "specialist_request" // ask a specialist to unblock (24 h [001:193])
	AccountUpdateDecision    = "specialist_decision"
)

// Lock statuses.
const (
	AccountActive             = "active"
	AccountAutoUnlockPending  = "auto_unlock_pending"
	AccountAwaitingIdentity   = "awaiting_identity"
	AccountAwaitingSpecialist = "awaiting_specialist"
)

// AccountLabels are the labels the cabinet shows.
var AccountLabels = map[string]string{
	AccountActive:             "Доступ открыт",
	AccountAutoUnlockPending:  "Временная блокировка",
	AccountAwaitingIdentity:   "Требуется повторное подтверждение личности",
	AccountAwaitingSpecialist: "Ожидает решения специалиста",
}

// AccountPolicy is the lockout configuration.
type AccountPolicy struct {
	// Threshold: consecutive failed logins allowed; the next one locks. "More than five
	// times in a row" [001:175]: with 5 the 6th failure locks ([000:38] "more than three": 3).
	Threshold         int             `json:"threshold"`
	LockPeriods       []time.Duration `json:"lock_periods"`       // 15 min, 1 h, 24 h [001:160, 004:229]
	SpecialistAfter   int             `json:"specialist_after"`   // the n-th lock within 24 h needs a specialist (3 [000:38])
	SelfServiceTries  int             `json:"self_service_tries"` // per lock
	SpecialistSLA     time.Duration   `json:"specialist_sla"`     // 24 h [001:193]
	ContinueAfter     int             `json:"continue_after"`     // events per run before continue-as-new
	RememberEventIDs  int             `json:"remember_event_ids"` // ids kept for de-duplication
	IdentityTaskQueue string          `json:"identity_task_queue,omitempty"`
}

// DefaultAccountPolicy is domain.md's defaults.
func DefaultAccountPolicy() AccountPolicy {
	return AccountPolicy{Threshold: 5, LockPeriods: []time.Duration{15 * time.Minute, time.Hour, 24 * time.Hour}, SpecialistAfter: 3,
		SelfServiceTries: 3, SpecialistSLA: 24 * time.Hour, ContinueAfter: 1000, RememberEventIDs: 2000}
}

// AccountState is the whole state; it is what continue-as-new carries over.
type AccountState struct {
	Status         string       `json:"status"`
	Label          string       `json:"label"`
	Failures       int          `json:"consecutive_failures"`
	Locks          []time.Time  `json:"locks"` // lock times within the last 24 h
	Until          *time.Time   `json:"until,omitempty"`
	TriesLeft      int          `json:"self_service_tries_left"`
	SpecialistDue  *time.Time   `json:"specialist_due,omitempty"`
	Escalated      bool         `json:"escalated"`
	IdentityCase   string       `json:"identity_case,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	EventsSeen     int          `json:"events_seen"` // all runs
	RecentEventIDs []string     `json:"-"`           // de-duplication window, oldest first
	History        []Transition `json:"history"`     // the last transitions

	// JournalSeq is the last step of the account's record (journal, projection, outbox):
	// the next run's steps follow it, so no idempotency key is used twice.
	JournalSeq int64 `json:"journal_seq"`
}

// AccountWorkflowInput starts (or continues) an account's workflow.
type AccountWorkflowInput struct {
	AccountID string         `json:"account_id"` // opaque: account-<keyed hash of the INN>
	INN       string         `json:"inn"`
	Policy    AccountPolicy  `json:"policy"`
	State     *AccountState  `json:"state,omitempty"`   // carried over by continue-as-new
	Pending   []AccountEvent `json:"pending,omitempty"` // received but not yet applied
	Seen      []string       `json:"seen,omitempty"`    // de-duplication window
}

// AccountEvent is contract.AccountEvent (aliased for the workflow's API).
type AccountEvent = contract.AccountEvent

// AccountStatus is what the status query returns: no personal data.
type AccountStatus struct {
	AccountState
	OpenPaths []string `json:"open_paths"`
}

// SelfServiceRequest is the taxpayer's self-service unblock.
type SelfServiceRequest struct {
	FullName       string `json:"full_name"`
	PassportSeries string `json:"passport_series"`
}

// SpecialistDecision is a specialist's word.
type SpecialistDecision struct {
	Approve    bool   `json:"approve"`
	Reason     string `json:"reason"`
	Specialist string `json:"specialist"`
}

// AccountID names an account's workflow from the keyed hash of its INN.
func AccountID(subject string) string { return "account-" + subject }

type account struct {
	in      AccountWorkflowInput
	st      AccountState
	j       *journal
	mu      workflow.Mutex
	pending []AccountEvent
	seen    map[string]bool
	events  int // applied in this run
	child   bool
	dirty   bool
}

// Account keeps one account's lock state for as long as the account exists.
func Account(ctx workflow.Context, in AccountWorkflowInput) error {
	r := &account{in: in, mu: workflow.NewMutex(ctx), seen: map[string]bool{}}
	if in.State != nil {
		r.st = *in.State
	} else {
		r.st = AccountState{Status: AccountActive, Label: AccountLabels[AccountActive]}
	}
	r.st.RecentEventIDs = in.Seen
	for _, id := range in.Seen {
		r.seen[id] = true
	}
	r.pending = in.Pending
	status := r.st.Status
	r.j = &journal{process: "account", caseID: in.AccountID, inn: in.INN, labels: AccountLabels,
		status: &status, label: &r.st.Label, history: &r.st.History, project: r.project, seq: r.st.JournalSeq}
	if err := r.handlers(ctx); err != nil {
		return err
	}
	// Events are taken off the channel only here, on the main coroutine: a receiving
	// goroutine could hold an event the moment the run continues as new, and lose it.
	events := workflow.GetSignalChannel(ctx, AccountSignalEvent)
	for {
		// Apply what arrived, then wait for more or for the next deadline.
		r.drain(events)
		if err := r.apply(ctx); err != nil {
			return err
		}
		if r.events >= in.Policy.ContinueAfter && !r.child {
			return r.continueAsNew(ctx, events)
		}
		wait, hasTimer := r.nextDeadline(ctx)
		cond := func() bool { return len(r.pending) > 0 || events.Len() > 0 || r.dirty }
		if hasTimer {
			if _, err := workflow.AwaitWithTimeout(ctx, wait, cond); err != nil {
				return err
			}
		} else if err := workflow.Await(ctx, cond); err != nil {
			return err
		}
		r.dirty = false
		if err := r.deadlines(ctx); err != nil {
			return err
		}
	}
}

func (r *account) project(workflow.Context) contract.CaseRecord {
	rec := contract.CaseRecord{Escalated: r.st.Escalated, Amounts: map[string]int64{"locks_24h": int64(len(r.st.Locks))}}
	if r.st.Until != nil {
		rec.Deadline = *r.st.Until
	} else if r.st.SpecialistDue != nil {
		rec.Deadline = *r.st.SpecialistDue
	}
	return rec
}

// status answers the query.
func (r *account) status() AccountStatus {
	out := AccountStatus{AccountState: r.st, OpenPaths: []string{}}
	out.JournalSeq = r.j.Seq() // the live sequence; the state's copy is set at continue-as-new
	switch r.st.Status {
	case AccountAutoUnlockPending:
		out.OpenPaths = append(out.OpenPaths, "wait")
		if r.st.TriesLeft > 0 {
			out.OpenPaths = append(out.OpenPaths, "self_service")
		}
		out.OpenPaths = append(out.OpenPaths, "specialist")
	case AccountAwaitingIdentity:
		out.OpenPaths = append(out.OpenPaths, "identity", "specialist")
	case AccountAwaitingSpecialist:
		out.OpenPaths = append(out.OpenPaths, "specialist")
	}
	return out
}

func (r *account) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, AccountQueryStatus, func() (AccountStatus, error) { return r.status(), nil }); err != nil {
		return err
	}
	locked := func(statuses ...string) func() error {
		return func() error {
			for _, s := range statuses {
				if r.st.Status == s {
					return nil
				}
			}
			return temporal.NewApplicationError("the account is not locked in a way this path can lift ("+r.st.Status+")", fnerr.TypeConflict)
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateSelfService, r.selfService,
		workflow.UpdateHandlerOptions{Validator: func(req SelfServiceRequest) error {
			if err := locked(AccountAutoUnlockPending)(); err != nil {
				return err
			}
			if r.st.TriesLeft <= 0 {
				return temporal.NewApplicationError("no self-service tries left: ask a specialist", fnerr.TypeConflict)
			}
			if req.FullName == "" || req.PassportSeries == "" {
				return invalid("full_name and passport_series are required")
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateIdentity, r.startIdentity,
		workflow.UpdateHandlerOptions{Validator: func(sub IdentityWorkflowInput) error {
			if err := locked(AccountAwaitingIdentity)(); err != nil {
				return err
			}
			if r.child {
				return temporal.NewApplicationError("an identity re-verification is already in progress", fnerr.TypeConflict)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateSpecialist, r.requestSpecialist,
		workflow.UpdateHandlerOptions{Validator: func() error {
			if err := locked(AccountAutoUnlockPending, AccountAwaitingIdentity, AccountAwaitingSpecialist)(); err != nil {
				return err
			}
			if r.st.SpecialistDue != nil {
				return temporal.NewApplicationError("a specialist has already been asked", fnerr.TypeConflict)
			}
			return nil
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateDecision, r.decide,
		workflow.UpdateHandlerOptions{Validator: func(d SpecialistDecision) error {
			if r.st.Status == AccountActive {
				return temporal.NewApplicationError("the account is not locked", fnerr.TypeConflict)
			}
			if d.Specialist == "" {
				return invalid("specialist: must name the specialist")
			}
			if !d.Approve && d.Reason == "" {
				return invalid("reason: a refusal must give the reason the taxpayer will see")
			}
			return nil
		}})
}

// apply folds the pending events into the state, each event id once.
func (r *account) apply(ctx workflow.Context) error {
	for len(r.pending) > 0 {
		e := r.pending[0]
		r.pending = r.pending[1:]
		if e.EventID == "" || r.seen[e.EventID] {
			continue
		}
		r.remember(e.EventID)
		r.events++
		r.st.EventsSeen++
		if err := r.event(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (r *account) remember(id string) {
	r.seen[id] = true
	r.st.RecentEventIDs = append(r.st.RecentEventIDs, id)
	if over := len(r.st.RecentEventIDs) - r.in.Policy.RememberEventIDs; over > 0 {
		for _, old := range r.st.RecentEventIDs[:over] {
			delete(r.seen, old)
		}
		r.st.RecentEventIDs = r.st.RecentEventIDs[over:]
	}
}

func (r *account) event(ctx workflow.Context, e AccountEvent) error {
	switch e.Type {
	case contract.EventLoginSucceeded:
		if r.st.Status == AccountActive {
			r.st.Failures = 0
		}
	case contract.EventLoginFailed:
		if r.st.Status != AccountActive {
			return nil // already locked: the lock stands
		}
		r.st.Failures++
		if r.st.Failures <= r.in.Policy.Threshold { // locks only when more than Threshold [001:175]
			return nil
		}
		return r.lockForFailures(ctx)
	case contract.EventSuspicious:
		if r.st.Status == AccountAwaitingIdentity || r.st.Status == AccountAwaitingSpecialist {
			return nil
		}
		return r.lock(ctx, AccountAwaitingIdentity, "suspicious activity: confirm your identity again [004:230]")
	case contract.EventDataIncorrect:
		if r.st.Status == AccountAwaitingSpecialist {
			return nil
		}
		return r.lock(ctx, AccountAwaitingSpecialist, "incomplete or incorrect data: a specialist must check them [004:46]")
	}
	return nil
}

// lockForFailures locks once the failures exceed the threshold: 15 min, then 1 h, then 24 h; the third
// lock within 24 h waits for a specialist [000:38].
func (r *account) lockForFailures(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	var recent []time.Time
	for _, t := range r.st.Locks {
		if now.Sub(t) < 24*time.Hour {
			recent = append(recent, t)
		}
	}
	r.st.Locks = append(recent, now)
	r.st.Failures = 0
	n := len(r.st.Locks)
	if n >= r.in.Policy.SpecialistAfter {
		return r.lock(ctx, AccountAwaitingSpecialist, fmt.Sprintf("lock %d within 24 hours: only a specialist may unblock", n))
	}
	period := r.in.Policy.LockPeriods[min(n, len(r.in.Policy.LockPeriods))-1]
	until := now.Add(period)
	r.st.Until = &until
	r.st.TriesLeft = r.in.Policy.SelfServiceTries
	return r.lock(ctx, AccountAutoUnlockPending, fmt.Sprintf("more than %d failed logins in a row; lifts by itself after %s", r.in.Policy.Threshold, period))
}

func (r *account) lock(ctx workflow.Context, status, reason string) error {
	if status != AccountAutoUnlockPending {
		r.st.Until = nil
		r.st.TriesLeft = 0
	}
	r.st.Reason = reason
	return r.transition(ctx, status, "system", reason)
}

func (r *account) transition(ctx workflow.Context, to, actor, reason string) error {
	if err := r.mu.Lock(ctx); err != nil {
		return err
	}
	defer r.mu.Unlock()
	if err := r.j.record(ctx, to, actor, reason); err != nil {
		return err
	}
	r.st.Status = to
	if len(r.st.History) > 50 {
		r.st.History = r.st.History[len(r.st.History)-50:]
	}
	r.dirty = true
	return nil
}

// unlock opens the account. The confirmed mark lasts until the password is changed or
// access is recovered [004:27]: a recovery (specialist unblock, identity re-verification,
// self-service unblock, which the seeds list among the access-recovery procedures
// [002:150-163]) clears it, to be earned again; a lock that lifts by itself leaves it.
func (r *account) unlock(ctx workflow.Context, actor, reason string, recovery bool) error {
	var a *activities.Activities
	if recovery {
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.ClearIdentity,
			contract.IdentityClearInput{INN: r.in.INN, CaseID: r.in.AccountID}).Get(ctx, nil); err != nil {
			return err
		}
	}
	r.st.Until, r.st.SpecialistDue, r.st.Escalated, r.st.TriesLeft, r.st.IdentityCase, r.st.Failures = nil, nil, false, 0, "", 0
	r.st.Reason = reason
	return r.transition(ctx, AccountActive, actor, reason)
}

// nextDeadline is the time to the nearest timer: automatic unlock or specialist SLA.
func (r *account) nextDeadline(ctx workflow.Context) (time.Duration, bool) {
	now := workflow.Now(ctx)
	var next *time.Time
	if r.st.Until != nil && r.st.Status == AccountAutoUnlockPending {
		next = r.st.Until
	}
	if r.st.SpecialistDue != nil && !r.st.Escalated && (next == nil || r.st.SpecialistDue.Before(*next)) {
		next = r.st.SpecialistDue
	}
	if next == nil {
		return 0, false
	}
	return max(next.Sub(now), 0), true
}

func (r *account) deadlines(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	if r.st.Status == AccountAutoUnlockPending && r.st.Until != nil && !now.Before(*r.st.Until) {
		if err := r.unlock(ctx, "system", "the temporary lock expired", false); err != nil {
			return err
		}
	}
	if r.st.SpecialistDue != nil && !r.st.Escalated && !now.Before(*r.st.SpecialistDue) && r.st.Status != AccountActive {
		r.st.Escalated = true
		if err := r.j.auditNotify(ctx, "specialist_overdue", "system", "24-hour unblock SLA passed", "supervisor", "account.specialist_overdue"); err != nil {
			return err
		}
	}
	return nil
}

func (r *account) selfService(ctx workflow.Context, req SelfServiceRequest) (AccountStatus, error) {
	var a *activities.Activities
	var res contract.UnblockCheckResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckUnblock,
		contract.UnblockCheckInput{INN: r.in.INN, FullName: req.FullName, PassportSeries: req.PassportSeries}).Get(ctx, &res)
	if err != nil {
		return r.status(), err
	}
	if r.st.Status != AccountAutoUnlockPending { // lifted meanwhile
		return r.status(), nil
	}
	if res.Match {
		return r.status(), r.unlock(ctx, "taxpayer", "self-service unblock: INN, full name and passport series matched", true)
	}
	r.st.TriesLeft--
	if err := r.j.audit(ctx, "self_service_refused", "taxpayer", fmt.Sprintf("data did not match; %d tries left", r.st.TriesLeft)); err != nil {
		return r.status(), err
	}
	if r.st.TriesLeft <= 0 {
		r.st.Until = nil
		if err := r.lock(ctx, AccountAwaitingSpecialist, "self-service tries exhausted: only a specialist may unblock"); err != nil {
			return r.status(), err
		}
		return r.status(), temporal.NewApplicationError("the data does not match the registry; no tries left: only a specialist may unblock now", fnerr.TypeRejected)
	}
	return r.status(), temporal.NewApplicationError(fmt.Sprintf("the data does not match the registry; %d tries left", r.st.TriesLeft), fnerr.TypeRejected)
}

// startIdentity starts the identity re-verification as a child workflow.
func (r *account) startIdentity(ctx workflow.Context, in IdentityWorkflowInput) (AccountStatus, error) {
	r.child = true
	in.Submission.Person.INN = r.in.INN
	r.st.IdentityCase = in.CaseID
	opts := workflow.ChildWorkflowOptions{WorkflowID: in.CaseID, ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: childAttributes(ctx, SearchProcess.ValueSet("identity"), SearchStatus.ValueSet(IdentityReceived))}
	if r.in.Policy.IdentityTaskQueue != "" {
		opts.TaskQueue = r.in.Policy.IdentityTaskQueue
	}
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), IdentityVerification, in)
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		r.child = false
		return r.status(), err
	}
	if err := r.j.audit(ctx, "identity_started", "taxpayer", in.CaseID); err != nil {
		return r.status(), err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		var st IdentityStatus
		err := child.Get(ctx, &st)
		if err != nil {
			st = IdentityStatus{CaseID: in.CaseID, Status: IdentityRejected, Reasons: []string{"the verification failed"}}
		}
		_ = r.identityDone(ctx, st)
	})
	return r.status(), nil
}

func (r *account) identityDone(ctx workflow.Context, st IdentityStatus) error {
	r.child = false
	r.dirty = true
	if r.st.Status != AccountAwaitingIdentity {
		return nil
	}
	if st.Status == IdentityVerified {
		return r.unlock(ctx, "system", "identity confirmed again ("+st.CaseID+")", true)
	}
	r.st.IdentityCase = ""
	return r.j.audit(ctx, "identity_failed", "system", st.Status)
}

func (r *account) requestSpecialist(ctx workflow.Context) (AccountStatus, error) {
	due := workflow.Now(ctx).Add(r.in.Policy.SpecialistSLA)
	r.st.SpecialistDue = &due
	r.dirty = true
	return r.status(), r.j.auditNotify(ctx, "specialist_requested", "taxpayer", "due "+due.UTC().Format(time.RFC3339),
		"reviewer", "account.specialist_requested")
}

func (r *account) decide(ctx workflow.Context, d SpecialistDecision) (AccountStatus, error) {
	if d.Approve {
		return r.status(), r.unlock(ctx, d.Specialist, "unblocked by a specialist: "+d.Reason, true)
	}
	r.st.SpecialistDue, r.st.Escalated = nil, false
	r.st.Reason = d.Reason
	return r.status(), r.j.auditNotify(ctx, "specialist_refused", d.Specialist, d.Reason, "taxpayer", "account.unblock_refused", "reason", d.Reason)
}

// drain moves every event waiting on the channel to the pending queue.
func (r *account) drain(ch workflow.ReceiveChannel) {
	for {
		var e AccountEvent
		if !ch.ReceiveAsync(&e) {
			return
		}
		r.pending = append(r.pending, e)
	}
}

// continueAsNew starts a fresh run with the whole state, the de-duplication window and
// every event received but not yet applied; handlers in flight finish first.
func (r *account) continueAsNew(ctx workflow.Context, events workflow.ReceiveChannel) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	r.drain(events) // what arrived while handlers finished
	st := r.st
	st.JournalSeq = r.j.Seq()
	next := r.in
	next.State, next.Pending, next.Seen = &st, r.pending, r.st.RecentEventIDs
	return workflow.NewContinueAsNewError(ctx, Account, next)
}
