package workflows_test

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/workflows/histories"
)

const historyDir = "testdata/histories"

// Every recorded history of a waiting state (workflows/testdata/histories, recorded from a
// real run by `make histories`) replays against the current code. A change to a workflow
// that would take other steps in a running case fails here: put it behind
// workflow.GetVersion (README, "Changing a workflow safely").
func TestRecordedHistoriesReplay(t *testing.T) {
	files, err := histories.Files(historyDir)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	types := map[string]int{}
	events := 0
	for _, f := range files {
		name, _ := filepath.Rel(historyDir, f)
		name = strings.TrimSuffix(name, ".json")
		have[name] = true
		h, err := histories.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		typ := histories.WorkflowType(h)
		if err := histories.Replay(h, nil); err != nil {
			t.Errorf("%s (%s, %d events) no longer replays: %v", name, typ, len(h.Events), err)
			continue
		}
		types[typ]++
		events += len(h.Events)
	}
	var missing []string
	for typ, names := range histories.WaitingStates {
		for _, n := range names {
			if !have[n] {
				missing = append(missing, n+" ("+typ+")")
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no recorded history for: %s (run make histories)", strings.Join(missing, ", "))
	}
	var covered []string
	for typ, n := range types {
		covered = append(covered, typ+" "+strconv.Itoa(n))
	}
	sort.Strings(covered)
	t.Logf("replayed %d histories (%d events) of %d workflows: %s", len(files), events, len(types), strings.Join(covered, ", "))
	if len(types) < len(histories.WaitingStates) {
		t.Errorf("histories cover %d workflows, want %d", len(types), len(histories.WaitingStates))
	}
}

// The replay check can fail: a workflow registered under a recorded history's type that
// takes other steps (here: none at all) is reported as non-deterministic.
func TestReplayDetectsAChangedWorkflow(t *testing.T) {
	h, err := histories.Load(filepath.Join(historyDir, "refund-in-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	changed := func(ctx workflow.Context, _ any) (any, error) {
		return nil, workflow.Sleep(ctx, 0)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: histories.WorkflowType(h)})
	if err := r.ReplayWorkflowHistory(nil, h); err == nil {
		t.Fatal("a workflow with other steps replayed a recorded refund without an error")
	} else {
		t.Logf("as expected: %v", firstLine(err.Error()))
	}
	// The same history cut before a later workflow task still replays (a partial
	// history is what a running case has).
	i := len(h.Events) / 2
	for i > 3 && h.Events[i].GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED {
		i--
	}
	cut := &historypb.History{Events: h.Events[:i]}
	if err := histories.Replay(cut, nil); err != nil {
		t.Fatalf("a prefix of a recorded history (%d events) does not replay: %v", len(cut.Events), err)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
