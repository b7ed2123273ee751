package workflows

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/obligations"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/duedates"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func sweepEnv(db *storetest.DB) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflow(Sweep)
	registerActivities(env, realHandlers(db, storetest.NewS3()))
	return env
}

func obligation(id string, due time.Time) contract.Obligation {
	return contract.Obligation{ObligationID: id, INN: testINN, Tax: "property", Amount: 250_000,
		DueDate: due.Format(time.DateOnly), DueMonth: due.Format("2006-01")}
}

// A week swept, then the same week backfilled: every obligation gets exactly one
// reminder per lead time.
func TestReminderBackfillOverAWeekSendsNoDuplicates(t *testing.T) {
	db, _ := newStores()
	tp := registered()
	tp.Channels = []string{"email", "sms"}
	mustPut(t, db, "taxpayers", "inn", tp)
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	want := 0
	for i := 0; i < 45; i++ { // one obligation due each day for 45 days
		due := start.AddDate(0, 0, i)
		mustPut(t, db, "obligations", "obligation_id", obligation(fmt.Sprintf("ob-%02d", i), due))
		for _, lead := range []int{30, 7, 1} {
			if off := i - lead; off >= 0 && off < 7 { // swept days are start .. start+6
				want++
			}
		}
	}
	sweepWeek := func() (sent, dups int) {
		for d := 0; d < 7; d++ {
			env := sweepEnv(db)
			env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobReminders, Date: start.AddDate(0, 0, d).Format(time.DateOnly), LeadDays: []int{30, 7, 1}})
			var res contract.SweepResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			sent, dups = sent+res.Sent, dups+res.Duplicates
		}
		return
	}
	sent, dups := sweepWeek()
	if sent != want || dups != 0 {
		t.Fatalf("first pass: %d sent, %d duplicates; want %d sent", sent, dups, want)
	}
	sent, dups = sweepWeek() // the backfill
	if sent != 0 || dups != want {
		t.Fatalf("backfill: %d sent, %d duplicates; want 0 and %d", sent, dups, want)
	}
	items := db.Items("outbox")
	if len(items) != want {
		t.Fatalf("%d notifications in the outbox, want %d", len(items), want)
	}
	var n contract.Notification
	_ = store.Unmarshal(items[0], &n)
	if len(n.Channels) != 2 || n.Channels[0] != "email" || n.INN != testINN {
		t.Fatalf("notification %+v", n)
	}
}

// Large sweeps page through the index and continue as new with their cursor and totals.
func TestSweepPagesAndContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflow(Sweep)
	var a *activities.Activities
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.SweepReminders, mock.Anything, mock.Anything).Return(func(_ context.Context, p contract.SweepPage) (contract.SweepResult, error) {
		calls++
		return contract.SweepResult{Processed: 500, Sent: 500, Cursor: fmt.Sprintf("page-%d", calls)}, nil
	})
	env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobReminders, Date: "2026-12-01", LeadDays: []int{30}, PagesPerRun: 3})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next SweepWorkflowInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || next.Cursor != "page-3" || next.Totals.Sent != 1500 || next.Date != "2026-12-01" || next.Lead != 0 {
		t.Fatalf("%d calls, carried %+v", calls, next)
	}
}

func TestSweepInactiveAndRetention(t *testing.T) {
	db, s3 := newStores()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	old := registered()
	old.LastActivity = "2025-10-01"
	mustPut(t, db, "taxpayers", "inn", old)
	s3.PutAt("generated/2ndfl-old.pdf", pdfBytes, day.AddDate(0, 0, -31))
	s3.PutAt("generated/2ndfl-new.pdf", pdfBytes, day.AddDate(0, 0, -3))
	s3.PutAt("documents/keep.pdf", pdfBytes, day.AddDate(-1, 0, 0))
	run := func(in SweepWorkflowInput) contract.SweepResult {
		var s testsuite.WorkflowTestSuite
		env := newTestEnv(&s)
		env.RegisterWorkflow(Sweep)
		registerActivities(env, realHandlers(db, s3))
		env.ExecuteWorkflow(Sweep, in)
		var res contract.SweepResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(SweepWorkflowInput{Job: JobInactive, Date: day.Format(time.DateOnly), GraceDays: 60}); res.Sent != 1 || res.Flagged != 0 {
		t.Fatalf("first inactive sweep: %+v", res)
	}
	if res := run(SweepWorkflowInput{Job: JobInactive, Date: day.AddDate(0, 0, 30).Format(time.DateOnly), GraceDays: 60}); res.Sent != 0 || res.Flagged != 0 {
		t.Fatalf("within the grace period: %+v", res)
	}
	if res := run(SweepWorkflowInput{Job: JobInactive, Date: day.AddDate(0, 0, 61).Format(time.DateOnly), GraceDays: 60}); res.Flagged != 1 {
		t.Fatalf("after the grace period: %+v", res)
	}
	var tp contract.Taxpayer
	_ = store.Unmarshal(db.Items("taxpayers")[0], &tp)
	if tp.DeletionFlaggedAt == nil || tp.INN != testINN {
		t.Fatalf("not flagged, or deleted: %+v", tp)
	}
	if res := run(SweepWorkflowInput{Job: JobRetention, Date: day.Format(time.DateOnly), KeepDays: 30}); res.Flagged != 1 || res.Processed != 2 {
		t.Fatalf("retention: %+v", res)
	}
	if _, ok := s3.Objects["generated/2ndfl-old.pdf"]; ok {
		t.Fatal("an expired generated document is still there")
	}
	if _, ok := s3.Objects["generated/2ndfl-new.pdf"]; !ok {
		t.Fatal("a fresh generated document was removed")
	}
}

// A store that stays down exhausts the activity's retries and fails the run, visibly.
func TestSweepRetriesExhausted(t *testing.T) {
	db, _ := newStores()
	db.Err = errors.New("connection refused")
	env := sweepEnv(db)
	env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobReminders, Date: "2026-12-01", LeadDays: []int{7}})
	if appErr := activityCause(t, env.GetWorkflowError()); appErr.Type() != "InternalError" {
		t.Fatalf("got %v", appErr)
	}
}

// The inactivity sweep takes its months from the input (TAXFLOW_INACTIVE_MONTHS through
// the schedule): 6 months without activity gets the notice, where the default 12 would not.
func TestSweepInactiveMonthsFromTheInput(t *testing.T) {
	db, _ := newStores()
	tp := registered()
	tp.LastActivity = "2026-05-01"
	mustPut(t, db, "taxpayers", "inn", tp)
	for _, c := range []struct {
		months int
		sent   int
	}{{0, 0}, {12, 0}, {6, 1}} {
		env := sweepEnv(db)
		env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobInactive, Date: "2026-12-01", GraceDays: 60, InactiveMonths: c.months})
		var res contract.SweepResult
		if err := env.GetWorkflowResult(&res); err != nil || res.Sent != c.sent {
			t.Fatalf("%d months: %+v %v", c.months, res, err)
		}
	}
}

// Something creates the obligations the reminders read: the obligations job turns the
// ledger's charges of the last period into statutory obligations (Tax Code art. 228,
// 363, 397, 409; internal/duedates), paging with continue-as-new, and a second pass
// changes nothing.
func TestSweepObligationsFromTheLedger(t *testing.T) {
	db, s3 := newStores()
	for i, inn := range []string{testINN, "7707083893", "772754017540"} {
		mustPut(t, db, "ledger", "entry_id", contract.LedgerEntry{INN: inn, EntryID: "2025#property#1", Kind: "charge", Tax: "property",
			Period: 2025, Amount: int64(100_000 * (i + 1))})
	}
	schedule, err := duedates.Open("")
	if err != nil {
		t.Fatal(err)
	}
	handlers := realHandlers(db, s3)
	handlers[contract.FnObligationSweep] = fnHandler(obligations.Handler{DB: db, Ledger: "ledger", Obligations: "obligations", Schedule: schedule}.Sweep)
	run := func() contract.SweepResult {
		var s testsuite.WorkflowTestSuite
		env := newTestEnv(&s)
		env.RegisterWorkflow(Sweep)
		registerActivities(env, handlers)
		// the scheduled day, 2 March 2026 in Moscow: the period is 2025
		env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobObligations, Date: "2026-03-02"})
		var res contract.SweepResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(); res.Created != 3 || res.Processed != 3 {
		t.Fatalf("first pass: %+v", res)
	}
	items := db.Items("obligations")
	for _, item := range items {
		var o contract.Obligation
		_ = store.Unmarshal(item, &o)
		if o.DueDate != "2026-12-01" || o.Tax != "property" || o.Period != 2025 || o.Status != contract.ObligationDue {
			t.Fatalf("obligation %+v", o)
		}
	}
	if res := run(); res.Created != 0 || res.Duplicates != 3 || len(db.Items("obligations")) != 3 {
		t.Fatalf("second pass: %+v", res)
	}
}
