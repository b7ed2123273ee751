// Package cases keeps the read projection of every case (status, amounts, deadline) for
// fast reads by the API and by operators' queues (index by_status). Updates carry a
// version; an older one never overwrites a newer one.
package cases

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the projection: partition key case_id; index by_status (status, updated_at).
const Table = "cases"

// Handler writes the projection.
type Handler struct {
	DB    store.DB
	Table string
}

// Update stores the record if it is newer than the stored one.
func (h Handler) Update(ctx context.Context, r contract.CaseRecord) (contract.CaseUpdateResult, error) {
	switch {
	case r.CaseID == "":
		return contract.CaseUpdateResult{}, fnerr.Invalid("case_id", "must not be empty")
	case r.Status == "":
		return contract.CaseUpdateResult{}, fnerr.Invalid("status", "must not be empty")
	case r.Version <= 0:
		return contract.CaseUpdateResult{}, fnerr.Invalid("version", "must be greater than 0")
	case r.UpdatedAt.IsZero():
		return contract.CaseUpdateResult{}, fnerr.Invalid("updated_at", "must be set")
	}
	r.UpdatedAt = r.UpdatedAt.UTC()
	applied, err := store.PutIfNewer(ctx, h.DB, h.Table, "case_id", r.Version, r)
	if err != nil {
		return contract.CaseUpdateResult{}, fmt.Errorf("update case: %w", err)
	}
	return contract.CaseUpdateResult{Applied: applied}, nil
}

// Get reads a case record.
func Get(ctx context.Context, db store.DB, table, caseID string) (contract.CaseRecord, bool, error) {
	var r contract.CaseRecord
	found, err := store.Get(ctx, db, table, map[string]types.AttributeValue{"case_id": store.S(caseID)}, &r)
	return r, found, err
}
