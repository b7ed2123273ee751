// Package activities are thin adapters between workflows and functions: each activity
// fixes its options (timeouts, retries) and calls one function through the invoker.
// A function's business error becomes a non-retryable application error carrying the
// function's errorType; timeouts and transport errors stay retryable, and Temporal,
// not the AWS client, owns the retries.
package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/keyrate"
)

// Activities holds what every activity needs. Workflows refer to its methods through
// a nil pointer (var a *Activities), so they never touch the invoker.
type Activities struct {
	Invoker invoker.Invoker
	// KeyRates is the Bank of Russia key-rate table (config's Data.KeyRates) the late
	// interest of a refund is computed from; nil: the table built into the binary.
	KeyRates *keyrate.Table
	// KeyRateSource, when set, is the table in force now (keyrate.Live: the operator's
	// store read again every minute), so a decision added while the worker runs is used
	// by the next interest computed; KeyRates is then only its base.
	KeyRateSource interface {
		Table(ctx context.Context) (*keyrate.Table, error)
	}
	// Lines starts the cases of batch lines (the API's starter); nil on a worker without
	// the subject key, which then refuses batch chunks.
	Lines LineStarter
}

// retry is the default policy: quick first retries, then at most a minute apart.
func retry(maxAttempts int32) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    maxAttempts,
	}
}

// AuditOptions: the journal must not lose an entry, so retries go on for a long time.
var AuditOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second, // function timeout is 10 s
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(50),
}

// SelfCheckOptions: the self-check function times out after 3 s.
var SelfCheckOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	HeartbeatTimeout:    10 * time.Second,
	RetryPolicy:         retry(5),
}

// SelfCheck runs the self-check function.
func (a *Activities) SelfCheck(ctx context.Context, in contract.SelfCheckInput) (contract.SelfCheckResult, error) {
	return call[contract.SelfCheckResult](ctx, a.Invoker, contract.FnSelfCheck, in)
}

// heartbeatEvery is how often a waiting activity tells Temporal it is alive, so that a
// cancelled workflow reaches it and a dead worker is noticed before StartToClose.
const heartbeatEvery = 3 * time.Second

func call[Out any](ctx context.Context, inv invoker.Invoker, fn string, in any) (Out, error) {
	var out Out
	payload, err := json.Marshal(in)
	if err != nil {
		return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("encode input of %s: %v", fn, err), "EncodeError", nil)
	}
	stop := func() {}
	if ctx.Value(ownHeartbeat{}) == nil {
		stop = heartbeat(ctx)
	}
	res, err := inv.Invoke(ctx, fn, payload)
	stop()
	if err != nil {
		return out, toTemporal(fn, err)
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return out, temporal.NewApplicationError(fmt.Sprintf("decode result of %s: %v", fn, err), "DecodeError")
	}
	return out, nil
}

// toTemporal maps an invocation failure to the error Temporal acts on.
func toTemporal(fn string, err error) error {
	var fe *invoker.FunctionError
	if errors.As(err, &fe) {
		if fe.Business() {
			return temporal.NewNonRetryableApplicationError(fe.Message, fe.Type, nil)
		}
		return temporal.NewApplicationError(fmt.Sprintf("%s: %s", fn, fe.Message), fe.Type)
	}
	return fmt.Errorf("invoke %s: %w", fn, err)
}

// ownHeartbeat marks a context whose activity records heartbeats with progress details
// itself: a bare heartbeat from call would replace those details.
type ownHeartbeat struct{}

func heartbeat(ctx context.Context) (stop func()) { return heartbeatWith(ctx, nil) }

// heartbeatWith records a heartbeat every heartbeatEvery until stopped, with the details
// details returns (none when nil).
func heartbeatWith(ctx context.Context, details func() []any) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				var d []any
				if details != nil {
					d = details()
				}
				activity.RecordHeartbeat(ctx, d...)
			}
		}
	}()
	return func() { close(done) }
}

// Noop does nothing: the benchmark's baseline activity.
func (a *Activities) Noop(context.Context) error { return nil }
