// Package identityconfirm sets the taxpayer's confirmed mark («Подтверждена») with the
// time and method of confirmation [001:52, 004:27]. The values come from the workflow,
// so a retry writes the same values again.
package identityconfirm

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Handler writes the mark.
type Handler struct {
	DB        store.DB
	Taxpayers string
}

var methods = map[string]bool{contract.MethodDocuments: true, contract.MethodESignature: true, contract.MethodBank: true, contract.MethodVideo: true}

// Confirm marks the account confirmed.
func (h Handler) Confirm(ctx context.Context, in contract.IdentityConfirmInput) (contract.IdentityConfirmResult, error) {
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.IdentityConfirmResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	switch {
	case !methods[in.Method]:
		return contract.IdentityConfirmResult{}, fnerr.Invalid("method", "must be documents, esignature, bank or video")
	case in.CaseID == "":
		return contract.IdentityConfirmResult{}, fnerr.Invalid("case_id", "must not be empty")
	case in.At.IsZero():
		return contract.IdentityConfirmResult{}, fnerr.Invalid("at", "must be set")
	}
	at := in.At.UTC()
	found, err := store.SetFields(ctx, h.DB, h.Taxpayers, map[string]types.AttributeValue{"inn": store.S(in.INN)}, map[string]any{
		"confirmed": true, "confirmed_at": at, "confirmed_method": in.Method, "confirmed_case": in.CaseID,
	})
	if err != nil {
		return contract.IdentityConfirmResult{}, fmt.Errorf("confirm identity: %w", err)
	}
	if !found {
		return contract.IdentityConfirmResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	return contract.IdentityConfirmResult{Confirmed: true}, nil
}
