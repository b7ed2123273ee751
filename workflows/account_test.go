package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

type accHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	db      *storetest.DB
	seq     int
	updates int
}

func newAccHarness(t *testing.T) *accHarness {
	db, _ := newStores()
	return newAccHarnessOn(t, db)
}

// newAccHarnessOn runs over the given store: a next run sees what the last one wrote.
func newAccHarnessOn(t *testing.T, db *storetest.DB) *accHarness {
	h := &accHarness{t: t, db: db}
	tp := registered()
	tp.Confirmed = true
	tp.BankIdentified = true
	mustPut(t, h.db, "taxpayers", "inn", tp)
	var s testsuite.WorkflowTestSuite
	h.env = newTestEnv(&s)
	h.env.RegisterWorkflow(Account)
	h.env.RegisterWorkflow(IdentityVerification)
	registerActivities(h.env, realHandlers(h.db, storetest.NewS3()))
	return h
}

func accInput() AccountWorkflowInput {
	return AccountWorkflowInput{AccountID: "account-test", INN: testINN, Policy: DefaultAccountPolicy()}
}

// events sends n events of a type at the given time; ids are unique unless repeated.
func (h *accHarness) events(at time.Duration, typ string, n int) {
	var evs []AccountEvent
	for i := 0; i < n; i++ {
		h.seq++
		evs = append(evs, AccountEvent{EventID: fmt.Sprintf("e%d", h.seq), Type: typ})
	}
	h.env.RegisterDelayedCallback(func() {
		for _, e := range evs {
			h.env.SignalWorkflow(AccountSignalEvent, e)
		}
	}, at)
}

func (h *accHarness) query() AccountStatus {
	v, err := h.env.QueryWorkflow(AccountQueryStatus)
	if err != nil {
		h.t.Fatal(err)
	}
	var st AccountStatus
	_ = v.Get(&st)
	return st
}

// expect checks the state at a time.
func (h *accHarness) expect(at time.Duration, check func(AccountStatus)) {
	h.env.RegisterDelayedCallback(func() { check(h.query()) }, at)
}

func (h *accHarness) update(at time.Duration, name string, arg any, wantErr bool) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	h.env.RegisterDelayedCallback(func() {
		cb := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) {
			if !wantErr {
				h.t.Errorf("%s refused: %v", name, err)
			}
		}, OnComplete: func(_ any, err error) {
			if (err != nil) != wantErr {
				h.t.Errorf("%s: err %v, want error %v", name, err, wantErr)
			}
		}}
		if arg == nil {
			h.env.UpdateWorkflow(name, id, cb)
		} else {
			h.env.UpdateWorkflow(name, id, cb, arg)
		}
	}, at)
}

// run runs the account workflow until it is cancelled at end.
func (h *accHarness) run(in AccountWorkflowInput, end time.Duration) {
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, end)
	h.env.ExecuteWorkflow(Account, in)
}

func (h *accHarness) confirmed() bool {
	for _, item := range h.db.Items("taxpayers") {
		var tp contract.Taxpayer
		_ = store.Unmarshal(item, &tp)
		return tp.Confirmed
	}
	return false
}

// lockBurst is the failures that lock: more than the threshold ("more than five" [001:175]).
const lockBurst = 6

func TestAccountLocksAndLiftsItselfEscalating(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, lockBurst)
	h.expect(2*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending || st.Until == nil || st.TriesLeft != 3 || st.Label != "Временная блокировка" {
			t.Errorf("first lock: %+v", st.AccountState)
		}
	})
	h.expect(17*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive {
			t.Errorf("after 15 min: %s", st.Status)
		}
		// [004:27]: only a password change or an access recovery ends the confirmed mark
		if !h.confirmed() {
			t.Error("a lock that lifted by itself cleared the confirmed mark")
		}
	})
	h.events(20*time.Minute, contract.EventLoginFailed, lockBurst)
	h.expect(21*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending || len(st.Locks) != 2 {
			t.Errorf("second lock: %+v", st.AccountState)
		}
	})
	h.expect(50*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending {
			t.Errorf("the second lock lasts an hour: %s", st.Status)
		}
	})
	h.events(90*time.Minute, contract.EventLoginFailed, lockBurst)
	h.expect(3*time.Hour, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist || len(st.OpenPaths) != 1 || st.OpenPaths[0] != "specialist" {
			t.Errorf("third lock within 24 h: %+v %v", st.AccountState, st.OpenPaths)
		}
	})
	h.expect(48*time.Hour, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist {
			t.Errorf("a specialist-only lock lifted by itself: %s", st.Status)
		}
	})
	h.run(accInput(), 50*time.Hour)
}

func TestAccountSuccessResetsAndDuplicatesCountOnce(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, 4)
	h.events(2*time.Minute, contract.EventLoginSucceeded, 1)
	h.events(3*time.Minute, contract.EventLoginFailed, 4)
	// the same four events again: de-duplicated by id
	h.env.RegisterDelayedCallback(func() {
		for i := h.seq - 3; i <= h.seq; i++ {
			h.env.SignalWorkflow(AccountSignalEvent, AccountEvent{EventID: fmt.Sprintf("e%d", i), Type: contract.EventLoginFailed})
		}
	}, 4*time.Minute)
	h.expect(5*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || st.Failures != 4 || st.EventsSeen != 9 {
			t.Errorf("got %+v", st.AccountState)
		}
	})
	h.run(accInput(), time.Hour)
}

func TestAccountSelfService(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, lockBurst)
	h.update(2*time.Minute, AccountUpdateSelfService, SelfServiceRequest{FullName: "Семенов Иван Петрович", PassportSeries: "4508"}, true)
	h.expect(3*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending || st.TriesLeft != 2 {
			t.Errorf("after a wrong try: %+v", st.AccountState)
		}
	})
	h.update(4*time.Minute, AccountUpdateSelfService, SelfServiceRequest{FullName: "семёнов  иван петрович", PassportSeries: "45 09"}, false)
	h.expect(5*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || h.confirmed() {
			t.Errorf("after the right data: %s, confirmed %v", st.Status, h.confirmed())
		}
	})
	h.update(6*time.Minute, AccountUpdateSelfService, SelfServiceRequest{FullName: "x", PassportSeries: "1111"}, true) // not locked
	h.run(accInput(), time.Hour)
}

func TestAccountSelfServiceTriesExhausted(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, lockBurst)
	for i := 0; i < 3; i++ {
		h.update(time.Duration(2+i)*time.Minute, AccountUpdateSelfService, SelfServiceRequest{FullName: "Петров Пётр", PassportSeries: "0000"}, true)
	}
	h.expect(10*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist {
			t.Errorf("after three wrong tries: %+v", st.AccountState)
		}
	})
	h.expect(2*time.Hour, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist {
			t.Errorf("lifted by itself: %s", st.Status)
		}
	})
	h.run(accInput(), 3*time.Hour)
}

func TestAccountSuspiciousActivityNeedsIdentity(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventSuspicious, 1)
	h.expect(2*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAwaitingIdentity {
			t.Errorf("got %s", st.Status)
		}
	})
	h.update(3*time.Minute, AccountUpdateSelfService, SelfServiceRequest{FullName: "Семенов Иван Петрович", PassportSeries: "4509"}, true)
	in := IdentityWorkflowInput{CaseID: "identity-0c6f6f9e-0000-4000-8000-0000000000aa", Method: contract.MethodBank,
		Submission: IdentitySubmission{Person: person()}, Policy: DefaultIdentityPolicy()}
	h.update(4*time.Minute, AccountUpdateIdentity, in, false)
	h.expect(time.Hour, func(st AccountStatus) {
		if st.Status != AccountActive {
			t.Errorf("after identity confirmed: %+v", st.AccountState)
		}
		if h.confirmed() { // the re-verification is an access recovery [004:27]
			t.Error("the confirmed mark survived the re-verification")
		}
	})
	h.run(accInput(), 2*time.Hour)
}

func TestAccountSpecialistSLAAndDecision(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventDataIncorrect, 1)
	h.update(2*time.Minute, AccountUpdateSpecialist, nil, false)
	h.update(3*time.Minute, AccountUpdateSpecialist, nil, true) // asked already
	h.expect(30*time.Hour, func(st AccountStatus) {
		if !st.Escalated || st.Status != AccountAwaitingSpecialist {
			t.Errorf("after the 24 h SLA: %+v", st.AccountState)
		}
	})
	h.update(31*time.Hour, AccountUpdateDecision, SpecialistDecision{Approve: false, Specialist: "sp-1"}, true) // no reason
	h.update(32*time.Hour, AccountUpdateDecision, SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "data corrected"}, false)
	h.expect(33*time.Hour, func(st AccountStatus) {
		if st.Status != AccountActive || st.Escalated {
			t.Errorf("after the decision: %+v", st.AccountState)
		}
	})
	h.run(accInput(), 34*time.Hour)
}

func TestAccountContinuesAsNewWithItsState(t *testing.T) {
	h := newAccHarness(t)
	in := accInput()
	in.Policy.ContinueAfter = 10
	h.events(time.Minute, contract.EventLoginFailed, 3)
	h.events(time.Minute, contract.EventLoginSucceeded, 1)
	h.events(time.Minute, contract.EventLoginFailed, 8) // 12 events: the run ends after 10 applied
	h.env.ExecuteWorkflow(Account, in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next AccountWorkflowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.State == nil || next.State.EventsSeen+len(next.Pending) != 12 || len(next.Seen) != next.State.EventsSeen {
		t.Fatalf("carried: state %+v, %d pending, %d ids", next.State, len(next.Pending), len(next.Seen))
	}
	if next.State.JournalSeq < 1 {
		t.Fatalf("the journal's sequence was not carried: %d", next.State.JournalSeq)
	}
	// The next run, over the same store, applies what was pending.
	h2 := newAccHarnessOn(t, h.db)
	h2.seq = 100
	h2.expect(time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending || st.EventsSeen != 12 {
			t.Errorf("after continue-as-new: %+v", st.AccountState)
		}
	})
	// an id seen in the first run is still a duplicate
	h2.env.RegisterDelayedCallback(func() {
		h2.env.SignalWorkflow(AccountSignalEvent, AccountEvent{EventID: "e1", Type: contract.EventLoginFailed})
	}, 2*time.Minute)
	h2.expect(3*time.Minute, func(st AccountStatus) {
		if st.EventsSeen != 12 {
			t.Errorf("a duplicate across runs was applied: %d", st.EventsSeen)
		}
	})
	h2.run(next, time.Hour)
	// The lock lifted itself in the second run: its step follows the first run's in the
	// journal and in the projection, with no key used twice and none skipped.
	journal, err := audit.Journal(context.Background(), h.db, "audit", "account-test")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var changes []string
	for _, e := range journal {
		seqs = append(seqs, e.Seq)
		changes = append(changes, e.To)
	}
	last := next.State.JournalSeq + 1
	if len(journal) != int(last) || journal[len(journal)-1].Seq != last || changes[len(changes)-1] != AccountActive {
		t.Fatalf("journal steps %v, changes %v; want steps 1..%d ending active", seqs, changes, last)
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("journal steps %v: not 1..%d", seqs, last)
		}
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", "account-test")
	if rec.Version != last || rec.Status != AccountActive {
		t.Fatalf("projection %+v, want version %d active", rec, last)
	}
}

// "More than five" consecutive failed logins lock [001:175]: the fifth does not, the
// sixth does; a success in between starts the count again.
func TestAccountLocksOnSixthConsecutiveFailure001_175(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, 5)
	h.expect(2*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || st.Failures != 5 {
			t.Errorf("after five failures: %s, %d failures", st.Status, st.Failures)
		}
	})
	h.events(3*time.Minute, contract.EventLoginSucceeded, 1)
	h.events(4*time.Minute, contract.EventLoginFailed, 5)
	h.expect(5*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || st.Failures != 5 {
			t.Errorf("five more after a success: %s, %d failures", st.Status, st.Failures)
		}
	})
	h.events(6*time.Minute, contract.EventLoginFailed, 1)
	h.expect(7*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAutoUnlockPending || len(st.Locks) != 1 || !strings.Contains(st.Reason, "more than 5") {
			t.Errorf("after the sixth: %+v", st.AccountState)
		}
	})
	h.run(accInput(), time.Hour)
}

// The confirmed mark lasts until the password is changed or access is recovered
// [004:27]: a lock that lifts by itself keeps it, a specialist's unblock clears it.
func TestAccountConfirmedMarkKeptByAutoUnlockClearedBySpecialist004_27(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventLoginFailed, lockBurst)
	h.expect(20*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || !h.confirmed() {
			t.Errorf("after the lock lifted by itself: %s, confirmed %v", st.Status, h.confirmed())
		}
	})
	h.events(30*time.Minute, contract.EventDataIncorrect, 1)
	h.expect(31*time.Minute, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist || !h.confirmed() {
			t.Errorf("locked for a specialist: %s, confirmed %v", st.Status, h.confirmed())
		}
	})
	h.update(40*time.Minute, AccountUpdateDecision, SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "data corrected"}, false)
	h.expect(41*time.Minute, func(st AccountStatus) {
		if st.Status != AccountActive || h.confirmed() {
			t.Errorf("after the specialist's unblock: %s, confirmed %v", st.Status, h.confirmed())
		}
	})
	h.run(accInput(), time.Hour)
}

// sendAccount sends an update at a time and checks its result and error (checkOutcome);
// the test fails if the update is never answered.
func (h *accHarness) sendAccount(at time.Duration, name string, arg any, want msgOutcome) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	answered := false
	h.t.Cleanup(func() {
		if !answered {
			h.t.Errorf("update %s at %s never answered", name, at)
		}
	})
	h.env.RegisterDelayedCallback(func() {
		cb := &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { answered = true; checkOutcome(h.t, name, "", err, want) },
			OnComplete: func(v any, err error) {
				answered = true
				st, _ := v.(AccountStatus)
				checkOutcome(h.t, name, st.Status, err, want)
			}}
		if arg == nil {
			h.env.UpdateWorkflow(name, id, cb)
		} else {
			h.env.UpdateWorkflow(name, id, cb, arg)
		}
	}, at)
}

// Every message in every lock state: right, wrong and late (a path the lock does not, or
// no longer, offer), with the update's result and error asserted.
func TestAccountMessagesInEveryLockState(t *testing.T) {
	self := SelfServiceRequest{FullName: "Семенов Иван Петрович", PassportSeries: "4509"}
	identity := IdentityWorkflowInput{CaseID: "identity-0c6f6f9e-0000-4000-8000-0000000000ab", Method: contract.MethodBank,
		Submission: IdentitySubmission{Person: person()}, Policy: DefaultIdentityPolicy()}
	approve := SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "checked"}
	states := map[string]func(h *accHarness){
		AccountAutoUnlockPending:  func(h *accHarness) { h.events(time.Minute, contract.EventLoginFailed, lockBurst) },
		AccountAwaitingIdentity:   func(h *accHarness) { h.events(time.Minute, contract.EventSuspicious, 1) },
		AccountAwaitingSpecialist: func(h *accHarness) { h.events(time.Minute, contract.EventDataIncorrect, 1) },
		// the 15-minute lock lifted by itself before the message
		"unlocked": func(h *accHarness) { h.events(time.Minute, contract.EventLoginFailed, lockBurst) },
	}
	for _, c := range []struct {
		state, name string
		arg         any
		want        msgOutcome
	}{
		{AccountAutoUnlockPending, AccountUpdateSelfService, self, msgOutcome{status: AccountActive}},
		{AccountAutoUnlockPending, AccountUpdateSelfService, SelfServiceRequest{FullName: "Петров Пётр", PassportSeries: "0000"}, msgOutcome{wrong: "does not match"}},
		{AccountAutoUnlockPending, AccountUpdateSelfService, SelfServiceRequest{}, msgOutcome{wrong: "required"}},
		{AccountAutoUnlockPending, AccountUpdateIdentity, identity, msgOutcome{late: AccountAutoUnlockPending}},
		{AccountAutoUnlockPending, AccountUpdateSpecialist, nil, msgOutcome{status: AccountAutoUnlockPending}},
		{AccountAutoUnlockPending, AccountUpdateDecision, approve, msgOutcome{status: AccountActive}},
		{AccountAwaitingIdentity, AccountUpdateIdentity, identity, msgOutcome{status: AccountAwaitingIdentity}},
		{AccountAwaitingIdentity, AccountUpdateIdentity, IdentityWorkflowInput{}, msgOutcome{wrong: "case_id"}},
		{AccountAwaitingIdentity, AccountUpdateSelfService, self, msgOutcome{late: AccountAwaitingIdentity}},
		{AccountAwaitingIdentity, AccountUpdateSpecialist, nil, msgOutcome{status: AccountAwaitingIdentity}},
		{AccountAwaitingSpecialist, AccountUpdateDecision, approve, msgOutcome{status: AccountActive}},
		{AccountAwaitingSpecialist, AccountUpdateDecision, SpecialistDecision{Specialist: "sp-1"}, msgOutcome{wrong: "reason"}},
		{AccountAwaitingSpecialist, AccountUpdateSelfService, self, msgOutcome{late: AccountAwaitingSpecialist}},
		{AccountAwaitingSpecialist, AccountUpdateIdentity, identity, msgOutcome{late: AccountAwaitingSpecialist}},
		{"unlocked", AccountUpdateSelfService, self, msgOutcome{late: AccountActive}},
		{"unlocked", AccountUpdateSpecialist, nil, msgOutcome{late: AccountActive}},
		{"unlocked", AccountUpdateDecision, approve, msgOutcome{late: AccountActive}},
		{"unlocked", AccountUpdateIdentity, identity, msgOutcome{late: AccountActive}},
	} {
		t.Run(c.state+"/"+c.name+"/"+fmt.Sprint(c.want), func(t *testing.T) {
			h := newAccHarness(t)
			states[c.state](h)
			at := 5 * time.Minute
			if c.state == "unlocked" {
				at = 20 * time.Minute
			}
			h.expect(at-time.Minute, func(st AccountStatus) {
				if want := c.state; want != "unlocked" && st.Status != want || want == "unlocked" && st.Status != AccountActive {
					t.Errorf("the account is %s before the message, not %s", st.Status, c.state)
				}
			})
			h.sendAccount(at, c.name, c.arg, c.want)
			h.run(accInput(), time.Hour)
		})
	}
}

// Continue-as-new with messages in flight: the run ends after ContinueAfter things
// handled (events, updates, timers), serves the update that came with the last events,
// and carries every event and the specialist's request into the next run.
func TestAccountContinueAsNewWithMessagesInFlightLosesNothing(t *testing.T) {
	h := newAccHarness(t)
	in := accInput()
	in.Policy.ContinueAfter = 10
	h.events(time.Minute, contract.EventDataIncorrect, 1)
	// the update comes first, the events that cross the count with it
	h.sendAccount(2*time.Minute, AccountUpdateSpecialist, nil, msgOutcome{status: AccountAwaitingSpecialist})
	h.events(2*time.Minute, contract.EventLoginFailed, 9) // counted, though a locked account ignores them
	h.env.ExecuteWorkflow(Account, in)
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next AccountWorkflowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	// The test environment keeps no real history: HistoryLength is meaningful against a server.
	t.Logf("run 1: %d events and 1 update handled, %d carried pending, journal seq %d", next.State.EventsSeen, len(next.Pending), next.State.JournalSeq)
	if next.State == nil || next.State.EventsSeen+len(next.Pending) != 10 || next.State.Status != AccountAwaitingSpecialist ||
		next.State.SpecialistDue == nil || len(next.Seen) != next.State.EventsSeen {
		t.Fatalf("carried: state %+v, %d pending, %d ids", next.State, len(next.Pending), len(next.Seen))
	}
	h2 := newAccHarnessOn(t, h.db)
	h2.seq = 100
	h2.sendAccount(time.Minute, AccountUpdateSpecialist, nil, msgOutcome{late: AccountAwaitingSpecialist, wrong: "already been asked"})
	h2.sendAccount(2*time.Minute, AccountUpdateDecision, SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "data corrected"},
		msgOutcome{status: AccountActive})
	h2.expect(3*time.Minute, func(st AccountStatus) {
		t.Logf("run 2: %d handled, history length %d, journal seq %d", st.HandledThisRun, st.HistoryLength, st.JournalSeq)
		if st.Status != AccountActive || st.EventsSeen != 10 || st.JournalSeq <= next.State.JournalSeq {
			t.Errorf("after continue-as-new: %+v", st.AccountState)
		}
	})
	h2.run(next, time.Hour)
}

// Temporal's suggestion ends the run too, whatever the count.
func TestAccountContinuesAsNewWhenSuggested(t *testing.T) {
	h := newAccHarness(t)
	h.env.RegisterDelayedCallback(func() { h.env.SetContinueAsNewSuggested(true) }, time.Minute)
	h.events(time.Minute, contract.EventLoginFailed, 1)
	h.env.ExecuteWorkflow(Account, accInput())
	var can *workflow.ContinueAsNewError
	if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next AccountWorkflowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.State == nil || next.State.EventsSeen+len(next.Pending) != 1 || next.State.Failures+len(next.Pending) != 1 {
		t.Fatalf("carried %+v, %d pending", next.State, len(next.Pending))
	}
}

// A lock that only a specialist (or the taxpayer's identity) can lift has no end of its
// own: the taxpayer is reminded of it every LockedReminder (30 days), on the lock's
// cadence, until it is lifted; then the reminders stop.
func TestAccountLockedWaitRemindsTheTaxpayer(t *testing.T) {
	h := newAccHarness(t)
	reminders := func() []time.Time {
		var out []time.Time
		for _, item := range h.db.Items("outbox") {
			var n contract.Notification
			if err := store.Unmarshal(item, &n); err != nil {
				t.Fatal(err)
			}
			if n.Template == "account.still_locked" {
				out = append(out, n.At)
			}
		}
		return out
	}
	day := 24 * time.Hour
	h.events(time.Minute, contract.EventDataIncorrect, 1)
	h.expect(29*day, func(st AccountStatus) {
		if st.Status != AccountAwaitingSpecialist || len(reminders()) != 0 || st.RemindAt == nil {
			t.Errorf("day 29: %s, %d reminders, remind at %v", st.Status, len(reminders()), st.RemindAt)
		}
	})
	h.expect(30*day+2*time.Minute, func(st AccountStatus) {
		if n := len(reminders()); n != 1 {
			t.Errorf("day 30: %d reminders, want 1 (the timer fired)", n)
		}
	})
	h.expect(60*day+2*time.Minute, func(st AccountStatus) {
		if n := len(reminders()); n != 2 {
			t.Errorf("day 60: %d reminders, want 2", n)
		}
	})
	h.update(61*day, AccountUpdateDecision, SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "data corrected"}, false)
	h.expect(95*day, func(st AccountStatus) {
		if st.Status != AccountActive || st.RemindAt != nil || len(reminders()) != 2 {
			t.Errorf("after the decision: %s, remind at %v, %d reminders (want 2)", st.Status, st.RemindAt, len(reminders()))
		}
	})
	h.run(accInput(), 96*day)
}

// An update the account has queued when its run stops (here: cancelled in the same
// instant) is answered as late, with the account's status — not dropped, not a
// cancellation error — and the run waits for its handler before it returns.
func TestAccountStoppedWithAQueuedUpdateAnswersItLate(t *testing.T) {
	h := newAccHarness(t)
	h.events(time.Minute, contract.EventDataIncorrect, 1)
	answered := false
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(AccountUpdateDecision, "late-1", &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) {
				answered = true
				checkOutcome(t, "decision (rejected)", "", err, msgOutcome{late: AccountAwaitingSpecialist})
			},
			OnComplete: func(v any, err error) {
				answered = true
				checkOutcome(t, "decision", "", err, msgOutcome{late: AccountAwaitingSpecialist})
			}}, SpecialistDecision{Approve: true, Specialist: "sp-1", Reason: "checked"})
		h.env.CancelWorkflow()
	}, 10*time.Minute)
	h.run(accInput(), time.Hour)
	if !answered {
		t.Fatal("the queued update got no answer")
	}
	if st := h.query(); st.Status != AccountAwaitingSpecialist {
		t.Fatalf("status %s", st.Status)
	}
}

// A reset run decides the same lock later than the run it was reset from (its workflow
// tasks start later): the lock's end runs from the failure that caused it — the event's
// time, which the API stamps — not from the task, so the reset run writes the same steps
// (duplicates), never KeyReused, and the journal is unchanged.
func TestAccountLockDecidedLaterWritesTheSameStep(t *testing.T) {
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	failedAt := start.Add(30 * time.Second)
	send := func(h *accHarness, at time.Duration) {
		var evs []AccountEvent
		for i := 0; i < DefaultAccountPolicy().Threshold+1; i++ {
			evs = append(evs, AccountEvent{EventID: fmt.Sprintf("f%d", i), Type: contract.EventLoginFailed, At: failedAt})
		}
		h.env.RegisterDelayedCallback(func() {
			for _, e := range evs {
				h.env.SignalWorkflow(AccountSignalEvent, e)
			}
		}, at)
	}
	journal := func(h *accHarness) string {
		j, err := audit.Journal(context.Background(), h.db, "audit", "account-test")
		if err != nil {
			t.Fatal(err)
		}
		return journalString(j)
	}
	first := newAccHarness(t)
	first.env.SetStartTime(start)
	send(first, time.Minute)
	first.run(accInput(), 5*time.Minute)
	before := journal(first)
	rec, _, _ := cases.Get(context.Background(), first.db, "cases", "account-test")
	if rec.Status != AccountAutoUnlockPending || !rec.Deadline.Equal(failedAt.Add(DefaultAccountPolicy().LockPeriods[0])) {
		t.Fatalf("first run: projection %+v", rec)
	}

	again := newAccHarnessOn(t, first.db)
	again.env.SetStartTime(start)
	send(again, 3*time.Minute) // the same events, taken two minutes later
	again.run(accInput(), 5*time.Minute)
	if err := again.env.GetWorkflowError(); err != nil && strings.Contains(err.Error(), "KeyReused") {
		t.Fatalf("the run decided later: %v", err)
	}
	if after := journal(again); after != before {
		t.Fatalf("the journal changed:\n%s\n%s", before, after)
	}
}
