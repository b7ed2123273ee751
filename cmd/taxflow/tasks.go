package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/cases"
)

const tasksUsage = "usage: taxflow tasks backfill   give the cases already waiting in a human step their task-list keys (once, after the upgrade that adds the by_task indexes; safe to run again)"

// runTasks: `taxflow tasks backfill`. A command, not part of `infra apply`: apply manages
// resources (and on AWS the template does, where no data step runs); the backfill is a
// data step over every projection, run once per deployment after the functions that
// write the keys are deployed, and harmless to repeat.
func runTasks(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "backfill" {
		return errors.New(tasksUsage)
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := cases.Backfill(ctx, a.clients.DynamoDB, a.cfg.Name(cases.Table), a.cfg.Name(api.OwnersTable))
	fmt.Printf("tasks backfill: %d projections read, %d waiting in a human step, %d given their keys, %d moved on meanwhile (%s)\n",
		rep.Scanned, rep.Waiting, rep.Written, rep.Moved, time.Since(start).Round(time.Millisecond))
	return err
}
