// Package schedules declares taxflow's Temporal Schedules and applies them idempotently.
// Fleet-wide jobs run from Schedules, never from cron workflows.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/workflows"
)

// Schedule is one declared schedule.
type Schedule struct {
	ID       string
	Calendar client.ScheduleCalendarSpec
	Every    time.Duration // instead of Calendar: a fixed interval
	Input    workflows.SweepWorkflowInput
	Overlap  enumspb.ScheduleOverlapPolicy
	CatchUp  time.Duration
}

func daily(hour int) client.ScheduleCalendarSpec {
	return client.ScheduleCalendarSpec{Hour: []client.ScheduleRange{{Start: hour}}, Minute: []client.ScheduleRange{{Start: 0}},
		Second: []client.ScheduleRange{{Start: 0}}}
}

// Declare lists the schedules (times in Moscow); the inactivity job's terms come from
// configuration (TAXFLOW_INACTIVE_MONTHS, TAXFLOW_INACTIVE_GRACE).
func Declare(inactiveMonths, inactiveGraceDays int) []Schedule {
	return []Schedule{
		{ID: "taxflow-deadline-reminders", Calendar: daily(6),
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobReminders, LeadDays: []int{30, 7, 1}},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, CatchUp: 7 * 24 * time.Hour},
		{ID: "taxflow-inactive-accounts", Calendar: daily(3),
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobInactive, InactiveMonths: inactiveMonths, GraceDays: inactiveGraceDays},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchUp: 24 * time.Hour},
		{ID: "taxflow-document-retention", Calendar: daily(4),
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobRetention, KeepDays: 30},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchUp: 24 * time.Hour},
		// The outbox relay: notifications the cases wrote reach their channels within a
		// minute or so; a run that finds nothing costs one query.
		{ID: "taxflow-outbox", Every: time.Minute,
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobOutbox},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchUp: time.Minute},
		// Refund reservations whose case ended without settling them (a terminated case)
		// give the overpayment back.
		{ID: "taxflow-reservation-expiry", Calendar: daily(5),
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobReservations},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchUp: 24 * time.Hour},
		// The obligations of the last tax period, from the ledger: daily, since charges of a
		// period arrive all through the next year and payments settle them; before the
		// reminders, so a new obligation is reminded of the same morning.
		{ID: "taxflow-obligations", Calendar: daily(2),
			Input:   workflows.SweepWorkflowInput{Job: workflows.JobObligations},
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchUp: 24 * time.Hour},
	}
}

func (s Schedule) spec() client.ScheduleSpec {
	if s.Every > 0 {
		return client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Every}}}
	}
	return client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{s.Calendar}, TimeZoneName: "Europe/Moscow"}
}

func (s Schedule) action(taskQueue string) *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{ID: s.ID + "-run", Workflow: workflows.Sweep, Args: []any{s.Input}, TaskQueue: taskQueue}
}

// Apply creates each schedule or updates it to the declaration; a second run changes
// nothing that matters (the same spec, action and policies are written again).
func Apply(ctx context.Context, c client.Client, taskQueue string, list []Schedule) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range list {
		h := c.ScheduleClient().GetHandle(ctx, s.ID)
		_, err := h.Describe(ctx)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{ID: s.ID, Spec: s.spec(), Action: s.action(taskQueue),
				Overlap: s.Overlap, CatchupWindow: s.CatchUp})
			if err != nil {
				return out, fmt.Errorf("create schedule %s: %w", s.ID, err)
			}
			out[s.ID] = "created"
		case err != nil:
			return out, fmt.Errorf("read schedule %s: %w", s.ID, err)
		default:
			err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				sc := in.Description.Schedule
				spec := s.spec()
				sc.Spec = &spec
				sc.Action = s.action(taskQueue)
				if sc.Policy == nil {
					sc.Policy = &client.SchedulePolicies{}
				}
				sc.Policy.Overlap, sc.Policy.CatchupWindow = s.Overlap, s.CatchUp
				return &client.ScheduleUpdate{Schedule: &sc}, nil
			}})
			if err != nil {
				return out, fmt.Errorf("update schedule %s: %w", s.ID, err)
			}
			out[s.ID] = "updated"
		}
	}
	return out, nil
}

// StartEventRelay starts the events relay job (workflows.EventRelay) unless it runs: one
// job per namespace, whoever starts it (every worker at start, `taxflow schedules
// apply`). A job that ended (terminated by an operator, failed) is started again. It is a
// long-running workflow rather than a Schedule because it waits for events itself (an
// invocation every 20 s when idle, ~200 ms lag); a Schedule's minute would be the lag.
func StartEventRelay(ctx context.Context, c client.Client, taskQueue string) (runID string, err error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.EventRelayID, TaskQueue: taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE},
		workflows.EventRelay, workflows.EventRelayInput{})
	if err != nil {
		return "", fmt.Errorf("start the event relay: %w", err)
	}
	return run.GetRunID(), nil
}
