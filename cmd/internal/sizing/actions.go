// Package sizing measures what one case of a process costs (history, Temporal Cloud
// actions, function invocations, DynamoDB and S3 requests) and turns the per-case figures
// into a model of a national volume and its monthly cost (docs/sizing.md).
package sizing

import (
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
)

// History is what one workflow run's history says about its cost.
type History struct {
	Events          int     `json:"history_events"`
	Bytes           int     `json:"history_bytes"`
	WorkflowTasks   int     `json:"workflow_tasks"`
	ActivityTasks   int     `json:"activity_tasks"`
	ActivityAttempt int     `json:"activity_attempts"`
	LocalActivities int     `json:"local_activities"`
	Timers          int     `json:"timers"`
	Signals         int     `json:"signals"`
	Updates         int     `json:"updates"`
	Upserts         int     `json:"search_attribute_upserts"`
	Children        int     `json:"child_workflows"`
	Actions         Actions `json:"actions"`
}

// Actions are Temporal Cloud's billable actions estimated from a history, by rule.
// The rules are those of https://docs.temporal.io/cloud/actions (read 2026-12-05).
type Actions struct {
	WorkflowStarted  int `json:"workflow_started"`
	ActivityAttempts int `json:"activity_attempts"`
	LocalActivities  int `json:"local_activity_workflow_tasks"`
	Timers           int `json:"timers"`
	Signals          int `json:"signals"`
	Updates          int `json:"updates"`
	Upserts          int `json:"search_attribute_upserts"`
	SideEffects      int `json:"side_effects"`
	Children         int `json:"child_workflows"`
	OptionsUpdated   int `json:"options_updated"`
	Total            int `json:"total"`
}

// Marker names the Go SDK records (internal_event_handlers.go).
const (
	markerLocalActivity     = "LocalActivity"
	markerSideEffect        = "SideEffect"
	markerMutableSideEffect = "MutableSideEffect"
)

// changeVersionAttribute is the search attribute workflow.GetVersion upserts.
const changeVersionAttribute = "TemporalChangeVersion"

// CountHistory reads one run's history. What is not in a history is not counted:
// queries (one action each when a worker answers one), rejected updates, activity
// heartbeats, workflow task heartbeats of long local activities, schedules and export.
func CountHistory(h *historypb.History) History {
	out := History{Events: len(h.GetEvents()), Bytes: proto.Size(h)}
	// The workflow task whose completion recorded the commands that follow it: markers of
	// local activities belong to the task completed just before them.
	lastCompleted := int64(-1)
	laTasks := map[int64]bool{}
	for _, ev := range h.GetEvents() {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			// Rule "Workflow started": a client start, Continue-As-New or a child start is one
			// action (the child's own start is counted in its parent, see below, so a child's
			// history counts it here too only when measured on its own).
			out.Actions.WorkflowStarted++
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			out.WorkflowTasks++
			lastCompleted = ev.GetEventId()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			out.ActivityTasks++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			// Rule "Activity started or retried": every attempt is an action. The server writes
			// one started event per activity, carrying the attempt that ran last, so the
			// attempts before it are in its Attempt number.
			a := int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())
			if a < 1 {
				a = 1
			}
			out.ActivityAttempt += a
			out.Actions.ActivityAttempts += a
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			switch ev.GetMarkerRecordedEventAttributes().GetMarkerName() {
			case markerLocalActivity:
				// Rule "Local Activity started": all local activities of one workflow task are
				// one action (Temporal Cloud counts the RecordMarker commands of a task once).
				out.LocalActivities++
				laTasks[lastCompleted] = true
			case markerSideEffect, markerMutableSideEffect:
				// Rule "Side Effect recorded" (a mutable one records a marker only when its
				// value changes, which is when it counts).
				out.Actions.SideEffects++
			}
			// A Version marker (workflow.GetVersion) is no action.
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			// Rule "Timer started", implicit timers (AwaitWithTimeout) included.
			out.Timers++
			out.Actions.Timers++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
			// Rule "Signal sent": one action per signal, counted where it is received.
			out.Signals++
			out.Actions.Signals++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			// Rule "Update received by Worker": every accepted update (rejected ones leave no
			// event and are not counted here).
			out.Updates++
			out.Actions.Updates++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			// Rule "Search Attribute upsert requested": one per UpsertSearchAttributes command
			// however many attributes it sets; TemporalChangeVersion alone is exempt, and the
			// attributes given at start are not counted.
			out.Upserts++
			fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
			if _, version := fields[changeVersionAttribute]; !(version && len(fields) == 1) {
				out.Actions.Upserts++
			}
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			// Rule "Start Child Workflow" and "Child Workflow Execution": two actions, the
			// recorded intent and the attempted start.
			out.Children++
			out.Actions.Children += 2
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED:
			// Rule "Workflow Execution Options updated".
			out.Actions.OptionsUpdated++
		}
	}
	out.Actions.LocalActivities = len(laTasks)
	a := &out.Actions
	a.Total = a.WorkflowStarted + a.ActivityAttempts + a.LocalActivities + a.Timers + a.Signals + a.Updates +
		a.Upserts + a.SideEffects + a.Children + a.OptionsUpdated
	return out
}
