package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
)

// A webhook endpoint's deliveries are driven by one long-lived workflow, WebhookEndpoint,
// started when the endpoint is registered and ended when it is deleted. It only calls
// rounds (functions/webhooks) one after another: the deliveries, their attempts and
// backoff live in the function's tables, so nothing of a delivery is lost with a worker,
// and neither a URL nor a secret is in the history.
const (
	// WebhookSignalRetry wakes a waiting endpoint: a delivery was retried or the endpoint
	// enabled again.
	WebhookSignalRetry = "retry"
	// WebhookSignalStop ends the workflow: the endpoint was deleted.
	WebhookSignalStop = "stop"
	// WebhookQueryStatus answers the workflow's WebhookState.
	WebhookQueryStatus = "status"
)

// WebhookID is the workflow id of an endpoint's deliveries: no personal data in it.
func WebhookID(endpointID string) string { return "webhook-" + endpointID }

// WebhookState is what an endpoint's workflow has done; it is carried across
// continue-as-new.
type WebhookState struct {
	Rounds    int64  `json:"rounds"`
	Ingested  int64  `json:"ingested"`
	Delivered int64  `json:"delivered"`
	Attempts  int64  `json:"attempts"`
	Failed    int64  `json:"failed"`
	Errors    int64  `json:"errors"` // rounds that failed after their retries
	Status    string `json:"status"` // the endpoint's, as the last round saw it
}

// WebhookEndpointInput starts (or continues) an endpoint's workflow.
type WebhookEndpointInput struct {
	EndpointID string                 `json:"endpoint_id"`
	Policy     contract.WebhookPolicy `json:"policy"`
	// RoundsPerRun: rounds before continue-as-new (200 when zero).
	RoundsPerRun int          `json:"rounds_per_run,omitempty"`
	State        WebhookState `json:"state"`
}

// Waits of an endpoint's workflow. A disabled endpoint waits for the retry signal (the
// API's enable) and looks again after a day at the latest; a failed round is followed by
// a pause before the next.
const (
	webhookDisabledWait = 24 * time.Hour
	webhookErrorWait    = time.Minute
)

// WebhookEndpoint runs an endpoint's rounds until it is deleted.
func WebhookEndpoint(ctx workflow.Context, in WebhookEndpointInput) (WebhookState, error) {
	st := in.State
	if err := workflow.SetQueryHandler(ctx, WebhookQueryStatus, func() (WebhookState, error) { return st, nil }); err != nil {
		return st, err
	}
	if in.RoundsPerRun <= 0 {
		in.RoundsPerRun = 200
	}
	retryCh := workflow.GetSignalChannel(ctx, WebhookSignalRetry)
	stopCh := workflow.GetSignalChannel(ctx, WebhookSignalStop)
	stopped := false
	// drain takes every signal received so far: a stop is kept, wake-ups are spent.
	drain := func() {
		for retryCh.ReceiveAsync(nil) {
		}
		for stopCh.ReceiveAsync(nil) {
			stopped = true
		}
	}
	// wait sleeps up to d, or until a signal arrives.
	wait := func(d time.Duration) {
		tctx, cancel := workflow.WithCancel(ctx)
		defer cancel()
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(tctx, d), func(workflow.Future) {})
		sel.AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) })
		sel.AddReceive(stopCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); stopped = true })
		sel.Select(ctx)
	}
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, activities.WebhookOptions)
	for round := 0; round < in.RoundsPerRun; round++ {
		drain()
		if stopped {
			st.Status = "deleted"
			return st, nil
		}
		var res contract.WebhookDeliverResult
		err := workflow.ExecuteActivity(actx, a.DeliverWebhooks, contract.WebhookDeliverInput{EndpointID: in.EndpointID, Policy: in.Policy}).Get(ctx, &res)
		st.Rounds++
		if err != nil {
			// The round's retries are spent (the store is down, the secret cannot be opened):
			// the deliveries wait in their table; look again after a pause.
			st.Errors++
			wait(webhookErrorWait)
			continue
		}
		st.Ingested += int64(res.Ingested)
		st.Delivered += int64(res.Delivered)
		st.Attempts += int64(res.Attempts)
		st.Failed += int64(res.Failed)
		st.Status = res.Status
		switch res.Status {
		case "deleted":
			return st, nil
		case "disabled":
			wait(webhookDisabledWait)
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	drain()
	if stopped {
		st.Status = "deleted"
		return st, nil
	}
	in.State = st
	return st, workflow.NewContinueAsNewError(ctx, WebhookEndpoint, in)
}
