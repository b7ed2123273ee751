package activities

import (
	"context"

	"github.com/taxflow/taxflow/internal/contract"
)

// RecordTransition writes one step of a case's record — journal entries, the versioned
// projection and outbox notifications — in one transaction. Its idempotency key is the
// case id and the step's seq, which the workflow carries: a retry is answered as a
// duplicate, the same key with other content fails as KeyReused (non-retryable).
// Options: RecordOptions.
func (a *Activities) RecordTransition(ctx context.Context, in contract.RecordInput) (contract.RecordResult, error) {
	return call[contract.RecordResult](ctx, a.Invoker, contract.FnRecordTransition, in)
}

// SweepOutbox delivers one page of pending notifications.
func (a *Activities) SweepOutbox(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	return call[contract.SweepResult](ctx, a.Invoker, contract.FnOutboxDeliver, in)
}
