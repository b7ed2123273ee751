package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
)

// Scheduled jobs, domain.md §5: each runs as a Sweep workflow started by a Temporal Schedule.

// Jobs a Sweep runs.
const (
	JobReminders = "reminders"
	JobInactive  = "inactive"
	JobRetention = "retention"
	// JobOutbox delivers pending notifications (every minute): the outbox's relay.
	JobOutbox = "outbox"
	// JobReservations voids refund reservations that outlived their case (functions/ledger).
	JobReservations = "reservations"
	JobObligations  = "obligations" // statutory obligations of a period from the ledger's charges
)

// SweepWorkflowInput says what to sweep; the cursor fields carry a sweep across
// continue-as-new.
type SweepWorkflowInput struct {
	Job       string `json:"job"`
	Date      string `json:"date,omitempty"`       // YYYY-MM-DD; default: the scheduled day (Moscow)
	LeadDays  []int  `json:"lead_days,omitempty"`  // reminders: 30, 7, 1
	GraceDays int    `json:"grace_days,omitempty"` // inactive accounts: notice → flagged
	// InactiveMonths: inactive accounts, no activity this long → notice [000:40]
	// (TAXFLOW_INACTIVE_MONTHS; 0: the function's default of 12).
	InactiveMonths int `json:"inactive_months,omitempty"`
	Period         int `json:"period,omitempty"`        // obligations: the tax period; 0: the year before Date
	KeepDays       int `json:"keep_days,omitempty"`     // retention
	PageSize       int `json:"page_size,omitempty"`     // items a page
	PagesPerRun    int `json:"pages_per_run,omitempty"` // pages before continue-as-new

	Lead   int                  `json:"lead,omitempty"` // index into LeadDays
	Cursor string               `json:"cursor,omitempty"`
	Totals contract.SweepResult `json:"totals"`
}

// ScheduledStart is the time a Schedule meant a run for (backfills included).
var ScheduledStart = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// Sweep pages through one job's items, and continues as new every PagesPerRun pages so
// a sweep of any size keeps a short history.
func Sweep(ctx workflow.Context, in SweepWorkflowInput) (contract.SweepResult, error) {
	if in.Date == "" {
		at := workflow.Now(ctx)
		if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(ScheduledStart); ok {
			at = t
		}
		in.Date = at.In(calendar.Moscow).Format(time.DateOnly)
	}
	if in.PageSize <= 0 {
		in.PageSize = 500
	}
	if in.PagesPerRun <= 0 {
		in.PagesPerRun = 50
	}
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, activities.SweepOptions)
	for pages := 0; ; pages++ {
		if pages == in.PagesPerRun {
			return in.Totals, workflow.NewContinueAsNewError(ctx, Sweep, in)
		}
		page := contract.SweepPage{Date: in.Date, Cursor: in.Cursor, Limit: in.PageSize, GraceDays: in.GraceDays, KeepDays: in.KeepDays,
			InactiveMonths: in.InactiveMonths, Period: in.Period}
		var res contract.SweepResult
		var err error
		switch in.Job {
		case JobReminders:
			if in.Lead >= len(in.LeadDays) {
				return in.Totals, nil
			}
			page.LeadDays = in.LeadDays[in.Lead]
			err = workflow.ExecuteActivity(actx, a.SweepReminders, page).Get(ctx, &res)
		case JobInactive:
			err = workflow.ExecuteActivity(actx, a.SweepInactive, page).Get(ctx, &res)
		case JobRetention:
			err = workflow.ExecuteActivity(actx, a.SweepRetention, page).Get(ctx, &res)
		case JobOutbox:
			err = workflow.ExecuteActivity(actx, a.SweepOutbox, page).Get(ctx, &res)
		case JobReservations:
			err = workflow.ExecuteActivity(actx, a.SweepReservations, page).Get(ctx, &res)
		case JobObligations:
			err = workflow.ExecuteActivity(actx, a.SweepObligations, page).Get(ctx, &res)
		default:
			return in.Totals, temporal.NewNonRetryableApplicationError("unknown job "+in.Job, "InvalidInput", nil)
		}
		if err != nil {
			return in.Totals, err
		}
		in.Totals.Processed += res.Processed
		in.Totals.Sent += res.Sent
		in.Totals.Duplicates += res.Duplicates
		in.Totals.Flagged += res.Flagged
		in.Totals.Created += res.Created
		in.Cursor = res.Cursor
		if in.Cursor != "" {
			continue
		}
		if in.Job != JobReminders {
			return in.Totals, nil
		}
		in.Lead++ // the next lead time
	}
}
