package invoker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Observer is told of every invocation (internal/metrics counts them).
type Observer interface {
	ObserveInvocation(fn string, err error, took time.Duration)
}

// Observed wraps an invoker: each invocation becomes a client span ("invoke <fn>", a
// child of the activity's span) and is reported to obs (nil: spans only). The trace
// context reaches the function in ctx (in process) or in the Lambda ClientContext.
func Observed(next Invoker, obs Observer) Invoker { return &observed{next: next, obs: obs} }

type observed struct {
	next Invoker
	obs  Observer
}

// tracerName names taxflow's own spans.
const tracerName = "github.com/taxflow/taxflow"

func (o *observed) Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error) {
	ctx, span := otel.Tracer(tracerName).Start(ctx, "invoke "+fn, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("faas.invoked_name", fn)))
	defer span.End()
	start := time.Now()
	out, err := o.next.Invoke(ctx, fn, payload)
	if o.obs != nil {
		o.obs.ObserveInvocation(fn, err, time.Since(start))
	}
	if err != nil {
		// The error type only: a function's message may quote its input.
		typ := "unreachable"
		var fe *FunctionError
		if errors.As(err, &fe) {
			typ = fe.Type
		}
		span.SetStatus(codes.Error, typ)
	}
	return out, err
}

// clientContextMax is Lambda's limit on the encoded ClientContext. The W3C traceparent
// (and tracestate) travel in its custom map; tracing.FunctionContext reads them on the
// function side.
const clientContextMax = 3583

// clientContext is the base64 Lambda ClientContext carrying ctx's trace context, or nil
// when ctx carries none.
func clientContext(ctx context.Context) *string {
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return nil
	}
	b, err := json.Marshal(map[string]any{"custom": map[string]string(carrier)})
	if err != nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	if len(s) > clientContextMax {
		return nil
	}
	return &s
}
