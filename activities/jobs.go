package activities

import (
	"context"

	"github.com/taxflow/taxflow/internal/contract"
)

// SweepObligations creates one page of a period's statutory obligations from the ledger.
func (a *Activities) SweepObligations(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	return call[contract.SweepResult](ctx, a.Invoker, contract.FnObligationSweep, in)
}
