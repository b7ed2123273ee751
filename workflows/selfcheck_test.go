package workflows

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// inProcess wires the real function handlers, in process, over an in-memory store.
func inProcess() (*activities.Activities, *storetest.DB) {
	db := storetest.New(map[string]storetest.Key{
		"taxflow-audit":       {PK: "case_id", SK: "entry_id"},
		"taxflow-idempotency": {PK: "key"},
	})
	deps := fn.Deps{Config: config.Config{Prefix: "taxflow"}, DynamoDB: db}
	return &activities.Activities{Invoker: invoker.NewInProcess(catalog.Handlers(deps))}, db
}

func TestSelfCheckWalksThePath(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	acts, db := inProcess()
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(SelfCheck, SelfCheckWorkflowInput{Probe: contract.SelfCheckInput{Key: "k1"}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SelfCheckWorkflowResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Attempt != 1 || res.JournalWrites != 1 || res.Duplicate {
		t.Fatalf("got %+v", res)
	}
	if db.Writes != 2 { // the attempt counter and the journal entry
		t.Fatalf("writes=%d", db.Writes)
	}
}

func TestSelfCheckBusinessErrorIsNotRetried(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	acts, db := inProcess()
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(SelfCheck, SelfCheckWorkflowInput{Probe: contract.SelfCheckInput{Key: "k2", Fail: "Rejected"}})
	appErr := activityCause(t, env.GetWorkflowError())
	if appErr.Type() != "Rejected" || !appErr.NonRetryable() {
		t.Fatalf("want non-retryable Rejected, got %v", appErr)
	}
	if db.Writes != 1 { // one attempt counted, no retry, no journal entry
		t.Fatalf("writes=%d, want 1", db.Writes)
	}
}

func TestSelfCheckRetriesTransientFailureThenGivesUp(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	acts, db := inProcess()
	db.Err = errors.New("connection refused")
	env.RegisterActivity(acts)
	env.ExecuteWorkflow(SelfCheck, SelfCheckWorkflowInput{Probe: contract.SelfCheckInput{Key: "k3"}})
	appErr := activityCause(t, env.GetWorkflowError())
	if appErr.Type() != "InternalError" || appErr.NonRetryable() {
		t.Fatalf("want retryable InternalError after retries, got %v", appErr)
	}
}

// activityCause returns the application error an activity failed with.
func activityCause(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var actErr *temporal.ActivityError
	if !errors.As(err, &actErr) {
		t.Fatalf("want an activity error, got %v", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(actErr.Unwrap(), &appErr) {
		t.Fatalf("want an application error inside, got %v", actErr.Unwrap())
	}
	return appErr
}

func TestBareRunsTheShape(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	acts, _ := inProcess()
	env.RegisterActivity(acts)
	calls := 0
	env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { calls++ })
	env.ExecuteWorkflow(Bare, BareWorkflowInput{Shape: []int{1, 3, 2}})
	if err := env.GetWorkflowError(); err != nil || calls != 6 {
		t.Fatalf("err %v, %d activities, want 6", err, calls)
	}
}
