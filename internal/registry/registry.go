// Package registry is the taxpayer registry: its table (contract.Taxpayer items) and the
// read of one taxpayer. The taxpayer-check function and the steps that need a taxpayer's
// data read it, and so does the API to refuse a request the registry already answers.
package registry

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the registry: partition key inn.
const Table = "taxpayers"

// Lookup reads one taxpayer; found is false when the INN is not registered.
func Lookup(ctx context.Context, db store.DB, table, inn string) (contract.Taxpayer, bool, error) {
	var tp contract.Taxpayer
	found, err := store.Get(ctx, db, table, map[string]types.AttributeValue{"inn": store.S(inn)}, &tp)
	return tp, found, err
}
