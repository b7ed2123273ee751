package workflows

import (
	"errors"
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
	Threshold        int             `json:"threshold"`
	LockPeriods      []time.Duration `json:"lock_periods"`       // 15 min, 1 h, 24 h [001:160, 004:229]
	SpecialistAfter  int             `json:"specialist_after"`   // the n-th lock within 24 h needs a specialist (3 [000:38])
	SelfServiceTries int             `json:"self_service_tries"` // per lock
	SpecialistSLA    time.Duration   `json:"specialist_sla"`     // 24 h [001:193]
	// ContinueAfter: events, messages and timers handled in one run before it continues
	// as new (sooner when Temporal suggests it, GetContinueAsNewSuggested).
	ContinueAfter     int    `json:"continue_after"`
	RememberEventIDs  int    `json:"remember_event_ids"` // ids kept for de-duplication
	IdentityTaskQueue string `json:"identity_task_queue,omitempty"`
	// LockedReminder: an account locked until the taxpayer confirms identity or a
	// specialist decides waits for them with no end of its own; every LockedReminder the
	// taxpayer is reminded of the lock and the way out (0: 30 days).
	LockedReminder time.Duration `json:"locked_reminder,omitempty"`
}

func (p AccountPolicy) lockedReminder() time.Duration {
	if p.LockedReminder <= 0 {
		return 30 * 24 * time.Hour
	}
	return p.LockedReminder
}

// changeLockedAccountReminder is the GetVersion change id of the reminder timer in the
// locked states that wait for the taxpayer or a specialist (README, "Changing a workflow
// safely"): runs recorded before it waited there without a timer.
const changeLockedAccountReminder = "locked-account-reminder"

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

	// RemindAt: when a lock that waits for the taxpayer or a specialist is next reminded.
	RemindAt *time.Time `json:"remind_at,omitempty"`

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
	// HandledThisRun: events, messages and timers this run has handled (continue-as-new
	// starts the count again); HistoryLength: the run's history events so far.
	HandledThisRun int `json:"handled_this_run"`
	HistoryLength  int `json:"history_length"`
}

// SpecialistRequest asks a specialist to unblock; At is when it was made (the API stamps
// it): the specialist's deadline runs from it. A request without one counts from when the
// account takes it.
type SpecialistRequest struct {
	At time.Time `json:"at,omitempty"`
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
	// handled counts what this run took: signals received, updates, timers fired. It
	// bounds the run's history, whatever kind of message fills it.
	handled  int
	child    bool
	requests []*accountRequest // updates recorded by their handlers, acted on by the main coroutine
	identity *IdentityStatus   // the re-verification's result, acted on by the main coroutine
	info     func() *workflow.Info
	// reminders: this run's answer to the change locked-account-reminder (asked once, the
	// first time the run waits in such a lock; 0: not asked yet).
	reminders workflow.Version
	// ended: the run is returning (an error, a cancellation): the requests not served are
	// answered as late and every handler finishes before it returns.
	ended bool
}

// accountRequest is an update waiting for the main coroutine, and then its answer.
type accountRequest struct {
	name     string
	self     SelfServiceRequest
	identity IdentityWorkflowInput
	decision SpecialistDecision
	at       time.Time // when the request was made (the specialist request's time)
	done     bool
	result   AccountStatus
	err      error
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
	r.info = func() *workflow.Info { return workflow.GetInfo(ctx) }
	if err := r.handlers(ctx); err != nil {
		return err
	}
	err := r.run(ctx)
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) { // every handler has finished already (continueAsNew)
		return err
	}
	r.end(ctx)
	return err
}

// end lets every handler finish before the run returns on an error or a cancellation:
// the requests not served are answered as late (409 with the account's status), and the
// handlers are waited for on a disconnected context, so a cancelled run answers too.
func (r *account) end(ctx workflow.Context) {
	r.ended = true
	for _, q := range r.requests {
		q.result, q.err, q.done = r.status(), errLate(q.name+": the account's workflow stopped before taking it", r.st.Status, r.st.Label), true
	}
	r.requests = nil
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
}

// run applies events, updates and timers until the run continues as new (the error
// says so) or stops on an error.
func (r *account) run(ctx workflow.Context) error {
	in := r.in
	// Events are taken off the channel only here, on the main coroutine: a receiving
	// goroutine could hold an event the moment the run continues as new, and lose it.
	// Updates are recorded by their handlers and acted on here too.
	events := workflow.GetSignalChannel(ctx, AccountSignalEvent)
	for {
		// Apply what arrived, then wait for more or for the next deadline.
		r.drain(events)
		if err := r.apply(ctx); err != nil {
			return err
		}
		r.serve(ctx)
		if err := r.identityDone(ctx); err != nil {
			return err
		}
		if (r.handled >= in.Policy.ContinueAfter || workflow.GetInfo(ctx).GetContinueAsNewSuggested()) && !r.child {
			if done, err := r.continueAsNew(ctx, events); done || err != nil {
				return err
			}
			continue // an identity re-verification started meanwhile: this run waits for it
		}
		wait, hasTimer := r.nextDeadline(ctx)
		cond := func() bool {
			return len(r.pending) > 0 || events.Len() > 0 || len(r.requests) > 0 || r.identity != nil
		}
		if hasTimer {
			ok, err := workflow.AwaitWithTimeout(ctx, wait, cond)
			if err != nil {
				return err
			}
			if !ok {
				r.handled++ // a timer fired
			}
		} else if err := workflow.Await(ctx, cond); err != nil {
			return err
		}
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
	out := AccountStatus{AccountState: r.st, OpenPaths: []string{}, HandledThisRun: r.handled}
	if r.info != nil {
		out.HistoryLength = r.info().GetCurrentHistoryLength()
	}
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
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateSelfService,
		func(ctx workflow.Context, req SelfServiceRequest) (AccountStatus, error) {
			return r.enqueue(ctx, &accountRequest{name: AccountUpdateSelfService, self: req})
		},
		workflow.UpdateHandlerOptions{Validator: func(req SelfServiceRequest) error {
			if req.FullName == "" || req.PassportSeries == "" {
				return invalid("full_name and passport_series are required")
			}
			return r.canSelfService()
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateIdentity,
		func(ctx workflow.Context, in IdentityWorkflowInput) (AccountStatus, error) {
			return r.enqueue(ctx, &accountRequest{name: AccountUpdateIdentity, identity: in})
		},
		workflow.UpdateHandlerOptions{Validator: func(in IdentityWorkflowInput) error {
			if in.CaseID == "" {
				return invalid("case_id: required")
			}
			if in.Method == contract.MethodESignature && len(in.Submission.Certificate) == 0 {
				return invalid("certificate: the esignature method needs the certificate with its proof of possession")
			}
			if err := esignProofMissing(in.Submission, in.CaseID); err != nil {
				return err
			}
			return r.canStartIdentity()
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateSpecialist,
		func(ctx workflow.Context, req SpecialistRequest) (AccountStatus, error) {
			return r.enqueue(ctx, &accountRequest{name: AccountUpdateSpecialist, at: req.At})
		},
		workflow.UpdateHandlerOptions{Validator: func(SpecialistRequest) error { return r.canAskSpecialist() }}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, AccountUpdateDecision,
		func(ctx workflow.Context, d SpecialistDecision) (AccountStatus, error) {
			return r.enqueue(ctx, &accountRequest{name: AccountUpdateDecision, decision: d})
		},
		workflow.UpdateHandlerOptions{Validator: func(d SpecialistDecision) error {
			if d.Specialist == "" {
				return invalid("specialist: must name the specialist")
			}
			if !d.Approve && d.Reason == "" {
				return invalid("reason: a refusal must give the reason the taxpayer will see")
			}
			return r.canDecide()
		}})
}

// The checks of each path, in the validator and again when the main coroutine acts (the
// state may have moved between the two). A path the lock does not (or no longer) offer
// is refused with the account's status (a late message: 409 with current_status).
// The lock offers a path when accountStates lists the path's update (path) from its status.
func (r *account) locked(what, path string) error {
	if r.ended {
		return errLate(what+": the account's workflow is stopping", r.st.Status, r.st.Label)
	}
	if accountStates.takes(r.st.Status, path) {
		return nil
	}
	return errLate(what+": the account is not locked in a way this path can lift", r.st.Status, r.st.Label)
}

func (r *account) canSelfService() error {
	if err := r.locked("self-service unblock", AccountUpdateSelfService); err != nil {
		return err
	}
	if r.st.TriesLeft <= 0 {
		return errLate("no self-service tries left: ask a specialist", r.st.Status, r.st.Label)
	}
	return nil
}

func (r *account) canStartIdentity() error {
	if err := r.locked("identity re-verification", AccountUpdateIdentity); err != nil {
		return err
	}
	if r.child {
		return errLate("an identity re-verification is already in progress", r.st.Status, r.st.Label)
	}
	return nil
}

func (r *account) canAskSpecialist() error {
	if err := r.locked("specialist request", AccountUpdateSpecialist); err != nil {
		return err
	}
	if r.st.SpecialistDue != nil {
		return errLate("a specialist has already been asked", r.st.Status, r.st.Label)
	}
	return nil
}

func (r *account) canDecide() error {
	return r.locked("specialist decision", AccountUpdateDecision)
}

// enqueue records an update for the main coroutine and waits for its answer. The main
// coroutine serves every request before the run continues as new; a cancellation ends
// the wait with the run.
func (r *account) enqueue(ctx workflow.Context, q *accountRequest) (AccountStatus, error) {
	if r.ended {
		return r.status(), errLate(q.name+": the account's workflow is stopping", r.st.Status, r.st.Label)
	}
	r.handled++
	r.requests = append(r.requests, q)
	// On a disconnected context: a cancelled run still answers (end answers what it did
	// not serve).
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.Await(dctx, func() bool { return q.done }); err != nil {
		return r.status(), err
	}
	return q.result, q.err
}

// serve acts on the recorded updates, in the order they came. A request's failure is its
// caller's answer, not the account's: the workflow goes on.
func (r *account) serve(ctx workflow.Context) {
	// A cancelled run takes no request more: end answers each as late.
	for len(r.requests) > 0 && ctx.Err() == nil {
		q := r.requests[0]
		r.requests = r.requests[1:]
		var err error
		switch q.name {
		case AccountUpdateSelfService:
			if err = r.canSelfService(); err == nil {
				err = r.selfService(ctx, q.self)
			}
		case AccountUpdateIdentity:
			if err = r.canStartIdentity(); err == nil {
				err = r.startIdentity(ctx, q.identity)
			}
		case AccountUpdateSpecialist:
			if err = r.canAskSpecialist(); err == nil {
				err = r.requestSpecialist(ctx, q.at)
			}
		case AccountUpdateDecision:
			if err = r.canDecide(); err == nil {
				err = r.decide(ctx, q.decision)
			}
		}
		if temporal.IsCanceledError(err) { // cut off by the run's cancellation: it did not take effect
			err = errLate(q.name+": the account's workflow was cancelled before it took effect", r.st.Status, r.st.Label)
		}
		q.result, q.err, q.done = r.status(), err, true
	}
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
		return r.lockForFailures(ctx, e.At)
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
// The lock runs from the failure that caused it (the event's time, stamped by the API),
// so that a reset run that decides the same lock writes the same Until.
func (r *account) lockForFailures(ctx workflow.Context, at time.Time) error {
	now := causeTime(ctx, at)
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
	if to != AccountAwaitingIdentity && to != AccountAwaitingSpecialist {
		r.st.RemindAt = nil // a new wait of that kind gets its own reminder cadence
	}
	if len(r.st.History) > 50 {
		r.st.History = r.st.History[len(r.st.History)-50:]
	}
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
	if r.remindsLock(ctx) {
		if r.st.RemindAt == nil {
			at := now.Add(r.in.Policy.lockedReminder())
			r.st.RemindAt = &at
		}
		if next == nil || r.st.RemindAt.Before(*next) {
			next = r.st.RemindAt
		}
	}
	if next == nil {
		return 0, false
	}
	return max(next.Sub(now), 0), true
}

// remindsLock tells whether the account waits in a lock that only the taxpayer or a
// specialist can lift, and this run reminds such locks (change locked-account-reminder).
func (r *account) remindsLock(ctx workflow.Context) bool {
	if r.st.Status != AccountAwaitingIdentity && r.st.Status != AccountAwaitingSpecialist {
		return false
	}
	if r.reminders == 0 {
		r.reminders = workflow.GetVersion(ctx, changeLockedAccountReminder, workflow.DefaultVersion, 1)
	}
	return r.reminders == 1
}

func (r *account) deadlines(ctx workflow.Context) error {
	now := workflow.Now(ctx)
	if r.st.RemindAt != nil && r.remindsLock(ctx) && !now.Before(*r.st.RemindAt) {
		// The next reminder keeps the cadence from the lock, not from this wake-up.
		next := r.st.RemindAt.Add(r.in.Policy.lockedReminder())
		r.st.RemindAt = &next
		if err := r.j.auditNotify(ctx, "lock_reminded", "system", "the account is still locked: "+clip(r.st.Reason),
			"taxpayer", "account.still_locked", "status", r.st.Status); err != nil {
			return err
		}
	}
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

func (r *account) selfService(ctx workflow.Context, req SelfServiceRequest) error {
	var a *activities.Activities
	var res contract.UnblockCheckResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckUnblock,
		contract.UnblockCheckInput{INN: r.in.INN, FullName: req.FullName, PassportSeries: req.PassportSeries}).Get(ctx, &res)
	if err != nil {
		return err
	}
	if err := r.canSelfService(); err != nil { // lifted (or locked harder) during the check
		return err
	}
	if res.Match {
		return r.unlock(ctx, "taxpayer", "self-service unblock: INN, full name and passport series matched", true)
	}
	r.st.TriesLeft--
	if err := r.j.audit(ctx, "self_service_refused", "taxpayer", fmt.Sprintf("data did not match; %d tries left", r.st.TriesLeft)); err != nil {
		return err
	}
	if r.st.TriesLeft <= 0 {
		r.st.Until = nil
		if err := r.lock(ctx, AccountAwaitingSpecialist, "self-service tries exhausted: only a specialist may unblock"); err != nil {
			return err
		}
		return temporal.NewApplicationError("the data does not match the registry; no tries left: only a specialist may unblock now", fnerr.TypeRejected)
	}
	return temporal.NewApplicationError(fmt.Sprintf("the data does not match the registry; %d tries left", r.st.TriesLeft), fnerr.TypeRejected)
}

// startIdentity starts the identity re-verification as a child workflow. Its result is
// recorded by a goroutine and acted on by the main coroutine (identityDone).
func (r *account) startIdentity(ctx workflow.Context, in IdentityWorkflowInput) error {
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
		r.child, r.st.IdentityCase = false, ""
		return err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		var st IdentityStatus
		if err := child.Get(ctx, &st); err != nil {
			st = IdentityStatus{CaseID: in.CaseID, Status: IdentityRejected, Reasons: []string{"the verification failed"}}
		}
		r.identity = &st
	})
	return r.j.audit(ctx, "identity_started", "taxpayer", in.CaseID)
}

// identityDone acts on the re-verification's result, once it has come.
func (r *account) identityDone(ctx workflow.Context) error {
	if r.identity == nil {
		return nil
	}
	st := *r.identity
	r.identity, r.child = nil, false
	r.handled++
	if r.st.Status != AccountAwaitingIdentity {
		return nil
	}
	if st.Status == IdentityVerified {
		return r.unlock(ctx, "system", "identity confirmed again ("+st.CaseID+")", true)
	}
	r.st.IdentityCase = ""
	return r.j.audit(ctx, "identity_failed", "system", st.Status)
}

// requestSpecialist: the specialist's 24 hours run from the request (its time, stamped by
// the API), so that a reset run that takes the same request writes the same due time.
func (r *account) requestSpecialist(ctx workflow.Context, at time.Time) error {
	due := causeTime(ctx, at).Add(r.in.Policy.SpecialistSLA)
	r.st.SpecialistDue = &due
	return r.j.auditNotify(ctx, "specialist_requested", "taxpayer", "due "+due.UTC().Format(time.RFC3339),
		"reviewer", "account.specialist_requested")
}

func (r *account) decide(ctx workflow.Context, d SpecialistDecision) error {
	if d.Approve {
		return r.unlock(ctx, d.Specialist, "unblocked by a specialist: "+d.Reason, true)
	}
	r.st.SpecialistDue, r.st.Escalated = nil, false
	r.st.Reason = d.Reason
	return r.j.auditNotify(ctx, "specialist_refused", d.Specialist, d.Reason, "taxpayer", "account.unblock_refused", "reason", d.Reason)
}

// drain moves every event waiting on the channel to the pending queue.
func (r *account) drain(ch workflow.ReceiveChannel) {
	for {
		var e AccountEvent
		if !ch.ReceiveAsync(&e) {
			return
		}
		r.handled++
		r.pending = append(r.pending, e)
	}
}

// continueAsNew starts a fresh run with the whole state, the de-duplication window and
// every event received but not yet applied. Updates that came meanwhile are served first
// (their handlers wait for this coroutine), then every handler finishes and the channel
// is drained once more. done is false when a served update started an identity
// re-verification: the run waits for its result before it continues as new.
func (r *account) continueAsNew(ctx workflow.Context, events workflow.ReceiveChannel) (done bool, err error) {
	for {
		r.serve(ctx)
		if r.child {
			return false, nil
		}
		if len(r.requests) == 0 && workflow.AllHandlersFinished(ctx) {
			break
		}
		if err := workflow.Await(ctx, func() bool { return len(r.requests) > 0 || workflow.AllHandlersFinished(ctx) }); err != nil {
			return true, err
		}
	}
	r.drain(events) // what arrived while handlers finished
	st := r.st
	st.JournalSeq = r.j.Seq()
	next := r.in
	next.State, next.Pending, next.Seen = &st, r.pending, r.st.RecentEventIDs
	return true, workflow.NewContinueAsNewError(ctx, Account, next)
}
