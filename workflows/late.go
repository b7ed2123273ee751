package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/fnerr"
)

// LateMessage is the detail of the error that answers a message the case can no longer
// take (a document after the decision, a decision on a closed case): the API turns it into
// 409 with the case's current status, so the caller learns what happened instead of a
// silent 202.
type LateMessage struct {
	Status string `json:"status"`
	Label  string `json:"label,omitempty"`
}

// errLate refuses a message in the validator (or handler) of an update: what was asked,
// and the status the case is in.
func errLate(what, status, label string) error {
	return temporal.NewApplicationError(fmt.Sprintf("%s: the case is %s", what, status), fnerr.TypeConflict,
		LateMessage{Status: status, Label: label})
}

// AsLate reports whether err (from an update or a workflow) is a refused late message, and
// the status the case was in.
func AsLate(err error) (LateMessage, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != fnerr.TypeConflict || !app.HasDetails() {
		return LateMessage{}, false
	}
	var m LateMessage
	if app.Details(&m) != nil || m.Status == "" {
		return LateMessage{}, false
	}
	return m, true
}

// awaitHandlers lets every update handler finish before the workflow returns (an error,
// a cancellation or continue-as-new included), on a disconnected context so that a
// cancelled run waits too.
func awaitHandlers(ctx workflow.Context) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
}
