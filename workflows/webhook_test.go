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
	"github.com/taxflow/taxflow/internal/contract"
)

// rounds answers the workflow's rounds from a script; after it, "enabled" and nothing done.
type rounds struct {
	script []func() (contract.WebhookDeliverResult, error)
	calls  int
	inputs []contract.WebhookDeliverInput
}

func (r *rounds) DeliverWebhooks(_ context.Context, in contract.WebhookDeliverInput) (contract.WebhookDeliverResult, error) {
	r.inputs = append(r.inputs, in)
	r.calls++
	if r.calls <= len(r.script) {
		return r.script[r.calls-1]()
	}
	return contract.WebhookDeliverResult{Status: "enabled"}, nil
}

func webhookEnv(r *rounds) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(WebhookEndpoint)
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.DeliverWebhooks, mock.Anything, mock.Anything).Return(r.DeliverWebhooks)
	return env
}

func ok(status string, delivered int) func() (contract.WebhookDeliverResult, error) {
	return func() (contract.WebhookDeliverResult, error) {
		return contract.WebhookDeliverResult{Status: status, Delivered: delivered, Attempts: delivered}, nil
	}
}

// Rounds follow one another until one finds the endpoint deleted; the totals add up and
// the policy reaches every round.
func TestWebhookEndpointRunsRoundsUntilDeleted(t *testing.T) {
	r := &rounds{script: []func() (contract.WebhookDeliverResult, error){ok("enabled", 2), ok("enabled", 3), ok("deleted", 0)}}
	env := webhookEnv(r)
	p := contract.DefaultWebhookPolicy()
	env.ExecuteWorkflow(WebhookEndpoint, WebhookEndpointInput{EndpointID: "wh_1", Policy: p})
	var st WebhookState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Rounds != 3 || st.Delivered != 5 || st.Status != "deleted" || r.inputs[0].Policy != p || r.inputs[0].EndpointID != "wh_1" {
		t.Fatalf("state %+v, inputs %+v", st, r.inputs)
	}
}

// The stop signal (DELETE) ends a workflow that waits on a disabled endpoint.
func TestWebhookEndpointStopsOnSignalWhileDisabled(t *testing.T) {
	r := &rounds{script: []func() (contract.WebhookDeliverResult, error){ok("disabled", 0)}}
	env := webhookEnv(r)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(WebhookSignalStop, nil) }, time.Hour)
	env.ExecuteWorkflow(WebhookEndpoint, WebhookEndpointInput{EndpointID: "wh_1"})
	var st WebhookState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "deleted" || r.calls != 1 {
		t.Fatalf("state %+v after %d rounds", st, r.calls)
	}
}

// A disabled endpoint waits for the retry signal (enable) and then rounds again; without
// one it looks again after a day.
func TestWebhookEndpointDisabledWaitsForEnable(t *testing.T) {
	r := &rounds{script: []func() (contract.WebhookDeliverResult, error){ok("disabled", 0), ok("enabled", 1), ok("disabled", 0), ok("deleted", 0)}}
	env := webhookEnv(r)
	env.RegisterDelayedCallback(func() {
		if r.calls != 1 {
			t.Errorf("a disabled endpoint rounded again before enable: %d rounds", r.calls)
		}
		env.SignalWorkflow(WebhookSignalRetry, nil)
	}, 2*time.Hour)
	env.ExecuteWorkflow(WebhookEndpoint, WebhookEndpointInput{EndpointID: "wh_1"})
	var st WebhookState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if r.calls != 4 || st.Delivered != 1 {
		t.Fatalf("%d rounds, state %+v", r.calls, st)
	}
}

// A failed round (retries spent) pauses a minute and goes on; the count is kept.
func TestWebhookEndpointGoesOnAfterAFailedRound(t *testing.T) {
	r := &rounds{script: []func() (contract.WebhookDeliverResult, error){
		func() (contract.WebhookDeliverResult, error) {
			return contract.WebhookDeliverResult{}, temporal.NewNonRetryableApplicationError("secret does not open", "Sealed", nil)
		},
		ok("deleted", 0)}}
	env := webhookEnv(r)
	env.SetTestTimeout(time.Minute)
	env.ExecuteWorkflow(WebhookEndpoint, WebhookEndpointInput{EndpointID: "wh_1"})
	var st WebhookState
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Errors != 1 || st.Status != "deleted" || r.calls < 2 {
		t.Fatalf("state %+v after %d rounds", st, r.calls)
	}
}

// After RoundsPerRun rounds the workflow continues as new with its state.
func TestWebhookEndpointContinuesAsNewWithItsState(t *testing.T) {
	r := &rounds{script: []func() (contract.WebhookDeliverResult, error){ok("enabled", 1), ok("enabled", 1), ok("enabled", 1)}}
	env := webhookEnv(r)
	env.ExecuteWorkflow(WebhookEndpoint, WebhookEndpointInput{EndpointID: "wh_1", RoundsPerRun: 3})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next WebhookEndpointInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.State.Rounds != 3 || next.State.Delivered != 3 || next.EndpointID != "wh_1" || next.RoundsPerRun != 3 {
		t.Fatalf("next run's input %+v", next)
	}
}
