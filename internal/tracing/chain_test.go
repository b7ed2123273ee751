package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/tracing"
	"github.com/taxflow/taxflow/workflows"
)

// One trace from the API request to the function: the request's span is the parent of
// the workflow start, which is the parent of the workflow run, its activity, the
// invocation of the function and the function's own span.
func TestTraceRunsFromAPIRequestToFunction(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	tr, err := opentelemetry.NewTracer(opentelemetry.TracerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ti := interceptor.NewTracingInterceptor(tr)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{ti}})
	env.RegisterWorkflow(workflows.SelfCheck)
	handlers := map[string]any{
		contract.FnSelfCheck: fn.Handler(func(context.Context, contract.SelfCheckInput) (contract.SelfCheckResult, error) {
			return contract.SelfCheckResult{Attempt: 1}, nil
		}),
		contract.FnRecordTransition: fn.Handler(func(_ context.Context, in contract.RecordInput) (contract.RecordResult, error) {
			return contract.RecordResult{Key: contract.RecordKey(in.CaseID, in.Seq)}, nil
		}),
	}
	env.RegisterActivity(&activities.Activities{Invoker: invoker.Observed(invoker.NewInProcess(handlers), nil)})

	api := tracing.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the client's tracing interceptor does on ExecuteWorkflow: a StartWorkflow
		// span under the request's, handed to the workflow in its header.
		start, err := tr.StartSpan(&interceptor.TracerStartSpanOptions{Parent: tr.SpanFromContext(r.Context()),
			Operation: "StartWorkflow", Name: "SelfCheck", Time: time.Now(), ToHeader: true})
		if err != nil {
			t.Fatal(err)
		}
		data, err := tr.MarshalSpan(start)
		if err != nil {
			t.Fatal(err)
		}
		p, err := converter.GetDefaultDataConverter().ToPayload(data)
		if err != nil {
			t.Fatal(err)
		}
		env.SetHeader(&commonpb.Header{Fields: map[string]*commonpb.Payload{tr.Options().HeaderKey: p}})
		env.ExecuteWorkflow(workflows.SelfCheck, workflows.SelfCheckWorkflowInput{Probe: contract.SelfCheckInput{Key: "k"}})
		start.Finish(&interceptor.TracerFinishSpanOptions{})
		tracing.Route(r, "POST /v1/refunds", http.StatusCreated)
		w.WriteHeader(http.StatusCreated)
	}))
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/refunds", nil))
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed %v, error %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}

	spans := exp.GetSpans()
	byID := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID().String()] = s
	}
	find := func(name string) tracetest.SpanStub {
		t.Helper()
		for _, s := range spans {
			if s.Name == name {
				return s
			}
		}
		var names []string
		for _, s := range spans {
			names = append(names, s.Name)
		}
		t.Fatalf("no span %q among %q", name, names)
		return tracetest.SpanStub{}
	}
	chain := []string{"POST /v1/refunds", "StartWorkflow:SelfCheck", "RunWorkflow:SelfCheck", "StartActivity:SelfCheck",
		"RunActivity:SelfCheck", "invoke " + contract.FnSelfCheck, "function"}
	root := find(chain[0])
	if root.Parent.IsValid() {
		t.Fatalf("the request's span has a parent: %v", root.Parent)
	}
	// The function span: the one under "invoke <selfcheck>" (record-transition has one too).
	for i := 1; i < len(chain); i++ {
		var child tracetest.SpanStub
		found := false
		for _, s := range spans {
			if s.Name == chain[i] && s.Parent.SpanID() == byID[chainID(t, spans, chain, i-1)].SpanContext.SpanID() {
				child, found = s, true
			}
		}
		if !found {
			t.Fatalf("no span %q under %q", chain[i], chain[i-1])
		}
		if child.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Fatalf("span %q is in another trace", chain[i])
		}
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Fatalf("span %q is in another trace", s.Name)
		}
	}
}

// chainID is the span id of chain[i], found by walking down the chain from its root.
func chainID(t *testing.T, spans []tracetest.SpanStub, chain []string, i int) string {
	t.Helper()
	var parent string
	for j := 0; j <= i; j++ {
		found := ""
		for _, s := range spans {
			if s.Name == chain[j] && (j == 0 || s.Parent.SpanID().String() == parent) {
				found = s.SpanContext.SpanID().String()
				break
			}
		}
		if found == "" {
			t.Fatalf("no span %q under %q", chain[j], chain[max(j-1, 0)])
		}
		parent = found
	}
	return parent
}
