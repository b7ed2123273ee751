// Package obligations creates the statutory obligations of a tax period — the payments
// and their due dates that the reminder sweep reads [000:248, 002:349, 004:32] — for
// every taxpayer the ledger charges a tax of that period. Due dates come from the
// statutory schedule (internal/duedates: art. 228, 363, 397, 409), moved off non-working
// days (art. 6.1 p.7); the amount is the period's charges of the tax; an obligation the
// period's payments cover is written as paid, so it gets no reminder [004:81].
//
// It runs as a page of the "obligations" Sweep, daily: charges of a period appear during
// the following year (tax notices, declarations) and payments settle them, so a daily
// pass creates each obligation soon after its charge and marks it paid soon after the
// payment. It is idempotent: an obligation id is derived from the rule, the period and
// the taxpayer (duedates.Obligations); an unchanged or already paid obligation is left
// alone and counted as a duplicate.
//
// Only payments are generated. Whether a taxpayer must file a 3-НДФЛ (art. 229) does not
// follow from the ledger (a charge there usually comes from the declaration itself), so
// report obligations are left to the process that knows of the income.
package obligations

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/duedates"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/term"
)

// Handler reads the ledger and writes obligations.
type Handler struct {
	DB          store.DB
	Ledger      string // partition key inn, sort key entry_id
	Obligations string // partition key obligation_id
	Schedule    *duedates.Schedule
}

// Sweep handles one page of the ledger.
func (h Handler) Sweep(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	day, err := term.ParseDate(in.Date)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("date", "must be YYYY-MM-DD")
	}
	if in.Period == 0 {
		in.Period = term.Year(day) - 1
	}
	if in.Period < 2000 || in.Period >= term.Year(day) {
		return contract.SweepResult{}, fnerr.Invalid("period", "must be a past tax year")
	}
	if in.Limit <= 0 || in.Limit > 1000 {
		in.Limit = 500
	}
	if h.Schedule == nil {
		return contract.SweepResult{}, fmt.Errorf("no due-date schedule loaded")
	}
	start, err := store.DecodeCursor(in.Cursor)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("cursor", err.Error())
	}
	page, err := h.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(h.Ledger), ExclusiveStartKey: start, Limit: aws.Int32(int32(in.Limit))})
	if err != nil {
		return contract.SweepResult{}, fmt.Errorf("scan ledger: %w", err)
	}
	var entries []contract.LedgerEntry
	if err := store.UnmarshalList(page.Items, &entries); err != nil {
		return contract.SweepResult{}, err
	}
	res := contract.SweepResult{Processed: len(entries), Cursor: store.EncodeCursor(page.LastEvaluatedKey)}
	// The taxpayers this page shows a charge of the period for, each handled once here
	// (one met again on a later page finds its obligations written: duplicates).
	var inns []string
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Kind == "charge" && e.Period == in.Period && !seen[e.INN] {
			seen[e.INN] = true
			inns = append(inns, e.INN)
		}
	}
	terms := term.Default()
	for _, inn := range inns {
		obs, err := h.taxpayerObligations(ctx, terms, inn, in.Period)
		if err != nil {
			return res, err
		}
		for _, o := range obs {
			written, err := h.write(ctx, o)
			if err != nil {
				return res, err
			}
			if written {
				res.Created++
			} else {
				res.Duplicates++
			}
		}
	}
	return res, nil
}

// balance is one tax's charges and payments of the period.
type balance struct {
	charged, paid int64
	lastPaid      time.Time
}

// taxpayerObligations reads the taxpayer's ledger and builds the payment obligations of
// each tax charged in the period.
func (h Handler) taxpayerObligations(ctx context.Context, terms term.Terms, inn string, period int) ([]contract.Obligation, error) {
	var all []contract.LedgerEntry
	if err := store.QueryAll(ctx, h.DB, h.Ledger, "inn", inn, &all); err != nil {
		return nil, err
	}
	by := map[string]*balance{}
	for _, e := range all {
		if e.Period != period {
			continue
		}
		b := by[e.Tax]
		if b == nil {
			b = &balance{}
			by[e.Tax] = b
		}
		switch e.Kind {
		case "charge":
			b.charged += e.Amount
		case "payment":
			b.paid += e.Amount
			if e.Date.After(b.lastPaid) {
				b.lastPaid = e.Date
			}
		}
	}
	taxes := make([]string, 0, len(by))
	for tax, b := range by {
		if b.charged > 0 {
			taxes = append(taxes, tax)
		}
	}
	sort.Strings(taxes)
	var out []contract.Obligation
	for _, tax := range taxes {
		b := by[tax]
		amounts := map[string]int64{}
		var ids []string
		for _, id := range h.Schedule.IDs() {
			if r, ok := h.Schedule.Rule(id, period); ok && r.Tax == tax && r.Kind == contract.ObligationPayment {
				ids = append(ids, id)
				amounts[id] = b.charged
			}
		}
		if len(ids) == 0 {
			continue // a tax the schedule has no payment date for
		}
		obs, err := h.Schedule.Obligations(terms, inn, period, amounts, ids...)
		if err != nil {
			return nil, fmt.Errorf("obligations of %d: %w", period, err)
		}
		for i := range obs {
			if b.paid >= b.charged {
				obs[i].Status = contract.ObligationPaid
				if !b.lastPaid.IsZero() {
					at := b.lastPaid.UTC()
					obs[i].PaidAt = &at
				}
			}
		}
		out = append(out, obs...)
	}
	return out, nil
}

// write creates the obligation, or brings an unpaid one up to date (a new charge, or
// the payment that settles it); a paid or unchanged one is left alone. The job is the
// only writer of generated obligations and runs one pass at a time (the schedule skips
// overlaps), so reading before writing races with nobody.
func (h Handler) write(ctx context.Context, o contract.Obligation) (bool, error) {
	created, err := store.PutNew(ctx, h.DB, h.Obligations, "obligation_id", o)
	if err != nil || created {
		return created, err
	}
	var have contract.Obligation
	if _, err := store.Get(ctx, h.DB, h.Obligations, map[string]types.AttributeValue{"obligation_id": store.S(o.ObligationID)}, &have); err != nil {
		return false, err
	}
	if have.Paid() || (have.Amount == o.Amount && have.Status == o.Status) {
		return false, nil
	}
	item, err := store.Marshal(o)
	if err != nil {
		return false, err
	}
	if _, err := h.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.Obligations), Item: item}); err != nil {
		return false, fmt.Errorf("update obligation: %w", err)
	}
	return true, nil
}
