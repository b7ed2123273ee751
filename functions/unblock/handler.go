// Package unblock checks a self-service unblock request against the registry: INN,
// full name (normalised) and passport series must all match [002:161-163].
package unblock

import (
	"context"
	"fmt"
	"strings"

	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Handler compares with the registry.
type Handler struct {
	DB        store.DB
	Taxpayers string
}

// Check answers match or not; it never says which part differed (no oracle for guessing).
func (h Handler) Check(ctx context.Context, in contract.UnblockCheckInput) (contract.UnblockCheckResult, error) {
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.UnblockCheckResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	if err := domain.ValidateName("full_name", in.FullName, true); err != nil {
		return contract.UnblockCheckResult{}, fnerr.Invalid("full_name", err.(domain.FieldError).Reason)
	}
	series := strings.ReplaceAll(in.PassportSeries, " ", "")
	if len(series) != 4 || strings.Trim(series, "0123456789") != "" {
		return contract.UnblockCheckResult{}, fnerr.Invalid("passport_series", "must be the 4 digits of the passport series")
	}
	tp, found, err := taxpayer.Lookup(ctx, h.DB, h.Taxpayers, in.INN)
	if err != nil {
		return contract.UnblockCheckResult{}, fmt.Errorf("unblock check: %w", err)
	}
	if !found || tp.Passport == nil {
		return contract.UnblockCheckResult{Match: false}, nil
	}
	full := domain.NormalizeName(strings.Join([]string{tp.Surname, tp.FirstName, tp.Patronymic}, " "))
	return contract.UnblockCheckResult{Match: domain.NormalizeName(in.FullName) == full && tp.Passport.Series == series}, nil
}
