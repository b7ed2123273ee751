package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/tracing"
	"github.com/taxflow/taxflow/workflows"
)

// observability is a process's metrics registry and tracing set-up (README, Operations →
// Metrics and tracing).
type observability struct {
	metrics        *metrics.Metrics
	temporal       client.MetricsHandler
	closeTemporal  func() error
	shutdownTraces func(context.Context) error
}

func newObservability(ctx context.Context) (*observability, error) {
	shutdown, err := tracing.Setup(ctx, os.Getenv, "taxflow", false)
	if err != nil {
		return nil, err
	}
	m := metrics.New(catalog.Names(), append(api.Routes(), api.ConsoleRoutes()...))
	h, closeFn := m.TemporalHandler()
	return &observability{metrics: m, temporal: h, closeTemporal: closeFn, shutdownTraces: shutdown}, nil
}

// close flushes the SDK's metrics and the spans not yet exported.
func (o *observability) close() {
	_ = o.closeTemporal()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = o.shutdownTraces(ctx)
}

// temporalOptions puts the SDK's metrics into the registry and, when tracing is on, the
// SDK's tracing interceptor into the client (the worker inherits it): workflow starts,
// workflows and activities become spans of the API request's trace.
func (o *observability) temporalOptions(opts *client.Options) error {
	opts.MetricsHandler = o.temporal
	if !tracing.Enabled(os.Getenv) {
		return nil
	}
	ti, err := opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{})
	if err != nil {
		return fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	opts.Interceptors = append([]interceptor.ClientInterceptor{ti}, opts.Interceptors...)
	return nil
}

// observeAPI counts every request and names its span by the route template.
func (o *observability) observeAPI(s *api.Server) {
	s.Observe = func(r *http.Request, route string, status int, took time.Duration) {
		o.metrics.ObserveRequest(route, status, took)
		tracing.Route(r, o.metrics.Route(route), status)
	}
}

// Processes are the closed sets of statuses the business gauges report.
func Processes() []metrics.Process {
	return []metrics.Process{
		{Name: "refund", Open: []string{workflows.RefundReceived, workflows.RefundAwaitingInfo, workflows.RefundInReview,
			workflows.RefundApproved, workflows.RefundPayoutFailed},
			Reserved: []string{workflows.RefundApproved, workflows.RefundPayoutFailed}, Paid: workflows.RefundPaid},
		{Name: "identity", Open: []string{workflows.IdentityReceived, workflows.IdentityChecking, workflows.IdentityNeedsDocuments,
			workflows.IdentityManualReview}},
		{Name: "declaration", Open: []string{workflows.DeclarationReceived, workflows.DeclarationAutoCheck,
			workflows.DeclarationClarification, workflows.DeclarationInReview, workflows.DeclarationAppealed}},
		{Name: "account", Open: []string{workflows.AccountAutoUnlockPending, workflows.AccountAwaitingIdentity,
			workflows.AccountAwaitingSpecialist}},
	}
}

// serveWorkerMetrics serves /metrics on TAXFLOW_METRICS_ADDR and runs the business
// gauges, until ctx ends. Off when the address is "off".
func (a *app) serveWorkerMetrics(ctx context.Context) error {
	if a.cfg.Metrics.WorkerAddr == "" {
		return nil
	}
	b := &metrics.Business{DB: a.clients.DynamoDB, Table: a.cfg.Name(cases.Table), Index: "by_status",
		Counts: a.cfg.Name(transition.CountsTable), Processes: Processes(),
		Calendar: calendar.Shared(), Now: time.Now}
	b.Register(a.obs.metrics)
	a.obs.metrics.RegisterKeyRate(a.keyRates().Cached, time.Now)
	addr, err := a.obs.metrics.Serve(ctx, a.cfg.Metrics.WorkerAddr)
	if err != nil {
		return fmt.Errorf("TAXFLOW_METRICS_ADDR: %w", err)
	}
	go b.Run(ctx, a.cfg.Metrics.BusinessInterval, func(err error) { a.log.Warn().Err(err).Msg("business gauges not updated") })
	a.log.Info().Str("addr", "http://"+addr+"/metrics").Msg("worker metrics")
	return nil
}

// serveAPIMetrics serves /metrics on TAXFLOW_API_METRICS_ADDR until ctx ends.
func (a *app) serveAPIMetrics(ctx context.Context) error {
	if a.cfg.Metrics.APIAddr == "" {
		return nil
	}
	addr, err := a.obs.metrics.Serve(ctx, a.cfg.Metrics.APIAddr)
	if err != nil {
		return fmt.Errorf("TAXFLOW_API_METRICS_ADDR: %w", err)
	}
	a.log.Info().Str("addr", "http://"+addr+"/metrics").Msg("API metrics")
	return nil
}

// metricsLine says where `taxflow dev` serves its metrics (one process, one registry:
// both addresses serve the worker's and the API's metrics) and how traces leave.
func metricsLine(m config.Metrics) string {
	where := func(addr string) string {
		if addr == "" {
			return "off"
		}
		return "http://" + addr + "/metrics"
	}
	traces := "traces off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)"
	if tracing.Enabled(os.Getenv) {
		traces = "traces to " + first(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	}
	return fmt.Sprintf("metrics  worker %s, API %s; rules ops/prometheus/alerts.yml, dashboard ops/grafana/taxflow.json; %s",
		where(m.WorkerAddr), where(m.APIAddr), traces)
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
