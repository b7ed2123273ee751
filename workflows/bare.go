package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
)

// BareWorkflowInput gives the shape of a process: how many activities run at once in
// each step. The benchmark runs it with the refund's shape as the baseline that shows
// what Temporal alone costs.
type BareWorkflowInput struct {
	Shape []int `json:"shape"`
}

// Bare runs no-op activities in the given shape.
func Bare(ctx workflow.Context, in BareWorkflowInput) error {
	var a *activities.Activities
	ctx = workflow.WithActivityOptions(ctx, activities.RecordOptions)
	for _, n := range in.Shape {
		futures := make([]workflow.Future, n)
		for i := range futures {
			futures[i] = workflow.ExecuteActivity(ctx, a.Noop)
		}
		for _, f := range futures {
			if err := f.Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
