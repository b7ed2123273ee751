package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/infra"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/logging"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/internal/tracing"
	"github.com/taxflow/taxflow/internal/trust"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/schedules"
)

// app is what every long-running command builds from configuration.
type app struct {
	cfg     config.Config
	log     zerolog.Logger
	clients *awsclient.Clients
	obs     *observability
	rates   *keyrate.Live
}

// keyRates is the key-rate table the worker computes late-refund interest with: the
// operator's table (taxflow keyrate, in the trust bucket) over the one shipped, read
// again every minute so an added decision reaches running workers without a redeploy.
func (a *app) keyRates() *keyrate.Live {
	if a.rates == nil {
		a.rates = &keyrate.Live{Base: a.cfg.Data.KeyRates, TTL: time.Minute,
			Store: trust.KeyRateStore{Client: a.clients.S3, Bucket: a.cfg.Name(trust.Bucket)}}
	}
	return a.rates
}

func newApp(ctx context.Context) (*app, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return nil, err
	}
	log, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return nil, err
	}
	clients, err := awsclient.New(ctx, cfg.AWS, log)
	if err != nil {
		return nil, err
	}
	obs, err := newObservability(ctx)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, log: log, clients: clients, obs: obs}, nil
}

// invoker returns the configured way of calling functions.
func (a *app) invoker() invoker.Invoker {
	if a.cfg.Invoker == "inprocess" {
		deps := fn.Deps{Config: a.cfg, DynamoDB: a.clients.DynamoDB, S3: a.clients.S3, Log: a.log}
		return invoker.Observed(invoker.NewInProcess(catalog.Handlers(deps)), a.obs.metrics)
	}
	return invoker.Observed(&invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}, a.obs.metrics)
}

func (a *app) temporal() (client.Client, error) {
	var optErr error
	c, err := temporalclient.DialWith(a.cfg.Temporal, a.log, func(o *client.Options) { optErr = a.obs.temporalOptions(o) })
	if optErr != nil {
		if c != nil {
			c.Close()
		}
		return nil, optErr
	}
	return c, err
}

// newWorker registers every workflow and activity on the task queue.
func (a *app) newWorker(c client.Client) worker.Worker {
	w := worker.New(c, a.cfg.Temporal.TaskQueue, buildinfo.WorkerOptions())
	workflows.Register(w)
	acts := &activities.Activities{Invoker: a.invoker(), KeyRates: a.cfg.Data.KeyRates, KeyRateSource: a.keyRates()}
	if a.cfg.RequireSubjectKey() == nil {
		// Batch lines start cases exactly as the API starts them (same checks, owner
		// records, subjects), so the worker that runs batches holds the subject key too.
		lines := api.New(a.cfg, a.clients, c, a.log)
		if q := a.cfg.Temporal.BatchCaseQueue; q != "" {
			lines.TaskQueue = q
		}
		acts.Lines = lines
	}
	w.RegisterActivity(acts)
	return w
}

// withTemporal builds the app, connects to Temporal, runs f and closes the connection.
func withTemporal(ctx context.Context, f func(*app, client.Client) error) error {
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	c, err := a.temporal()
	if err != nil {
		return err
	}
	defer a.obs.close()
	defer c.Close()
	return f(a, c)
}

// startWorker starts a worker that runs until stop is called.
func (a *app) startWorker(c client.Client) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	rates := a.keyRates()
	if _, err := rates.Refresh(ctx); err != nil {
		a.log.Warn().Err(err).Msg("key rate table: the operator's table could not be read; using the one built in until it can")
	}
	go rates.Run(ctx, func(err error) {
		a.log.Warn().Err(err).Msg("key rate table not read again; the last one read stays in use")
	})
	if err := a.serveWorkerMetrics(ctx); err != nil {
		cancel()
		return nil, err
	}
	w := a.newWorker(c)
	if err := w.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	a.log.Info().Str("task_queue", a.cfg.Temporal.TaskQueue).Str("invoker", a.cfg.Invoker).Msg("worker running")
	// The events relay job runs once per namespace; every worker makes sure it does.
	if _, err := schedules.StartEventRelay(ctx, c, a.cfg.Temporal.TaskQueue); err != nil {
		a.log.Warn().Err(err).Msg("the event relay job could not be started; integrator events stay pending until it is (taxflow schedules apply)")
	}
	warnProvisional(a.log, time.Now())
	warnKeyRate(a.log, rates.Cached(), time.Now())
	return func() { w.Stop(); cancel() }, nil
}

// warnProvisional says once, at start, when a working-day SLA will use a year whose
// production calendar decree is not loaded (computed from the Labour Code alone).
func warnProvisional(log zerolog.Logger, now time.Time) {
	for _, y := range []int{now.Year(), now.Year() + 1} {
		if calendar.Shared().Provisional(y) {
			log.Warn().Int("year", y).Ints("loaded", calendar.Shared().Years()).
				Msg("production calendar: no decree loaded for this year; working days are computed from the Labour Code (art. 112) and are provisional: add internal/calendar/data/<year>.txt")
		}
	}
}

func runWorker(ctx context.Context) error {
	return withTemporal(ctx, func(a *app, c client.Client) error {
		stop, err := a.startWorker(c)
		if err != nil {
			return err
		}
		<-ctx.Done()
		stop()
		return nil
	})
}

func runAPI(ctx context.Context) error {
	return withTemporal(ctx, func(a *app, c client.Client) error { return serveAPI(ctx, a, c) })
}

func (a *app) keys() api.DynamoKeys { return api.Keys(a.cfg, a.clients) }

func serveAPI(ctx context.Context, a *app, c client.Client) error {
	if err := a.cfg.RequireSubjectKey(); err != nil {
		return err
	}
	server := api.New(a.cfg, a.clients, c, a.log)
	a.obs.observeAPI(server)
	if rates, err := a.keyRates().Refresh(ctx); err == nil {
		warnKeyRate(a.log, rates, time.Now())
	}
	srv := server.HTTPServer(a.cfg.APIAddr)
	srv.Handler = tracing.HTTP(srv.Handler)
	if err := a.serveAPIMetrics(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("TAXFLOW_API_ADDR=%s: %w", a.cfg.APIAddr, err)
	}
	a.log.Info().Str("addr", "http://"+a.cfg.APIAddr).Msg("API listening")
	// Serve returns as soon as Shutdown begins; the API exits only once Shutdown has let the
	// requests in flight finish.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-drained
	return nil
}

func runInfra(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: taxflow infra apply|template")
	}
	switch args[0] {
	case "template":
		b, err := infra.Template(infra.Declare())
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	case "apply":
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		return applyInfra(ctx, a)
	}
	return fmt.Errorf("unknown infra command %q: want apply or template", args[0])
}

func applyInfra(ctx context.Context, a *app) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	start := time.Now()
	report, err := infra.Apply(ctx, a.clients, infra.Declare(), infra.Options{
		Prefix: a.cfg.Prefix, ModuleDir: wd, BuildDir: a.cfg.BuildDir, RoleARN: a.cfg.RoleARN, Region: a.cfg.AWS.Region,
		TemporalEnv: infra.TemporalEnv(os.Getenv), NotifyARN: os.Getenv("TAXFLOW_INTAKE_NOTIFY_ARN"),
	})
	for _, c := range report {
		ev := a.log.Info()
		if c.Action == infra.NotSupported {
			ev = a.log.Warn()
		}
		ev.Str("resource", c.Resource).Str("action", string(c.Action)).Str("detail", c.Detail).Msg("infra")
	}
	if err != nil {
		return fmt.Errorf("infra apply: %w", err)
	}
	a.log.Info().Bool("changed", report.Changed()).Dur("took", time.Since(start)).Msg("infra apply done")
	return nil
}

// runDoctor runs the self-check workflow once through the configured invoker.
func runDoctor(ctx context.Context) error {
	return withTemporal(ctx, func(a *app, c client.Client) error { return doctor(ctx, a, c) })
}

func doctor(ctx context.Context, a *app, c client.Client) error {
	key := uuid.NewString()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SelfCheckID(key), TaskQueue: a.cfg.Temporal.TaskQueue},
		workflows.SelfCheck, workflows.SelfCheckWorkflowInput{Probe: contract.SelfCheckInput{Key: key}})
	if err != nil {
		return fmt.Errorf("start self-check: %w", err)
	}
	var res workflows.SelfCheckWorkflowResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("self-check %s: %w", run.GetID(), err)
	}
	a.log.Info().Str("workflow_id", run.GetID()).Int("attempt", res.Attempt).Int("journal_writes", res.JournalWrites).Msg("self-check passed: workflow → activity → function → DynamoDB")
	return nil
}
