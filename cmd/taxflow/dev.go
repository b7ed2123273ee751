package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/cmd/internal/demo"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/internal/config"
)

// devOptions are the options of dev and demo.
type devOptions struct {
	seedOptions
	exitAfterDemo bool
}

const devHelp = `Starts what is not running of the local stack (Temporal, DynamoDB Local, MinIO, the
Lambda host), applies the infrastructure, loads the demo dataset, runs the worker and the
API in this process, and walks every process through the HTTP API: a refund, an identity
verification, a declaration, an account lock and unblock, a scheduled reminder.
`

func parseDevFlags(name string, args []string) (devOptions, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var o devOptions
	o.flags(fs)
	end := "`taxflow dev` keeps everything running after the demo until Ctrl-C, which stops it all."
	if name == "demo" {
		end = "`taxflow demo` stops everything it started after the demo; it exits 0 only when every\nprocess reached its expected end, and non-zero naming the failing step otherwise."
	}
	fs.Usage = usageOf(fs, "taxflow "+name+" [--taxpayers N] [--seed S] [--date YYYY-MM-DD]", devHelp+end+"\n\n"+seedHelp+
		fmt.Sprintf("\nDefaults: %d taxpayers, seed %d, today. Ports and run directory: TAXFLOW_*_PORT, TAXFLOW_RUN_DIR, TAXFLOW_API_ADDR.\n",
			seed.DefaultTaxpayers, seed.DefaultSeed))
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if err := o.check(os.Stderr); err != nil {
		return o, err
	}
	// The workflows run on Temporal's real clock; only the data can move in time.
	if today := seed.Day(time.Now()); o.today.After(today) {
		return o, fmt.Errorf("--date %s: after today (%s): the workflows run on the real clock, so the demo cannot move forward in time (`taxflow seed --date` can)",
			o.today.Format(time.DateOnly), today.Format(time.DateOnly))
	}
	return o, nil
}

// runDev is the main job: the whole local stack with a demo, running until Ctrl-C.
func runDev(ctx context.Context, args []string) error {
	o, err := parseDevFlags("dev", args)
	if err != nil {
		return err
	}
	return dev(ctx, o)
}

// runDemo is runDev that stops everything after the demo and fails when it failed.
func runDemo(ctx context.Context, args []string) error {
	o, err := parseDevFlags("demo", args)
	if err != nil {
		return err
	}
	o.exitAfterDemo = true
	return dev(ctx, o)
}

// dev starts what is not running, applies the infrastructure, loads the dataset, runs the
// worker and the API in this process and the demo through the API; then either stops
// (demo) or runs until Ctrl-C (dev). It stops the worker, the API and, if it started any
// part of the stack, the stack: also when it fails half-way.
func dev(ctx context.Context, o devOptions) error {
	start := time.Now()
	s, err := localStack()
	if err != nil {
		return err
	}
	// A bad variable or a taken API port stops us before anything starts.
	stackEnv := map[string]string{}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		stackEnv[k] = v
	}
	cfg, err := config.Load(func(k string) string {
		if v := os.Getenv(k); v != "" && !strings.HasPrefix(k, "AWS_ENDPOINT_URL") && k != "TEMPORAL_ADDRESS" {
			return v
		}
		return stackEnv[k]
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("TAXFLOW_API_ADDR=%s is not free: set TAXFLOW_API_ADDR to a free address or stop the program using it (%v)", cfg.APIAddr, err)
	}
	_ = l.Close() // only a probe that the address is free; the API listens on it later
	say := func(line string) { fmt.Println(line) }
	startedAny := false
	for _, up := range s.Status() {
		startedAny = startedAny || !up
	}
	if startedAny {
		// Registered before Up, so a start that fails half-way leaves nothing running.
		defer func() {
			fmt.Println("stopping the local stack")
			_ = s.Down(say)
		}()
	}
	if err := s.Up(ctx, say); err != nil {
		return err
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if os.Getenv(k) == "" || strings.HasPrefix(k, "AWS_ENDPOINT_URL") || k == "TEMPORAL_ADDRESS" {
			if err := os.Setenv(k, v); err != nil {
				return fmt.Errorf("set %s for the stack: %w", k, err)
			}
		}
	}
	if os.Getenv("TAXFLOW_LOG_FORMAT") == "" {
		if err := os.Setenv("TAXFLOW_LOG_FORMAT", "console"); err != nil {
			return fmt.Errorf("set TAXFLOW_LOG_FORMAT: %w", err)
		}
	}
	if os.Getenv("TAXFLOW_LOG_LEVEL") == "" {
		// The demo's lines, not every request's; TAXFLOW_LOG_LEVEL=info shows them.
		if err := os.Setenv("TAXFLOW_LOG_LEVEL", "warn"); err != nil {
			return fmt.Errorf("set TAXFLOW_LOG_LEVEL: %w", err)
		}
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	step := time.Now()
	if err := applyInfra(ctx, a); err != nil {
		return err
	}
	fmt.Printf("infra    tables, buckets and functions applied (%s)\n", time.Since(step).Round(100*time.Millisecond))
	step = time.Now()
	d, err := seedData(ctx, a, o.seedOptions)
	if err != nil {
		return err
	}
	fmt.Printf("data     %d taxpayers, %d ledger entries, %d obligations (seed %d, reference day %s, periods %d-%d) (%s)\n",
		len(d.Taxpayers), len(d.Ledger), len(d.Obligations), d.Seed, d.Today.Format(time.DateOnly), d.Periods[0], d.LastPeriod,
		time.Since(step).Round(100*time.Millisecond))
	keys, err := demo.CreateKeys(ctx, a.cfg, a.clients)
	if err != nil {
		return err
	}
	c, err := a.temporal()
	if err != nil {
		return err
	}
	defer c.Close()
	stopWorker, err := a.startWorker(c)
	if err != nil {
		return err
	}
	defer stopWorker()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveAPI(gctx, a, c) })
	g.Go(func() error { return serveCodec(gctx, a) })
	if err := doctor(ctx, a, c); err != nil {
		return err
	}
	fmt.Printf("ready    worker and API running, self-check passed (%s)\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Println(metricsLine(a.cfg.Metrics))
	report, err := demo.Run(gctx, demo.Options{Config: a.cfg, Clients: a.clients, Temporal: c, Stack: s, Data: d, Keys: keys, Out: os.Stdout})
	if err != nil {
		cancel()
		return errors.Join(err, g.Wait())
	}
	if o.exitAfterDemo {
		cancel()
		return errors.Join(report.Err(), g.Wait())
	}
	fmt.Printf("taxflow is running (Ctrl-C stops it)\n\n")
	return g.Wait()
}
