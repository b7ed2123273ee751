package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/events"
)

// EventRelayID is the one relay job's workflow id: started idempotently (schedules.
// StartEventRelay) by every worker at start and by `taxflow schedules apply`.
const EventRelayID = "event-relay"

// EventRelayInput carries the relay job across continue-as-new.
type EventRelayInput struct {
	WaitMillis int   `json:"wait_millis,omitempty"` // each invocation's wait once idle (default activities.RelayWait)
	Iterations int   `json:"iterations,omitempty"`  // invocations before continue-as-new (default 200)
	Relayed    int64 `json:"relayed,omitempty"`     // events relayed by this job so far
	Failures   int64 `json:"failures,omitempty"`    // invocations that failed after their retries
}

// relayBackoff is the pause after an invocation that failed after its retries (a table
// or the function down): the job keeps going, the events wait pending.
const relayBackoff = 30 * time.Second

// EventRelay is the durable job that drives the events relay (functions/eventrelay): it
// invokes it again and again — each invocation relays what is pending and then waits for
// new events — and continues as new every Iterations invocations (or when Temporal
// suggests it) to keep its history short. It never ends on its own.
func EventRelay(ctx workflow.Context, in EventRelayInput) error {
	if in.WaitMillis <= 0 {
		in.WaitMillis = int(activities.RelayWait.Milliseconds())
	}
	if in.Iterations <= 0 {
		in.Iterations = 200
	}
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, activities.RelayOptions)
	for i := 0; i < in.Iterations && !workflow.GetInfo(ctx).GetContinueAsNewSuggested(); i++ {
		var res events.RelayResult
		if err := workflow.ExecuteActivity(actx, a.RelayEvents, events.RelayInput{WaitMillis: in.WaitMillis}).Get(ctx, &res); err != nil {
			in.Failures++
			workflow.GetLogger(ctx).Warn("event relay failed; trying again after a pause", "error", err)
			if err := workflow.Sleep(ctx, relayBackoff); err != nil {
				return err
			}
			continue
		}
		in.Relayed += int64(res.Relayed)
	}
	return workflow.NewContinueAsNewError(ctx, EventRelay, in)
}
