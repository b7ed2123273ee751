package api

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"

	"github.com/taxflow/taxflow/workflows"
)

// subjectQuery is the visibility filter that finds the taxpayer's cases under every
// version of the subject key the API knows: cases started before a rotation keep the
// subject they were started with, and are still found.
func (s *Server) subjectQuery(inn string) string { return s.Subjects.Query(inn) }

// AccountID is the workflow id of the taxpayer's account and the subject it carries.
// With one key version it is the current one, without a round trip. After a rotation
// the account keeps the id it was created under: the versions are tried in order
// (current first) and the first under which an account workflow exists, running or
// closed, is the account; only when none has one is a new account named under the
// current version. So a rotation neither loses an account nor starts a second one for
// the same taxpayer. Describe is read from the workflow's own record, not from
// visibility, so an account created a moment ago is found.
func (s *Server) AccountID(ctx context.Context, inn string) (id, subject string, err error) {
	values := s.Subjects.Values(inn)
	if len(values) == 1 {
		return workflows.AccountID(values[0]), values[0], nil
	}
	for _, v := range values {
		id := workflows.AccountID(v)
		_, err := s.Temporal.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			return id, v, nil
		case errors.As(err, &nf):
			continue
		default:
			return "", "", fmt.Errorf("look up the account under each subject key version: %w", err)
		}
	}
	return workflows.AccountID(values[0]), values[0], nil
}
