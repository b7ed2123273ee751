package workflows

import (
	"slices"
	"testing"
)

// The bench's all-tasks baseline keeps the refund's activity count and order: every
// local activity becomes a step of one task where it ran.
func TestBareAsTasksKeepsCountAndOrder(t *testing.T) {
	refund := BareWorkflowInput{Shape: []int{2, 1, 1, 1}, Local: []int{1, 0, 0, 1, 1}}
	got := refund.AsTasks()
	if want := []int{1, 2, 1, 1, 1, 1, 1}; !slices.Equal(got.Shape, want) || len(got.Local) != 0 {
		t.Fatalf("AsTasks %+v, want shape %v and no local activities", got, want)
	}
	plain := BareWorkflowInput{Shape: []int{3, 2}}
	if got := plain.AsTasks(); !slices.Equal(got.Shape, plain.Shape) {
		t.Fatalf("a shape without local activities changed: %v", got.Shape)
	}
}
