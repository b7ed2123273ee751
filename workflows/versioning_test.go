package workflows_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/taxflow/taxflow/internal/contract"
	. "github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// The change ids of workflows/record.go's changeRecordStepTask and changeRecordStepLocal.
const (
	changeRecordStepTask  = "record-step-task"
	changeRecordStepLocal = "record-step-local"
)

// autoApprovalChange is the change id of workflows/refund.go's changeAutoApprovalSkipsReview.
const autoApprovalChange = "auto-approval-skips-review"

// markers are the GetVersion change ids a history recorded.
func markers(h *historypb.History) []string {
	var out []string
	for _, ev := range h.Events {
		if ev.GetEventType() != enumspb.EVENT_TYPE_MARKER_RECORDED {
			continue
		}
		for _, p := range ev.GetMarkerRecordedEventAttributes().GetDetails()["change-id"].GetPayloads() {
			out = append(out, string(bytes.Trim(p.GetData(), `"`)))
		}
	}
	return out
}

// recordsTo tells whether the history records a transition to status: the input of a
// RecordTransition activity task names it, or (a step run as a local activity keeps no
// input in the history) the status search attribute is set to it once it is written.
func recordsTo(h *historypb.History, status string) bool {
	for _, ev := range h.Events {
		if p := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()["TaxflowStatus"]; p != nil &&
			string(bytes.Trim(p.GetData(), `"`)) == status {
			return true
		}
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a.GetActivityType().GetName() != "RecordTransition" {
			continue
		}
		for _, p := range a.GetInput().GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(`"to":"`+status+`"`)) {
				return true
			}
		}
	}
	return false
}

// The change auto-approval-skips-review, behind workflow.GetVersion: runs recorded before
// it (the automatic approval went through in_review, no marker) replay on the new code
// and keep their path; runs recorded after it carry the marker and go from received (or
// awaiting_info) straight to approved; a new run takes the new path.
func TestAutoApprovalSkipsReviewIsVersioned(t *testing.T) {
	dir := filepath.Join("testdata", "histories")
	for _, name := range []string{"refund-paid", "refund-held-for-requisites", "refund-payout-failed"} {
		before, err := histories.Load(filepath.Join(dir, "before-"+autoApprovalChange, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(markers(before)) != 0 || !recordsTo(before, RefundInReview) {
			t.Fatalf("%s before the change: markers %v, in_review %v; want none and true", name, markers(before), recordsTo(before, RefundInReview))
		}
		if err := histories.Replay(before, nil); err != nil {
			t.Fatalf("%s recorded before the change does not replay on the new code: %v", name, err)
		}
		after, err := histories.Load(filepath.Join(dir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if m := markers(after); !slices.Contains(m, autoApprovalChange) || recordsTo(after, RefundInReview) || !recordsTo(after, RefundApproved) {
			t.Fatalf("%s after the change: markers %v, in_review %v; want %s among them and false", name, m, recordsTo(after, RefundInReview), autoApprovalChange)
		}
		if err := histories.Replay(after, nil); err != nil {
			t.Fatalf("%s recorded after the change does not replay: %v", name, err)
		}
	}
	// A reviewed refund does not ask this change's version: no marker of it.
	reviewed, err := histories.Load(filepath.Join(dir, "refund-in-review.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := markers(reviewed); slices.Contains(m, autoApprovalChange) || !recordsTo(reviewed, RefundInReview) {
		t.Fatalf("refund-in-review: markers %v, want no %s; in_review recorded %v", m, autoApprovalChange, recordsTo(reviewed, RefundInReview))
	}

	// A new run takes the new path: TestNewAutoApprovalSkipsReview.
}

// steps counts a history's transition records: those run as activity tasks and those run
// as local activities (a LocalActivity marker whose data names RecordTransition).
func steps(h *historypb.History) (tasks, local int) {
	for _, ev := range h.Events {
		if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "RecordTransition" {
			tasks++
		}
		m := ev.GetMarkerRecordedEventAttributes()
		if m.GetMarkerName() != "LocalActivity" {
			continue
		}
		for _, p := range m.GetDetails()["data"].GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(`"ActivityType":"RecordTransition"`)) {
				local++
			}
		}
	}
	return tasks, local
}

// localStepsPerTask counts, for each workflow task of a history, the transition records
// it ran as local activities (their markers come between the task's completion and the
// next task).
func localStepsPerTask(h *historypb.History) []int {
	var out []int
	for _, ev := range h.Events {
		if ev.GetWorkflowTaskCompletedEventAttributes() != nil {
			out = append(out, 0)
		}
		m := ev.GetMarkerRecordedEventAttributes()
		if m.GetMarkerName() != "LocalActivity" || len(out) == 0 {
			continue
		}
		for _, p := range m.GetDetails()["data"].GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(`"ActivityType":"RecordTransition"`)) {
				out[len(out)-1]++
			}
		}
	}
	return out
}

// The change record-step-local, behind workflow.GetVersion: a run recorded before it
// wrote every transition record as an activity task and replays on the new code that
// way; a run recorded after it carries the marker and writes the first step of each
// workflow task as a local activity — never more than one in a task. Both replay.
func TestRecordStepLocalIsVersioned(t *testing.T) {
	const change = "record-step-local"
	dir := filepath.Join("testdata", "histories")
	before, err := histories.Files(filepath.Join(dir, "before-"+change))
	if err != nil || len(before) < 10 {
		t.Fatalf("histories before %s: %d (%v)", change, len(before), err)
	}
	for _, f := range before {
		old, err := histories.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		tasks, local := steps(old)
		if tasks == 0 || local != 0 || slices.Contains(markers(old), change) {
			t.Fatalf("%s before the change: %d task steps, %d local, markers %v", f, tasks, local, markers(old))
		}
		if err := histories.Replay(old, nil); err != nil {
			t.Fatalf("%s recorded before the change does not replay on the new code: %v", f, err)
		}
		// recorded after it, and kept from before record-step-task
		after, err := histories.Load(filepath.Join(dir, "before-"+changeRecordStepTask, filepath.Base(f)))
		if err != nil {
			t.Fatalf("%s has no history recorded after the change: %v", filepath.Base(f), err)
		}
		_, local = steps(after)
		if local == 0 || !slices.Contains(markers(after), change) {
			t.Fatalf("%s after the change: %d local steps, markers %v", filepath.Base(f), local, markers(after))
		}
		for task, n := range localStepsPerTask(after) {
			if n > 1 {
				t.Fatalf("%s: workflow task %d ran %d steps as local activities (at most one)", filepath.Base(f), task+1, n)
			}
		}
		if err := histories.Replay(after, nil); err != nil {
			t.Fatalf("%s recorded after the change does not replay: %v", filepath.Base(f), err)
		}
	}
}

// The change record-step-task, behind workflow.GetVersion: a run recorded on the path of
// record-step-local (its marker) wrote local steps and replays on the new code that way;
// a run recorded after it carries the marker of record-step-task, none of
// record-step-local, and writes every transition record as an activity task — no local
// record step at all. Every history of a process that records transitions is recorded
// both ways.
func TestRecordStepTaskIsVersioned(t *testing.T) {
	dir := filepath.Join("testdata", "histories")
	before, err := histories.Files(filepath.Join(dir, "before-"+changeRecordStepTask))
	if err != nil || len(before) < 10 {
		t.Fatalf("histories before %s: %d (%v)", changeRecordStepTask, len(before), err)
	}
	checked := 0
	for _, f := range before {
		old, err := histories.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		after, err := histories.Load(filepath.Join(dir, filepath.Base(f)))
		if err != nil {
			t.Fatalf("%s has no history recorded after the change: %v", filepath.Base(f), err)
		}
		oldTasks, oldLocal := steps(old)
		tasks, local := steps(after)
		if oldTasks+oldLocal == 0 { // a sweep or a batch: no transition records either way
			if tasks+local != 0 {
				t.Fatalf("%s: no record steps before the change, %d after", filepath.Base(f), tasks+local)
			}
			continue
		}
		if oldLocal == 0 || !slices.Contains(markers(old), changeRecordStepLocal) || slices.Contains(markers(old), changeRecordStepTask) {
			t.Fatalf("%s before the change: %d local steps, markers %v", f, oldLocal, markers(old))
		}
		if m := markers(after); local != 0 || tasks == 0 || !slices.Contains(m, changeRecordStepTask) || slices.Contains(m, changeRecordStepLocal) {
			t.Fatalf("%s after the change: %d task steps, %d local, markers %v; want task steps only, the marker of %s and none of %s",
				filepath.Base(f), tasks, local, m, changeRecordStepTask, changeRecordStepLocal)
		}
		if err := histories.Replay(after, nil); err != nil {
			t.Fatalf("%s recorded after the change does not replay: %v", filepath.Base(f), err)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d histories with record steps", checked)
	}
	t.Logf("%d histories recorded both ways", checked)
}

// Every history kept from before a change (testdata/histories/before-<change id>/) replays
// on the current code and does not carry that change's marker: the old path is still
// there. A recorded run of the locked account after locked-account-reminder carries it.
func TestHistoriesBeforeEachChangeReplay(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "histories", "before-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no kept histories (%v)", err)
	}
	n := 0
	for _, dir := range dirs {
		change := strings.TrimPrefix(filepath.Base(dir), "before-")
		files, err := histories.Files(dir)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no histories (%v)", dir, err)
		}
		for _, f := range files {
			h, err := histories.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(markers(h), change) {
				t.Errorf("%s was kept from before %s but carries its marker", f, change)
			}
			if err := histories.Replay(h, nil); err != nil {
				t.Errorf("%s (before %s) does not replay: %v", f, change, err)
			}
			n++
		}
	}
	after, err := histories.Load(filepath.Join("testdata", "histories", "account-awaiting-specialist.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m := markers(after); !slices.Contains(m, "locked-account-reminder") {
		t.Errorf("account-awaiting-specialist recorded after locked-account-reminder: markers %v", m)
	}
	t.Logf("%d histories kept from before %d changes replay", n, len(dirs))
}

// foldedChange is the change id of workflows/refund.go's changeRefundFoldedSteps.
const foldedChange = "refund-folded-steps"

// scheduled counts a history's activity tasks of a type, and those whose input holds sub.
func scheduled(h *historypb.History, activityType, sub string) (n, with int) {
	for _, ev := range h.Events {
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a.GetActivityType().GetName() != activityType {
			continue
		}
		n++
		for _, p := range a.GetInput().GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(sub)) {
				with++
				break
			}
		}
	}
	return n, with
}

// transitionRecords counts the record-transition activity tasks of a history that move
// the case to status.
func transitionRecords(t *testing.T, h *historypb.History, status string) int {
	n := 0
	for _, ev := range h.Events {
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a.GetActivityType().GetName() != "RecordTransition" {
			continue
		}
		for _, p := range a.GetInput().GetPayloads() {
			var in contract.RecordInput
			if err := json.Unmarshal(p.GetData(), &in); err != nil {
				t.Fatal(err)
			}
			for _, e := range in.Entries {
				if e.Action == "status_changed" && e.To == status {
					n++
				}
			}
		}
	}
	return n
}

// localRuns counts the local activities of a type a history recorded (their markers).
func localRuns(h *historypb.History, activityType string) int {
	n := 0
	for _, ev := range h.Events {
		m := ev.GetMarkerRecordedEventAttributes()
		if m.GetMarkerName() != "LocalActivity" {
			continue
		}
		for _, p := range m.GetDetails()["data"].GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(`"ActivityType":"`+activityType+`"`)) {
				n++
			}
		}
	}
	return n
}

// The change refund-folded-steps, behind workflow.GetVersion: the refunds recorded before
// it (no marker: the reads as activity tasks, approved and paid records of their own)
// replay on the new code and keep their path; those recorded after carry the marker, run
// the two first reads as local activities, and write approved in the reservation and
// paid in the payout's posting — never as records of their own.
func TestRefundFoldedStepsIsVersioned(t *testing.T) {
	dir := filepath.Join("testdata", "histories")
	before, err := histories.Files(filepath.Join(dir, "before-"+foldedChange))
	if err != nil || len(before) < 5 {
		t.Fatalf("histories before %s: %d (%v)", foldedChange, len(before), err)
	}
	for _, f := range before {
		name := filepath.Base(f)
		old, err := histories.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := scheduled(old, "CheckTaxpayer", ""); slices.Contains(markers(old), foldedChange) || n == 0 || localRuns(old, "CheckTaxpayer") != 0 {
			t.Fatalf("%s before the change: markers %v, %d CheckTaxpayer tasks", name, markers(old), n)
		}
		if err := histories.Replay(old, nil); err != nil {
			t.Fatalf("%s recorded before the change does not replay on the new code: %v", name, err)
		}
		after, err := histories.Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s has no history recorded after the change: %v", name, err)
		}
		if !slices.Contains(markers(after), foldedChange) || localRuns(after, "CheckTaxpayer") != 1 || localRuns(after, "ComputeOverpayment") != 1 {
			t.Fatalf("%s after the change: markers %v, local reads %d and %d", name, markers(after),
				localRuns(after, "CheckTaxpayer"), localRuns(after, "ComputeOverpayment"))
		}
		for _, status := range []string{RefundApproved, RefundPaid} {
			if transitionRecords(t, after, status) != 0 {
				t.Fatalf("%s after the change: %s recorded by a step of its own", name, status)
			}
		}
		if err := histories.Replay(after, nil); err != nil {
			t.Fatalf("%s recorded after the change does not replay: %v", name, err)
		}
	}
	paid, err := histories.Load(filepath.Join(dir, "refund-paid.json"))
	if err != nil {
		t.Fatal(err)
	}
	reserves, withStep := scheduled(paid, "Reserve", `"step":`)
	payouts, payWithStep := scheduled(paid, "Payout", `"step":`)
	if reserves != 1 || withStep != 1 || payouts != 1 || payWithStep != 1 || !recordsTo(paid, RefundPaid) {
		t.Fatalf("refund-paid: %d reservations (%d with the step), %d payouts (%d with the step)", reserves, withStep, payouts, payWithStep)
	}
}
