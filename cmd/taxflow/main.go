// Command taxflow is the one binary of taxflow: the local stack, the worker, the API,
// provisioning, the local Lambda host and operator commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `taxflow: back office for long-running tax processes.

Usage:
  taxflow dev [--date D]      start the local stack, apply infra, load the data, run worker and API, walk
                              every process through the API; keep running until Ctrl-C stops it all
  taxflow demo [--date D]     the same, then stop everything; exit 0 only if every process reached its end
  taxflow worker              run the Temporal worker
  taxflow api                 run the HTTP API
  taxflow codec-server        decrypt payloads for Temporal's Web UI and CLI (the remote codec protocol)
  taxflow infra apply         create or update tables, buckets and functions at the configured endpoint
  taxflow infra template      print the AWS SAM template generated from the declaration
  taxflow stack up [--temporal dev|server]|down|status|env   manage the Docker-less local stack (dev server, or a Temporal cluster on PostgreSQL)
  taxflow lambda-host         run the local Lambda host (started by 'stack up')
  taxflow doctor              run the self-check workflow end to end
  taxflow seed [--taxpayers N] [--seed S] [--date YYYY-MM-DD]   load the demo dataset (see taxflow seed --help)
  taxflow bench [--n N] [--temporal dev|server] [--scaling]   N refunds end to end (Lambda host, in process)
                              against bare baselines; on the cluster with 1 and 2 worker processes
                              (--per-case: figures per case for docs/sizing.md; --open N: N waiting cases, then latencies)
  taxflow schedules apply|list|pause ID|unpause ID|trigger ID   the Temporal Schedules of the jobs
  taxflow apikey create --tenant T --role R [--expires 90d] [--bound-to T] [--person ID]   create an API key
                              (printed once, stored hashed); staff keys: --tenant tax-office --person ID
  taxflow batch submit FILE   upload a batch file (CSV or JSON Lines) to the caller's inbox, follow it to its
                              report, print the counts (TAXFLOW_API_URL, TAXFLOW_API_KEY)
  taxflow batch status ID     a batch's status, counts and report link
  taxflow apikey list [--tenant T] | revoke KEY_ID           list keys with their last use; revoke one
  taxflow staff create --role R --name LOGIN [--tenant T] [--person ID] [--password-stdin]   a staff account of the
                              console at /console (password bcrypt-hashed; a generated one is printed once)
  taxflow staff disable NAME | staff sessions revoke NAME   close an account (and its sessions) | end its sessions

  taxflow trust put roots|crl|banks FILE|-   check and store a trust anchor (e-signature roots, CRL,
                              partner bank keys) in <prefix>-trust; only operators write it
  taxflow trust show          the trust anchors in place

  taxflow keyrate show        the key-rate table in force, the Board meetings it knows, what it may lack
  taxflow keyrate add --from DATE --rate R --source URL   add a Board decision (the workers use it within a minute)
  taxflow keyrate meeting --on DATE --source URL          add a scheduled Board meeting on the key rate

  taxflow gauges rebuild      compute the case counters behind the business gauges from a full scan
  taxflow terms recompute [--year Y]   count the terms of open refunds and declarations again over the
                              production calendar of this release (after a year's decree is added)

  taxflow tasks backfill      give the cases already waiting in a human step their task-list keys (after
                              the upgrade that adds the cases table's by_task indexes; safe to run again)

Configuration is read from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "taxflow:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Print(usage)
		return nil
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "dev":
		return runDev(ctx, rest)
	case "demo":
		return runDemo(ctx, rest)
	case "worker":
		return runWorker(ctx)
	case "api":
		return runAPI(ctx)
	case "codec-server":
		return runCodecServer(ctx)
	case "infra":
		return runInfra(ctx, rest)
	case "stack":
		return runStack(ctx, rest)
	case "lambda-host":
		return runLambdaHost(ctx, rest)
	case "doctor":
		return runDoctor(ctx)
	case "seed":
		return runSeed(ctx, rest)
	case "apikey":
		return runAPIKey(ctx, rest)
	case "staff":
		return runStaff(ctx, rest, os.Stdin)
	case "trust":
		return runTrust(ctx, rest, os.Stdin)
	case "bench":
		return runBench(ctx, rest)
	case "schedules":
		return runSchedules(ctx, rest)
	case "batch":
		return runBatch(ctx, rest)
	case "keyrate":
		return runKeyrate(ctx, rest)
	case "terms":
		return runTerms(ctx, rest)
	case "gauges":
		return runGauges(ctx, rest)
	case "tasks":
		return runTasks(ctx, rest)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}
