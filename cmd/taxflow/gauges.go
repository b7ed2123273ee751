package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/metrics"
)

const gaugesUsage = `usage:
  taxflow gauges rebuild [--passes N]
        compute the case counters (the business gauges' open counts and reserved amount) once
        from a full scan of the case projections; safe while cases move (a counter a step
        changes during the scan is counted again, up to N passes, default 5); idempotent`

// runGauges rebuilds the case counters with the operator's credentials (a full Scan of
// the projections: no function may do that).
func runGauges(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return errors.New(gaugesUsage)
	}
	fs := flag.NewFlagSet("gauges rebuild", flag.ContinueOnError)
	passes := fs.Int("passes", 5, "full scans at most, while steps keep changing a counter")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *passes < 1 {
		return fmt.Errorf("--passes: must be 1 or more, not %d", *passes)
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	res, err := metrics.RebuildCounts(ctx, a.clients.DynamoDB, a.cfg.Name(cases.Table), a.cfg.Name(transition.CountsTable), *passes)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(os.Stdout, "case counters rebuilt: %d cases, %d counters written, %d passes\n", res.Cases, res.Counters, res.Passes)
	if len(res.Busy) > 0 {
		return fmt.Errorf("counters changed by steps in every pass, left as they were (run again): %s", strings.Join(res.Busy, ", "))
	}
	return nil
}
