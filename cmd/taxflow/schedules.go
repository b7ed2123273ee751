package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/schedules"
)

// runSchedules: taxflow schedules apply|list|pause|unpause|trigger [id]
func runSchedules(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: taxflow schedules apply|list|pause ID|unpause ID|trigger ID")
	}
	return withTemporal(ctx, func(a *app, c client.Client) error {
		sc := c.ScheduleClient()
		switch args[0] {
		case "apply":
			inactive := a.cfg.Inactive
			res, err := schedules.Apply(ctx, c, a.cfg.Temporal.TaskQueue, schedules.Declare(inactive.Months, int(inactive.Grace.Hours()/24)))
			ids := make([]string, 0, len(res))
			for id := range res {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				fmt.Printf("%-30s %s\n", id, res[id])
			}
			if err != nil {
				return err
			}
			if _, err := schedules.StartEventRelay(ctx, c, a.cfg.Temporal.TaskQueue); err != nil {
				return err
			}
			fmt.Printf("%-30s %s\n", workflows.EventRelayID, "running")
			return nil
		case "list":
			it, err := sc.List(ctx, client.ScheduleListOptions{})
			if err != nil {
				return err
			}
			for it.HasNext() {
				e, err := it.Next()
				if err != nil {
					return err
				}
				next := ""
				if len(e.NextActionTimes) > 0 {
					next = e.NextActionTimes[0].Format(time.RFC3339)
				}
				fmt.Printf("%-30s paused=%-5v next=%s\n", e.ID, e.Paused, next)
			}
			return nil
		case "pause", "unpause", "trigger":
			if len(args) != 2 {
				return fmt.Errorf("usage: taxflow schedules %s ID", args[0])
			}
			h := sc.GetHandle(ctx, args[1])
			switch args[0] {
			case "pause":
				return h.Pause(ctx, client.SchedulePauseOptions{Note: "paused with taxflow schedules pause"})
			case "unpause":
				return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "unpaused with taxflow schedules unpause"})
			default:
				return h.Trigger(ctx, client.ScheduleTriggerOptions{})
			}
		}
		return fmt.Errorf("unknown schedules command %q", args[0])
	})
}
