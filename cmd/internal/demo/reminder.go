package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/schedules"
)

// Statuses of the reminder walk (a notification has no status of its own in the API).
const (
	reminderSent  = "sent"
	reminderLabel = "Напоминание отправлено"
)

// reminder applies the Temporal Schedules of the jobs and has the deadline-reminder
// schedule run for the reference day: triggered now when that day is today, backfilled
// at its 06:00 (Moscow) run otherwise. Then the outbox must hold a reminder for each
// unpaid seeded obligation on its lead time, and none for the paid ones.
func (m *demo) reminder() outcome {
	w := m.begin("reminder", reminderSent)
	w.step("apply the schedules")
	inactive := m.cfg.Inactive
	declared := schedules.Declare(inactive.Months, int(inactive.Grace.Hours()/24))
	applied, err := schedules.Apply(m.ctx, m.c, m.cfg.Temporal.TaskQueue, declared)
	if err != nil {
		return w.fail(err)
	}
	var sched schedules.Schedule
	for _, s := range declared {
		if s.Input.Job == workflows.JobReminders {
			sched = s
		}
	}
	w.o.caseID = sched.ID
	w.show("scheduled", "Запланировано", fmt.Sprintf("schedule %s (daily at 06:00 MSK, leads %v days): %s; %d schedules applied",
		sched.ID, sched.Input.LeadDays, applied[sched.ID], len(applied)))

	w.step("find the obligations due")
	type due struct {
		lead int
		paid bool
		ob   contract.Obligation
	}
	var dues []due
	for _, lead := range sched.Input.LeadDays {
		for _, paid := range []bool{false, true} {
			s, err := m.d.Find(seed.ObligationDue(lead, paid))
			if err != nil {
				return w.fail(err)
			}
			dues = append(dues, due{lead, paid, *s.Obligation})
		}
	}

	w.step("run the schedule for the reference day")
	h := m.c.ScheduleClient().GetHandle(m.ctx, sched.ID)
	desc, err := h.Describe(m.ctx)
	if err != nil {
		return w.fail(err)
	}
	seen := map[string]bool{}
	for _, a := range desc.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			// By run: a backfilled day's run keeps its workflow id (action and nominal
			// time), so a day backfilled again starts a new run under the same id.
			seen[a.StartWorkflowResult.FirstExecutionRunID] = true
		}
	}
	how := "triggered now"
	if m.d.Today.Equal(seed.Day(time.Now())) {
		err = h.Trigger(m.ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
	} else {
		at := m.d.Today.Add(6 * time.Hour) // the run the schedule made (or makes) that day
		how = "backfilled for " + at.Format("2006-01-02 15:04 MSK")
		err = h.Backfill(m.ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{
			Start: at.Add(-time.Minute), End: at.Add(time.Minute), Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}}})
	}
	if err != nil {
		return w.fail(err)
	}
	run, err := poll(m, "the schedule to start its run", func() (*client.ScheduleWorkflowExecution, error) {
		d, err := h.Describe(m.ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range d.Info.RecentActions {
			if r := a.StartWorkflowResult; r != nil && !seen[r.FirstExecutionRunID] {
				return r, nil
			}
		}
		return nil, nil
	}, func(r *client.ScheduleWorkflowExecution) bool { return r != nil }, func(*client.ScheduleWorkflowExecution) string { return "no new run" })
	if err != nil {
		return w.fail(err)
	}
	w.o.caseID = run.WorkflowID
	w.show("running", "Выполняется", "reminder sweep started by the schedule ("+how+")")

	w.step("wait for the sweep")
	var res contract.SweepResult
	if err := m.c.GetWorkflow(m.ctx, run.WorkflowID, run.FirstExecutionRunID).Get(m.ctx, &res); err != nil {
		return w.fail(err)
	}
	w.step("read the outbox")
	var reminded []string
	for _, d := range dues {
		id := fmt.Sprintf("reminder#%s#%d", d.ob.ObligationID, d.lead)
		var n contract.Notification
		found, err := store.Get(m.ctx, m.clients.DynamoDB, m.cfg.Name(notify.Table), map[string]types.AttributeValue{"notification_id": store.S(id)}, &n)
		if err != nil {
			return w.fail(err)
		}
		switch {
		case d.paid && found:
			return w.fail(fmt.Errorf("a reminder went out for a paid obligation due %s", d.ob.DueDate))
		case !d.paid && !found:
			return w.fail(fmt.Errorf("no reminder in the outbox for the unpaid %s tax due %s (%d days ahead); sweep: %+v", d.ob.Tax, d.ob.DueDate, d.lead, res))
		case !d.paid:
			reminded = append(reminded, fmt.Sprintf("%s due %s", d.ob.Tax, d.ob.DueDate))
		}
	}
	w.show(reminderSent, reminderLabel, fmt.Sprintf("sweep: %d due, %d sent, %d already sent; in the outbox: %s; none for the paid ones",
		res.Processed, res.Sent, res.Duplicates, strings.Join(reminded, ", ")))
	return w.o
}
