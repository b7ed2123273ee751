package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/events"
)

// The relay job invokes the relay with its wait, keeps going after an invocation that
// failed (after a pause, a timer), and continues as new after its iterations with the
// totals carried.
func TestEventRelayLoopsAndContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(EventRelay)
	var a *activities.Activities
	env.RegisterActivity(a.RelayEvents)
	calls := 0
	env.OnActivity(a.RelayEvents, mock.Anything, mock.Anything).Return(func(_ context.Context, in events.RelayInput) (events.RelayResult, error) {
		calls++
		if in.WaitMillis != 20_000 {
			t.Errorf("wait %d ms", in.WaitMillis)
		}
		if calls == 2 {
			return events.RelayResult{}, temporal.NewNonRetryableApplicationError("the table is down", "Test", nil)
		}
		return events.RelayResult{Relayed: 3}, nil
	})
	slept := false
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { slept = slept || d == relayBackoff })
	env.ExecuteWorkflow(EventRelay, EventRelayInput{Iterations: 4, Relayed: 10})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next EventRelayInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if calls != 4 || next.Relayed != 10+9 || next.Failures != 1 || next.Iterations != 4 || !slept {
		t.Fatalf("calls %d, carried %+v, slept %v", calls, next, slept)
	}
}
