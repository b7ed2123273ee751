package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/cmd/internal/bench"
)

// parseBenchFlags reads bench's flags into its options and checks them.
func parseBenchFlags(args []string) (bench.Options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	fs.IntVar(&o.N, "n", 50, "refunds per run")
	fs.IntVar(&o.Rounds, "rounds", 3, "rounds; each runs every variant once, in a rotating order, and the median is reported")
	fs.IntVar(&o.Sweep, "sweep", 0, "instead: time a reminder sweep over this many obligations")
	fs.IntVar(&o.Batch, "batch", 0, "instead: a batch file of this many lines from upload to report, against starting the same cases directly")
	fs.IntVar(&o.BatchHistory, "batch-history", 0, "with --batch: then a file of this many lines, its history size and the worker's peak heap")
	fs.IntVar(&o.Creates, "creates", 300, "creates per run in the create-path bench (0: skip it)")
	fs.BoolVar(&o.CreateOnly, "create-only", false, "run only the create-path bench")
	fs.BoolVar(&o.Overhead, "overhead", false, "instead: refunds with and without metrics and tracing, and the cost of them")
	fs.StringVar(&o.Temporal, "temporal", "", "the Temporal back end the bench is to measure: dev (the dev server) or server (the cluster on PostgreSQL); "+
		"it refuses when the stack of TAXFLOW_RUN_DIR runs the other (default: whatever it runs)")
	fs.BoolVar(&o.PerCase, "per-case", false, "instead: N cases of each process one at a time, metered, and their figures per case (docs/sizing.md); --json FILE writes them")
	fs.StringVar(&o.JSON, "json", "", "with --per-case: write the per-case averages to this file")
	fs.BoolVar(&o.Scaling, "scaling", false, "also run the refunds via the Lambda host on 1 and on 2 `taxflow worker` processes (a task queue of their own) and report the scaling")
	fs.IntVar(&o.Open, "open", 0, "instead: put this many cases into waiting states on a fresh stack and measure it (cmd/internal/bench/open.go)")
	fs.BoolVar(&o.Webhooks, "webhooks", false, "instead: refunds of a tenant with one webhook endpoint against a tenant with none (rounds alternating), and the delivery lag (cmd/internal/bench/hooks.go)")
	fs.IntVar(&o.Wave, "wave", 0, "instead: this many refunds in review fall due at one instant a few minutes ahead; how the worker takes the wave of escalations (cmd/internal/bench/wave.go)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	return o, o.Check()
}

// runBench measures on the stack of the run directory (cmd/internal/bench): the options
// and the stack are checked before anything connects.
func runBench(ctx context.Context, args []string) error {
	o, err := parseBenchFlags(args)
	if err != nil {
		return err
	}
	st, stErr := localStack()
	target, err := bench.Locate(o, st, stErr, os.Getenv)
	if err != nil {
		return err
	}
	return withTemporal(ctx, func(a *app, c client.Client) error {
		return bench.Run(ctx, bench.Env{Config: a.cfg, Clients: a.clients, Log: a.log, Invoker: a.invoker(), Temporal: c}, o, target)
	})
}
