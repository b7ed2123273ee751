package activities

import (
	"context"

	"github.com/taxflow/taxflow/internal/contract"
)

// Assess writes a decision's entry to the charges and payments ledger with the case's
// step that records the decision, in one transaction (functions/ledger Assess). The
// entry and the step are in the input, so every retry writes the same bytes; run it with
// LedgerOptions.
func (a *Activities) Assess(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	in.Op = contract.LedgerAssess
	return call[contract.LedgerResult](ctx, a.Invoker, contract.FnLedger, in)
}
