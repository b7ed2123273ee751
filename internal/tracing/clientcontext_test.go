package tracing_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/tracing"
)

type captureLambda struct{ in *awslambda.InvokeInput }

func (c *captureLambda) Invoke(_ context.Context, in *awslambda.InvokeInput, _ ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error) {
	c.in = in
	return &awslambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{}`)}, nil
}

// Through the Lambda Invoke API the trace context travels in the ClientContext, and the
// function side continues the caller's trace from it.
func TestTraceContextCrossesLambdaInClientContext(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "activity")
	defer span.End()

	c := &captureLambda{}
	if _, err := (&invoker.Lambda{Client: c}).Invoke(ctx, "selfcheck", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if c.in.ClientContext == nil {
		t.Fatal("no ClientContext sent")
	}
	raw, err := base64.StdEncoding.DecodeString(*c.in.ClientContext)
	if err != nil {
		t.Fatal(err)
	}
	// What the Lambda runtime hands the function (aws-lambda-go decodes it the same way).
	var cc lambdacontext.ClientContext
	if err := json.Unmarshal(raw, &cc); err != nil {
		t.Fatal(err)
	}
	fctx := tracing.FunctionContext(lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{ClientContext: cc}))
	got := trace.SpanContextFromContext(fctx)
	if !got.IsRemote() || got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("function side: %v, want the caller's span %v", got, span.SpanContext())
	}

	// Without a trace there is nothing to carry: no ClientContext at all.
	if _, err := (&invoker.Lambda{Client: c}).Invoke(context.Background(), "selfcheck", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if c.in.ClientContext != nil {
		t.Fatalf("ClientContext without a trace: %s", *c.in.ClientContext)
	}
}
