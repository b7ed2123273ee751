package sizing

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

// hist builds a history of events in order, with ids from 1.
type hist struct{ h historypb.History }

func (b *hist) add(t enumspb.EventType, attrs func(*historypb.HistoryEvent)) *hist {
	ev := &historypb.HistoryEvent{EventId: int64(len(b.h.Events) + 1), EventType: t}
	if attrs != nil {
		attrs(ev)
	}
	b.h.Events = append(b.h.Events, ev)
	return b
}

func (b *hist) wft() *hist {
	return b.add(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, nil).add(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, nil).
		add(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, nil)
}

func (b *hist) marker(name string) *hist {
	return b.add(enumspb.EVENT_TYPE_MARKER_RECORDED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: name}}
	})
}

func (b *hist) started(attempt int32) *hist {
	b.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, nil)
	return b.add(enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: attempt}}
	})
}

func (b *hist) upsert(names ...string) *hist {
	fields := map[string]*commonpb.Payload{}
	for _, n := range names {
		fields[n] = &commonpb.Payload{Data: []byte(`"x"`)}
	}
	return b.add(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, func(ev *historypb.HistoryEvent) {
		ev.Attributes = &historypb.HistoryEvent_UpsertWorkflowSearchAttributesEventAttributes{UpsertWorkflowSearchAttributesEventAttributes: &historypb.UpsertWorkflowSearchAttributesEventAttributes{
			SearchAttributes: &commonpb.SearchAttributes{IndexedFields: fields}}}
	})
}

// Each rule of docs.temporal.io/cloud/actions on a history made for it.
func TestCountHistoryRules(t *testing.T) {
	for name, c := range map[string]struct {
		build func(b *hist)
		want  Actions
	}{
		"workflow started": {func(b *hist) { b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, nil).wft() }, Actions{WorkflowStarted: 1}},
		"an activity and its retries: one per attempt": {func(b *hist) { b.wft().started(1).started(3) }, Actions{ActivityAttempts: 4}},
		"local activities: one per workflow task that recorded any": {func(b *hist) {
			b.wft().marker(markerLocalActivity).marker(markerLocalActivity).marker(markerLocalActivity).wft().marker(markerLocalActivity)
		}, Actions{LocalActivities: 2}},
		"a version marker is no action": {func(b *hist) { b.wft().marker("Version") }, Actions{}},
		"side effects":                  {func(b *hist) { b.wft().marker(markerSideEffect).marker(markerMutableSideEffect) }, Actions{SideEffects: 2}},
		"timers": {func(b *hist) {
			b.wft().add(enumspb.EVENT_TYPE_TIMER_STARTED, nil).add(enumspb.EVENT_TYPE_TIMER_STARTED, nil).add(enumspb.EVENT_TYPE_TIMER_FIRED, nil)
		}, Actions{Timers: 2}},
		"signals received": {func(b *hist) { b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, nil) }, Actions{Signals: 1}},
		"updates accepted, not completed again": {func(b *hist) {
			b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, nil).add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, nil)
		}, Actions{Updates: 1}},
		"upserts: one per command, TemporalChangeVersion alone exempt": {func(b *hist) {
			b.wft().upsert("TaxflowStatus", "TaxflowProcess").upsert(changeVersionAttribute).upsert(changeVersionAttribute, "TaxflowStatus")
		}, Actions{Upserts: 2}},
		"a child workflow: two": {func(b *hist) { b.wft().add(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, nil) }, Actions{Children: 2}},
		"options updated":       {func(b *hist) { b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED, nil) }, Actions{OptionsUpdated: 1}},
		"what is no action: completions, workflow tasks, activity results": {func(b *hist) {
			b.wft().add(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, nil).add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, nil)
		}, Actions{}},
	} {
		t.Run(name, func(t *testing.T) {
			b := &hist{}
			c.build(b)
			got := CountHistory(&b.h).Actions
			want := c.want
			want.Total = want.WorkflowStarted + want.ActivityAttempts + want.LocalActivities + want.Timers + want.Signals +
				want.Updates + want.Upserts + want.SideEffects + want.Children + want.OptionsUpdated
			if got != want {
				t.Fatalf("actions %+v, want %+v", got, want)
			}
		})
	}
}

func TestCountHistoryShape(t *testing.T) {
	b := &hist{}
	b.add(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, nil).wft().started(2).marker(markerLocalActivity).wft()
	h := CountHistory(&b.h)
	if h.Events != 10 || h.Bytes == 0 || h.WorkflowTasks != 2 || h.ActivityTasks != 1 || h.ActivityAttempt != 2 || h.LocalActivities != 1 {
		t.Fatalf("%+v", h)
	}
	if h.Actions.Total != 1+2+1 {
		t.Fatalf("total %d, want 4", h.Actions.Total)
	}
}
