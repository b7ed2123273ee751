package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
)

type fakeInvoker struct {
	out []byte
	err error
	got string
}

func (f *fakeInvoker) Invoke(_ context.Context, fn string, payload []byte) ([]byte, error) {
	f.got = fn + " " + string(payload)
	return f.out, f.err
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name         string
		err          error
		wantType     string
		nonRetryable bool
		appErr       bool
	}{
		{"business", &invoker.FunctionError{Function: "payout", Type: "Rejected", Message: "limit"}, "Rejected", true, true},
		{"timeout", &invoker.FunctionError{Function: "payout", Type: "Sandbox.Timedout", Message: "Task timed out"}, "Sandbox.Timedout", false, true},
		{"crash", &invoker.FunctionError{Function: "payout", Type: "Runtime.ExitError"}, "Runtime.ExitError", false, true},
		{"transport", errors.New("dial tcp: connection refused"), "", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &Activities{Invoker: &fakeInvoker{err: c.err}}
			_, err := a.Payout(context.Background(), contract.PayoutInput{PayoutKey: "k"})
			var app *temporal.ApplicationError
			if errors.As(err, &app) != c.appErr {
				t.Fatalf("application error %v, want %v: %v", errors.As(err, &app), c.appErr, err)
			}
			if c.appErr && (app.Type() != c.wantType || app.NonRetryable() != c.nonRetryable) {
				t.Fatalf("type %s non-retryable %v", app.Type(), app.NonRetryable())
			}
			if !c.appErr && err == nil {
				t.Fatal("transport error lost")
			}
		})
	}
}

func TestCallEncodesAndDecodes(t *testing.T) {
	f := &fakeInvoker{out: []byte(`{"transfer_id":"tr-1","amount_kopecks":5}`)}
	res, err := (&Activities{Invoker: f}).Payout(context.Background(), contract.PayoutInput{PayoutKey: "k", Amount: 5})
	if err != nil || res.TransferID != "tr-1" || res.Amount != 5 {
		t.Fatalf("%+v %v", res, err)
	}
	if f.got != `payout {"payout_key":"k","case_id":"","inn":"","amount_kopecks":5,"principal_kopecks":0,"interest_kopecks":0,"reservation":""}` {
		t.Fatalf("sent %s", f.got)
	}
	f.out = []byte(`not json`)
	if _, err := (&Activities{Invoker: f}).Payout(context.Background(), contract.PayoutInput{}); err == nil {
		t.Fatal("undecodable result accepted")
	}
}

// A local record step keeps every attempt an activity task would get: all of them, with
// their backoff and each at its longest, fit in its ScheduleToClose (which for a local
// activity is otherwise its StartToClose, 30 s: a store down for 30 s failed the case).
func TestRecordLocalOptionsCoverEveryAttempt(t *testing.T) {
	p := RecordLocalOptions.RetryPolicy
	if p == nil || p.MaximumAttempts != RecordOptions.RetryPolicy.MaximumAttempts || RecordLocalOptions.StartToCloseTimeout != RecordOptions.StartToCloseTimeout {
		t.Fatalf("local %+v, task %+v", RecordLocalOptions, RecordOptions)
	}
	var total time.Duration
	wait := p.InitialInterval
	for attempt := int32(1); attempt <= p.MaximumAttempts; attempt++ {
		total += RecordLocalOptions.StartToCloseTimeout
		if attempt < p.MaximumAttempts {
			total += wait
			wait = min(time.Duration(float64(wait)*p.BackoffCoefficient), p.MaximumInterval)
		}
	}
	if RecordLocalOptions.ScheduleToCloseTimeout < total {
		t.Fatalf("ScheduleToClose %v is shorter than the %d attempts take at most (%v)", RecordLocalOptions.ScheduleToCloseTimeout, p.MaximumAttempts, total)
	}
}
