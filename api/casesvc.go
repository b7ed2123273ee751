package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// The case service: the three calls every route makes into a case, and the only code of
// the API that starts, updates or queries one. Routes (pipeline.go) and batch lines
// (batch.go) name what differs (the workflow, its input, the message); how a case is
// started (never twice under one id), how a message is stamped and waited for, and how
// a status is read are here once.

// newCase is a case to start: its id, workflow and input, and the search attributes it
// starts with (its process, its first status, the keyed hash of its taxpayer's INN).
type newCase struct {
	id, process, status, subject string
	workflow, input              any
	memo                         map[string]any // a create's request hash and owner (createMemo)
}

// startCase starts a case under an id that is never reused. existing is true when the id
// is taken already (a retry of the request, or of the batch line, that made it).
func (s *Server) startCase(ctx context.Context, c newCase) (existing bool, err error) {
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       c.id,
		TaskQueue:                s.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the existing run silently; callers answer it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		Memo:                                     c.memo,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet(c.process),
			workflows.SearchStatus.ValueSet(c.status), workflows.SearchSubject.ValueSet(c.subject)),
	}, c.workflow, c.input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return true, nil
	}
	return false, err
}

// deliverAccountEvent signals an event to the taxpayer's account, starting the account
// on its first event (signal-with-start). The subject is the one the id was made of:
// after a key rotation an existing account keeps its id, and a closed one started again
// keeps its subject too. The event's time is the sender's, never later than its receipt:
// a lock runs from it, so a time in the future would lock the account until then. It is
// judged here, for the route and the batch line alike.
func (s *Server) deliverAccountEvent(ctx context.Context, id, subject, inn string, e contract.AccountEvent) error {
	if now := time.Now().UTC(); e.At.IsZero() || e.At.After(now) {
		e.At = now
	}
	_, err := s.Temporal.SignalWithStartWorkflow(ctx, id, workflows.AccountSignalEvent, e, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("account"),
			workflows.SearchStatus.ValueSet(workflows.AccountActive), workflows.SearchSubject.ValueSet(subject)),
	}, workflows.Account, workflows.AccountWorkflowInput{AccountID: id, INN: inn, Policy: s.AccountPolicy})
	return err
}

// queryCase asks a case a query and decodes its answer into out.
func (s *Server) queryCase(ctx context.Context, id, query string, out any) error {
	v, err := s.Temporal.QueryWorkflow(ctx, id, "", query)
	if err != nil {
		return err
	}
	return v.Get(out)
}

// updateTimeout bounds how long a route waits for a case to answer a message.
const updateTimeout = 30 * time.Second

// sendUpdate sends an update, stamped with the time it was accepted (stampTime), and
// waits for the stage; the caller waits for its result on the handle.
func (s *Server) sendUpdate(ctx context.Context, id, name string, arg any, stage client.WorkflowUpdateStage) (client.WorkflowUpdateHandle, error) {
	var args []any
	if arg != nil {
		args = []any{stampTime(arg, time.Now().UTC())}
	}
	return s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name,
		Args: args, WaitForStage: stage})
}

// updateCase sends an update and waits for its result (decoded into out). An error is the
// case's (its refusal) or Temporal's, as it came: the route names what it answers for it
// (updateFailed, attachFailed), the console its form's message.
func (s *Server) updateCase(ctx context.Context, id, name string, arg, out any) error {
	ctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	h, err := s.sendUpdate(ctx, id, name, arg, client.WorkflowUpdateStageCompleted)
	if err != nil {
		return err
	}
	return h.Get(ctx, out)
}

// update sends an update and answers 200 with its result (decoded into out): the answer
// of every route whose answer is the case after the message.
func (s *Server) update(ctx context.Context, id, name string, arg, out any) (reply, error) {
	if err := s.updateCase(ctx, id, name, arg, out); err != nil {
		return reply{}, updateFailed(id, name, err)
	}
	return okReply(out), nil
}

// decide turns a decision (caseAction, shared with the console) into its update and
// sends it.
func (s *Server) decide(ctx context.Context, p Principal, id string, a caseAction) (reply, error) {
	name, arg, out, _, err := a.update(p)
	if err != nil {
		return reply{}, fmt.Errorf("decision: %w", err)
	}
	return s.update(ctx, id, name, arg, out)
}
