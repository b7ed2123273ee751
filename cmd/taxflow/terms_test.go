package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/workflows"
)

// fakeCases is a Temporal client over open cases: each answers the update with its
// result or error; pages of two.
type fakeCases struct {
	ids     []string
	answers map[string]any // workflows.TermRecomputed or error
	queries []string
	updated []string
}

func (f *fakeCases) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.queries = append(f.queries, req.Query)
	from := 0
	if len(req.NextPageToken) > 0 {
		from = int(req.NextPageToken[0])
	}
	res := &workflowservice.ListWorkflowExecutionsResponse{}
	for i := from; i < len(f.ids) && i < from+2; i++ {
		res.Executions = append(res.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: f.ids[i]}})
	}
	if from+2 < len(f.ids) {
		res.NextPageToken = []byte{byte(from + 2)}
	}
	return res, nil
}

func (f *fakeCases) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.updated = append(f.updated, o.WorkflowID+":"+o.UpdateName)
	if err, ok := f.answers[o.WorkflowID].(error); ok {
		return nil, err
	}
	return fakeHandle{res: f.answers[o.WorkflowID].(workflows.TermRecomputed)}, nil
}

type fakeHandle struct{ res workflows.TermRecomputed }

func (fakeHandle) WorkflowID() string { return "" }
func (fakeHandle) RunID() string      { return "" }
func (fakeHandle) UpdateID() string   { return "" }
func (h fakeHandle) Get(_ context.Context, v any) error {
	b, _ := json.Marshal(h.res)
	return json.Unmarshal(b, v)
}

// taxflow terms recompute selects the open refunds and declarations, sends each the
// update and counts the answers: moved, unchanged, refused (a late message, or a case
// that ended meanwhile) and failed (then it exits with an error, to be run again).
func TestTermsRecomputeCountsTheAnswers(t *testing.T) {
	f := &fakeCases{ids: []string{"refund-a", "refund-b", "declaration-c", "refund-d", "refund-e"}, answers: map[string]any{
		"refund-a":      workflows.TermRecomputed{Changed: true, Previous: "2027-11-05", DeadlineDay: "2027-11-08", Decreed: []int{2027}},
		"refund-b":      workflows.TermRecomputed{DeadlineDay: "2027-11-12"},
		"declaration-c": temporal.NewApplicationError("recompute term: the case is decided", fnerr.TypeConflict),
		"refund-d":      serviceerror.NewNotFound("workflow execution already completed"),
		"refund-e":      errors.New("context deadline exceeded"),
	}}
	var out bytes.Buffer
	err := recomputeTerms(context.Background(), f, "default", 2027, &out)
	if err == nil || !strings.Contains(err.Error(), "1 cases did not answer") {
		t.Fatalf("error %v", err)
	}
	want := "refund-a 2027-11-05 -> 2027-11-08\nchanged 1, unchanged 1, refused 2, failed 1\n"
	if out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	if len(f.updated) != 5 || f.updated[2] != "declaration-c:recompute_term" {
		t.Fatalf("updated %v", f.updated)
	}
	for _, q := range f.queries {
		if q != `ExecutionStatus = "Running" AND TaxflowProcess IN ("refund", "declaration")` {
			t.Fatalf("query %q", q)
		}
	}
	if len(f.queries) != 3 {
		t.Fatalf("%d pages listed, want 3", len(f.queries))
	}
}

// --year refuses a year this release has no decree for (nothing would move).
func TestTermsRecomputeYearNeedsTheDecree(t *testing.T) {
	cal, err := calendar.Load(fstest.MapFS{"data/2027.txt": {Data: []byte("off 2027-11-05\n")}}, "data")
	if err != nil {
		t.Fatal(err)
	}
	if y, err := termsYear([]string{"--year", "2027"}, cal); err != nil || y != 2027 {
		t.Fatalf("decreed 2027: %d, %v", y, err)
	}
	if _, err := termsYear([]string{"--year", "2028"}, cal); err == nil || !strings.Contains(err.Error(), "--year") {
		t.Fatalf("undecreed 2028: %v", err)
	}
	if _, err := termsYear([]string{"--year"}, cal); err == nil {
		t.Fatal("--year without a value accepted")
	}
}
