// Package metrics is taxflow's Prometheus side: one registry per process holding the
// Temporal SDK's own metrics (through the SDK's tally handler), the Lambda invocations
// seen by the invoker, the API's requests and the business gauges of the case
// projections and the ledger (Collector). Every label value comes from a closed set
// (function names, route templates, status codes, processes, statuses): never an id, an
// INN or anything else a person could be found by.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	"github.com/taxflow/taxflow/internal/invoker"
)

// Names of taxflow's own metrics; the alert rules and the dashboard use them, and a test
// checks that every name they use is registered.
const (
	FunctionInvocations = "taxflow_function_invocations_total"
	FunctionErrors      = "taxflow_function_errors_total"
	FunctionDuration    = "taxflow_function_duration_seconds"
	APIRequests         = "taxflow_api_requests_total"
	APIDuration         = "taxflow_api_request_duration_seconds"
)

// Other is the label value of anything outside a closed set (an unknown function name,
// a request that matched no route, a status no process declares).
const Other = "other"

// Metrics is one process's registry and taxflow's own instruments in it.
type Metrics struct {
	Registry *prometheus.Registry

	functions   []string
	routes      []string
	invocations *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	// registerErrors counts SDK metrics the registry refused (taxflow_metrics_register_errors_total).
	registerErrors prometheus.Counter
}

// New makes a registry with the Go runtime and process collectors and taxflow's
// instruments. functions and routes are the closed sets of the function and route
// labels (catalog.Names(), api.Routes()); anything else is counted as Other.
func New(functions, routes []string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry:  reg,
		functions: slices.Sorted(slices.Values(functions)),
		routes:    slices.Sorted(slices.Values(routes)),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: FunctionInvocations,
			Help: "Function (Lambda) invocations made by the invoker, by function."}, []string{"function"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: FunctionErrors,
			Help: "Failed function invocations by function and kind: business (a refusal no retry changes), function (the function failed), unreachable (the call did not reach it)."},
			[]string{"function", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: FunctionDuration,
			Help: "Duration of function invocations as the invoker sees them, by function.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)},
			[]string{"function"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: APIRequests,
			Help: "API requests by route template and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: APIDuration,
			Help: "API request latency by route template.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
	m.registerErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "taxflow_metrics_register_errors_total",
		Help: "Temporal SDK metrics the registry refused (one name reported with two label sets): those series are missing."})
	reg.MustRegister(m.invocations, m.errors, m.duration, m.requests, m.latency, m.registerErrors)
	return m
}

func (m *Metrics) function(fn string) string {
	if _, ok := slices.BinarySearch(m.functions, fn); ok {
		return fn
	}
	return Other
}

// Route is the label of a route template (r.Pattern after the mux): Other when it
// matched none.
func (m *Metrics) Route(pattern string) string {
	if _, ok := slices.BinarySearch(m.routes, pattern); ok {
		return pattern
	}
	return Other
}

// ObserveInvocation counts one invocation (invoker.Observer).
func (m *Metrics) ObserveInvocation(fn string, err error, took time.Duration) {
	fn = m.function(fn)
	m.invocations.WithLabelValues(fn).Inc()
	m.duration.WithLabelValues(fn).Observe(took.Seconds())
	if err == nil {
		return
	}
	kind := "unreachable"
	var fe *invoker.FunctionError
	if errors.As(err, &fe) {
		kind = "function"
		if fe.Business() {
			kind = "business"
		}
	}
	m.errors.WithLabelValues(fn, kind).Inc()
}

// ObserveRequest counts one API request by its route template and status.
func (m *Metrics) ObserveRequest(pattern string, status int, took time.Duration) {
	route := m.Route(pattern)
	code := Other
	if status >= 100 && status <= 599 {
		code = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(route, code).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}

// TemporalHandler is the Temporal SDK's metrics handler over this registry (client
// option MetricsHandler): the SDK's metrics (temporal_*) appear on the same /metrics.
// close flushes and stops the tally scope.
func (m *Metrics) TemporalHandler() (h client.MetricsHandler, closeFn func() error) {
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: m.Registry,
		// The SDK's timers as histograms (aggregatable across workers; summaries are not).
		DefaultTimerType: tallyprom.HistogramTimerType,
		// A metric the SDK reports under one name with two label sets keeps the first;
		// the others are counted, not fatal.
		OnRegisterError: func(error) { m.registerErrors.Inc() }})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer.Close
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Serve listens on addr and serves /metrics until ctx ends. It returns the address it
// listens on (addr may end in :0) once listening; a taken address fails here, at start.
func (m *Metrics) Serve(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics listener on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}
