// Package overpayment computes a taxpayer's overpayment from the ledger of charges,
// payments and reductions: per tax and period, payments and reductions minus charges;
// debts of any period are offset first, and only what is left, made of credits of the
// last 3 years, may be refunded.
package overpayment

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/term"
)

// Table is the ledger (contract.LedgerTable).
const Table = contract.LedgerTable

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
	return BalanceAt(entries, in.Period, in.At), nil
}

// Balance is the computation itself: pure, so it is tested on its own. Period 0 means
// every period; claimAt zero skips the 3-year window. See BalanceAt.
func Balance(entries []contract.LedgerEntry, period int) contract.OverpaymentResult {
	return BalanceAt(entries, period, time.Time{})
}

// BalanceAt computes the balance of each tax and period (payments minus charges of
// that period only), then:
//   - the overpayment is the positive balances of the named period (of every period
//     when period is 0): a fully paid earlier year is neither overpaid nor a debt;
//   - the debts are the negative balances of every period, offset first (domain.md §3);
//   - an overpayment is refundable only as far as it is made of credits no older than
//     3 years at claimAt (Tax Code art. 78 p.7; a term in years by art. 6.1 p.3). Within
//     one tax and period the charges are taken as paid by the earliest payments, so an
//     overpayment is made of the latest ones. An entry without a date is taken as recent.
//
// A reduction (contract.LedgerReduction) is the tax charged lowered by a decision: a desk
// review that confirms a 3-НДФЛ assesses the period's tax below what the employer
// withheld and paid, by the refund it confirms (art. 78 p.6, art. 88). It is a credit
// like a payment: payments minus (charges minus reductions) is then the confirmed
// refund, so the refund the decision starts finds exactly the overpayment the decision
// made. It is dated by the filing of the declaration, and the 3 years of art. 78 p.7
// count from that date, not from the employer's payments. The reading we implement: the
// tax the employer withheld was due when it was paid (art. 226); it became an
// overpayment only by the deduction the taxpayer claimed in the declaration, so "the
// day the tax was paid" of art. 78 p.7 is, for this overpayment, the day the
// declaration was filed (the reading the Ministry of Finance and the FNS give for
// deductions claimed in a 3-НДФЛ; the other reading, from each payment, is the plain
// words of p.7). Counted from each employer payment, a declaration for the third
// preceding year filed late in the year, which the 3 years of art. 78 p.7 for
// deductions allow, would lose most of its refund.
func BalanceAt(entries []contract.LedgerEntry, period int, claimAt time.Time) contract.OverpaymentResult {
	type key struct {
		tax    string
		period int
	}
	bal := map[key]int64{}
	payments := map[key][]contract.LedgerEntry{} // the credits: payments and reductions
	for _, e := range entries {
		k := key{e.Tax, e.Period}
		switch e.Kind {
		case contract.LedgerPayment, contract.LedgerReduction:
			bal[k] += e.Amount
			payments[k] = append(payments[k], e)
		case contract.LedgerCharge:
			bal[k] -= e.Amount
		}
	}
	keys := make([]key, 0, len(bal))
	for k := range bal {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].tax != keys[j].tax {
			return keys[i].tax < keys[j].tax
		}
		return keys[i].period < keys[j].period
	})
	var res contract.OverpaymentResult
	byTax := map[string]int64{}
	for _, k := range keys {
		b := bal[k]
		res.Periods = append(res.Periods, contract.TaxBalance{Tax: k.tax, Period: k.period, Balance: b})
		switch {
		case b < 0:
			res.Debts += -b
			byTax[k.tax] += b
		case b > 0 && (period == 0 || k.period == period):
			fresh := min(b, recent(payments[k], claimAt))
			res.Overpaid += fresh
			res.Expired += b - fresh
			byTax[k.tax] += b
		case period == 0 || k.period == period:
			byTax[k.tax] += 0 // a settled tax of the period is listed with 0
		}
	}
	for tax, b := range byTax {
		res.Taxes = append(res.Taxes, contract.TaxBalance{Tax: tax, Balance: b})
	}
	sort.Slice(res.Taxes, func(i, j int) bool { return res.Taxes[i].Tax < res.Taxes[j].Tax })
	res.Refundable = max(0, res.Overpaid-res.Debts)
	return res
}

// recent sums the credits (payments, and reductions dated by the filing that made them)
// that may still be claimed back at claimAt (the latest first: the overpayment is made
// of them).
func recent(payments []contract.LedgerEntry, claimAt time.Time) int64 {
	var sum int64
	for _, p := range payments {
		if claimAt.IsZero() || p.Date.IsZero() || RefundClaimWithinLimit(p.Date, claimAt) {
			sum += p.Amount
		}
	}
	return sum
}

// RefundClaimWithinLimit tells whether a refund of a payment made at paidAt may still be
// claimed at claimAt: within 3 years of the payment (Tax Code art. 78 p.7), the term
// counted by art. 6.1 (it ends at 24:00 Moscow time of the same date 3 years later,
// moved off a non-working day). It reads the production calendar: a workflow calls it
// in an activity or inside workflow.SideEffect.
func RefundClaimWithinLimit(paidAt, claimAt time.Time) bool {
	return claimAt.Before(term.Default().Years(paidAt, 3).End)
}
