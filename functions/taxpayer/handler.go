// Package taxpayer checks a taxpayer's preconditions against the registry: an active
// account, a confirmed profile and a linked INN [004:200], and the state of the bank
// requisites a payout would go to.
package taxpayer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/registry"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the registry (registry.Table).
const Table = registry.Table

// Handler reads the registry.
type Handler struct {
	DB    store.DB
	Table string
}

// Lookup reads one taxpayer (registry.Lookup); found is false when the INN is not registered.
func Lookup(ctx context.Context, db store.DB, table, inn string) (contract.Taxpayer, bool, error) {
	return registry.Lookup(ctx, db, table, inn)
}

// Check answers whether the taxpayer may use the process, and with which bank state.
func (h Handler) Check(ctx context.Context, in contract.TaxpayerCheckInput) (contract.TaxpayerCheckResult, error) {
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.TaxpayerCheckResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	tp, found, err := Lookup(ctx, h.DB, h.Table, in.INN)
	if err != nil {
		return contract.TaxpayerCheckResult{}, fmt.Errorf("taxpayer check: %w", err)
	}
	if !found {
		return contract.TaxpayerCheckResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	res := contract.TaxpayerCheckResult{Eligible: true, BankState: BankState(tp), Consent: tp.Consent, INNLinked: tp.INNLinked,
		SNILSLinked: tp.SNILSLinked, Confirmed: tp.Confirmed, BankIdentified: tp.BankIdentified}
	if tp.Bank != nil {
		res.AccountLast4 = domain.MaskAccount(tp.Bank.Account)
		res.PayeeRef = PayeeRef(*tp.Bank)
	}
	switch {
	case tp.AccountState != "active":
		res.Eligible, res.Reason = false, "the account is not active (blocked or closed)"
	case !tp.Confirmed:
		res.Eligible, res.Reason = false, "the profile is not confirmed: confirm the account first"
	case !tp.INNLinked:
		res.Eligible, res.Reason = false, "the INN is not linked to the account"
	}
	return res, nil
}

// PayeeRef names verified requisites without showing them: a digest of BIK and account.
// A payout is prepared for one PayeeRef and goes only to the account it names.
func PayeeRef(b contract.BankRequisites) string {
	sum := sha256.Sum256([]byte("taxflow-payee\x00" + b.BIK + "\x00" + b.Account))
	return hex.EncodeToString(sum[:12])
}

// BankState says whether a payout can go out now.
func BankState(tp contract.Taxpayer) string {
	switch {
	case tp.PendingBank != nil:
		return contract.BankPending
	case tp.Bank != nil:
		return contract.BankVerified
	}
	return contract.BankNone
}
