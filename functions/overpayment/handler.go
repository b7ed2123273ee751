// Package overpayment computes a taxpayer's overpayment from the ledger of charges and
// payments: per tax, payments minus charges; debts are offset first, and only what is
// left may be refunded.
package overpayment

import (
	"context"
	"fmt"
	"sort"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the ledger: partition key inn, sort key entry_id.
const Table = "ledger"

// Handler reads the ledger.
type Handler struct {
	DB    store.DB
	Table string
}

// Compute returns the balance per tax and the refundable amount.
func (h Handler) Compute(ctx context.Context, in contract.OverpaymentInput) (contract.OverpaymentResult, error) {
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.OverpaymentResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	if in.Period != 0 && (in.Period < 2000 || in.Period > 2100) {
		return contract.OverpaymentResult{}, fnerr.Invalid("period", "must be a year such as 2025")
	}
	var entries []contract.LedgerEntry
	if err := store.QueryAll(ctx, h.DB, h.Table, "inn", in.INN, &entries); err != nil {
		return contract.OverpaymentResult{}, fmt.Errorf("read ledger: %w", err)
	}
	return Balance(entries, in.Period), nil
}

// Balance is the computation itself: pure, so it is tested on its own.
func Balance(entries []contract.LedgerEntry, period int) contract.OverpaymentResult {
	by := map[string]int64{}
	for _, e := range entries {
		if period != 0 && e.Period != period && e.Kind == "payment" {
			// Overpayment is claimed for a period; debts of every period are offset.
			continue
		}
		switch e.Kind {
		case "payment":
			by[e.Tax] += e.Amount
		case "charge":
			by[e.Tax] -= e.Amount
		}
	}
	var res contract.OverpaymentResult
	for tax, bal := range by {
		res.Taxes = append(res.Taxes, contract.TaxBalance{Tax: tax, Balance: bal})
		if bal > 0 {
			res.Overpaid += bal
		} else {
			res.Debts += -bal
		}
	}
	sort.Slice(res.Taxes, func(i, j int) bool { return res.Taxes[i].Tax < res.Taxes[j].Tax })
	res.Refundable = max(0, res.Overpaid-res.Debts)
	return res
}
