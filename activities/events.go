package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/events"
)

// RelayWait is how long one relay invocation waits for new events once idle: an idle
// system costs one invocation (one activity) per wait.
const RelayWait = 20 * time.Second

// RelayOptions: the relay function returns within its wait and its timeout (45 s); the
// activity's timeout is above both. No heartbeat: the activity is short and its
// function's timeout bounds it.
var RelayOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 60 * time.Second,
	RetryPolicy:         retry(5),
}

// RelayEvents relays pending integrator events into their tenants' feeds (functions/
// eventrelay), waiting up to in.WaitMillis for new ones; it counts what it relayed and
// the relay lag in the worker's metrics.
func (a *Activities) RelayEvents(ctx context.Context, in events.RelayInput) (events.RelayResult, error) {
	res, err := call[events.RelayResult](context.WithValue(ctx, ownHeartbeat{}, true), a.Invoker, events.FnRelay, in)
	if err != nil {
		return res, err
	}
	m := activity.GetMetricsHandler(ctx)
	m.Counter("taxflow_events_relayed").Inc(int64(res.Relayed))
	if res.Relayed > 0 {
		m.Timer("taxflow_events_relay_lag").Record(time.Duration(res.MaxLagMs) * time.Millisecond)
	}
	return res, nil
}
