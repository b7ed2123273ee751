package workflows

import (
	"errors"
	"fmt"
	"time"

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

// causeTime is the time of the event that caused a transition, for the content derived
// from it (a lock's end, a deadline): the time the message carries (the API stamps it
// when it accepts the message; a reset or retried run sees the same), or, for a message
// that carries none, the workflow clock. workflow.Now is the start of the workflow task
// that acts on the message: a reset run acts in a later task, so content derived from
// it would differ from what the run reset from wrote, and the record step would be
// refused as KeyReused.
func causeTime(ctx workflow.Context, at time.Time) time.Time {
	if at.IsZero() {
		return workflow.Now(ctx)
	}
	return at.UTC()
}

// later is the later of two times (a zero one is the earliest).
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
