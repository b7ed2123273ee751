// Package cases keeps the read projection of every case (status, amounts, deadline) for
// fast reads by the API and by operators' queues (index by_status). It is written by
// the record-transition function (functions/transition): each step of a case writes the
// next version, over the version before.
package cases

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the projection: partition key case_id; index by_status (status, updated_at).
const Table = "cases"

// Get reads a case record.
func Get(ctx context.Context, db store.DB, table, caseID string) (contract.CaseRecord, bool, error) {
	var r contract.CaseRecord
	found, err := store.Get(ctx, db, table, map[string]types.AttributeValue{"case_id": store.S(caseID)}, &r)
	return r, found, err
}
