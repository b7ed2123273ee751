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
	// Local[i] no-op local activities run, one after the other, in step i's workflow task
	// before its Shape[i] activities; Local[len(Shape)], if there, before the workflow
	// completes. The refund writes its transition records that way.
	Local []int `json:"local,omitempty"`
}

// Bare runs no-op activities in the given shape.
func Bare(ctx workflow.Context, in BareWorkflowInput) error {
	var a *activities.Activities
	ctx = workflow.WithActivityOptions(ctx, activities.RecordOptions)
	lctx := workflow.WithLocalActivityOptions(ctx, activities.RecordLocalOptions)
	local := func(step int) error {
		for range at(in.Local, step) {
			if err := workflow.ExecuteLocalActivity(lctx, a.Noop).Get(ctx, nil); err != nil {
				return err
			}
		}
		return nil
	}
	for step, n := range in.Shape {
		if err := local(step); err != nil {
			return err
		}
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
	return local(len(in.Shape))
}

// AsTasks is the same shape with every local activity an activity task of its own step,
// in the same place: the same activity count, all through the task queue.
func (in BareWorkflowInput) AsTasks() BareWorkflowInput {
	var out BareWorkflowInput
	for step := range len(in.Shape) + 1 {
		for range at(in.Local, step) {
			out.Shape = append(out.Shape, 1)
		}
		if step < len(in.Shape) {
			out.Shape = append(out.Shape, in.Shape[step])
		}
	}
	return out
}

func at(xs []int, i int) int {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}
