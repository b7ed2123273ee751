// Package identityclear clears the confirmed mark: after any unblock or password
// recovery it must be earned again [004:27].
package identityclear

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Handler writes to the registry.
type Handler struct {
	DB        store.DB
	Taxpayers string
}

// Clear removes the mark; clearing twice is harmless.
func (h Handler) Clear(ctx context.Context, in contract.IdentityClearInput) (contract.IdentityConfirmResult, error) {
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.IdentityConfirmResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	found, err := store.SetFields(ctx, h.DB, h.Taxpayers, map[string]types.AttributeValue{"inn": store.S(in.INN)},
		map[string]any{"confirmed": false, "confirmed_method": "", "cleared_by_case": in.CaseID})
	if err != nil {
		return contract.IdentityConfirmResult{}, fmt.Errorf("clear confirmed mark: %w", err)
	}
	if !found {
		return contract.IdentityConfirmResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	return contract.IdentityConfirmResult{Confirmed: false}, nil
}
