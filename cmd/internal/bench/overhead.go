package bench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/temporalclient"
)

// discard is a span exporter that drops every span: the bench measures making and
// batching spans, not a collector's network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// benchOverhead runs N refunds through the Lambda host with neither metrics nor tracing,
// and with both (the Temporal SDK's metrics and tracing interceptor, the observed
// invoker, spans sampled and batched), in rotating order, and reports the throughput
// cost of observability (goal: under 5 %).
func benchOverhead(ctx context.Context, a *app, n, rounds int) error {
	plain, err := temporalclient.Dial(a.cfg.Temporal, a.log)
	if err != nil {
		return err
	}
	defer plain.Close()

	m := metrics.New(catalog.Names(), append(api.Routes(), api.ConsoleRoutes()...))
	h, closeSDK := m.TemporalHandler()
	defer func() { _ = closeSDK() }()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp) // the invoker's and the functions' spans (in-process ones)
	defer otel.SetTracerProvider(prev)
	ti, err := opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{Tracer: tp.Tracer("temporal-sdk-go")})
	if err != nil {
		return err
	}
	observed, err := temporalclient.DialWith(a.cfg.Temporal, a.log, func(o *client.Options) {
		o.MetricsHandler = h
		o.Interceptors = append([]interceptor.ClientInterceptor{ti}, o.Interceptors...)
	})
	if err != nil {
		return err
	}
	defer observed.Close()

	lambdaInv := &invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}
	if _, err := benchRefunds(ctx, a, plain, lambdaInv, 2); err != nil { // warm up
		return err
	}
	runs := map[string]func() (benchResult, error){
		"plain":    func() (benchResult, error) { return benchRefunds(ctx, a, plain, lambdaInv, n) },
		"observed": func() (benchResult, error) { return benchRefunds(ctx, a, observed, invoker.Observed(lambdaInv, m), n) },
	}
	order := []string{"plain", "observed"}
	all := map[string][]benchResult{}
	for round := 0; round < rounds; round++ {
		for i := range order {
			name := order[(i+round)%len(order)]
			r, err := runs[name]()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("round %d %-9s %6.2f wf/s  p50 %s\n", round+1, name, r.throughput, r.p50.Round(time.Millisecond))
			all[name] = append(all[name], r)
		}
	}
	med := map[string]benchResult{}
	for name, rs := range all {
		sort.Slice(rs, func(i, j int) bool { return rs[i].throughput < rs[j].throughput })
		med[name] = rs[len(rs)/2]
	}
	p, o := med["plain"], med["observed"]
	fmt.Printf("\nrefunds via the Lambda host, N = %d, median of %d rounds:\n", n, rounds)
	fmt.Printf("  without metrics and tracing %6.2f wf/s  p50 %s\n", p.throughput, p.p50.Round(time.Millisecond))
	fmt.Printf("  with metrics and tracing    %6.2f wf/s  p50 %s\n", o.throughput, o.p50.Round(time.Millisecond))
	fmt.Printf("observability overhead on throughput: %.1f%% (goal < 5%%)\n", 100*(1-o.throughput/p.throughput))
	return nil
}
