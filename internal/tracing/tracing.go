// Package tracing is taxflow's OpenTelemetry set-up: one trace from the API request
// through the workflow start (the Temporal SDK's tracing interceptor), the activities and
// the Lambda invocation (internal/invoker), into the function (FunctionContext).
//
// Off by default: spans are exported only when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, over OTLP/gRPC with the exporter's standard
// OTEL_* variables. Span names and attributes hold route templates, workflow and
// activity types and function names only: never a path value, an id of a person or a body.
package tracing

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracerName names taxflow's own spans.
const TracerName = "github.com/taxflow/taxflow"

// Enabled tells whether an OTLP endpoint is configured.
func Enabled(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider with the OTLP exporter when Enabled, and the
// W3C trace-context propagator always (so an incoming traceparent is passed on even
// when nothing is exported). sync exports each span as it ends: for a Lambda function,
// which may be frozen before a batch is sent. shutdown flushes and stops the exporter.
func Setup(ctx context.Context, getenv func(string) string, service string, sync bool) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled(getenv) {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
	}
	opt := sdktrace.WithBatcher(exp)
	if sync {
		opt = sdktrace.WithSyncer(exp)
	}
	tp := sdktrace.NewTracerProvider(opt, sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// HTTP starts a server span for each API request, continuing the caller's trace
// (traceparent). The span is named by the method until Route names it by the route
// template, once the mux has matched one. Unlike otelhttp it records no URL path or
// query: a path here holds an INN (/v1/taxpayers/{inn}/...).
func HTTP(next http.Handler) http.Handler {
	tracer := otel.Tracer(TracerName)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Route names the request's span by its route template and records the status (called
// by the API's access log, which knows both).
func Route(r *http.Request, route string, status int) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	if route != "" {
		span.SetName(route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
}

// FunctionContext is the context a function's handler runs in: the caller's span when
// it runs in the caller's process, else the trace context the invoker put into the
// Lambda ClientContext (internal/invoker).
func FunctionContext(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok || len(lc.ClientContext.Custom) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(lc.ClientContext.Custom))
}

// StartFunction starts the function side's span ("function <name>").
func StartFunction(ctx context.Context) (context.Context, trace.Span) {
	name := lambdacontext.FunctionName
	if name == "" {
		name = "in-process"
	}
	return otel.Tracer(TracerName).Start(FunctionContext(ctx), "function", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("faas.name", name)))
}
