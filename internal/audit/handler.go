// Package audit is a case's audit journal: the table, and reading a journal back in
// order. Entries are written by the record-transition function (functions/transition),
// with the projection and the notifications of the same step.
package audit

import (
	"context"
	"fmt"
	"sort"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the logical name of the journal table: partition key case_id, sort key entry_id.
const Table = "audit"

// Journal returns a case's entries, oldest first.
func Journal(ctx context.Context, db store.DB, table, caseID string) ([]contract.AuditEntry, error) {
	var out []contract.AuditEntry
	if err := store.QueryAll(ctx, db, table, "case_id", caseID, &out); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		if out[i].Seq != out[j].Seq {
			return out[i].Seq < out[j].Seq
		}
		return out[i].EntryID < out[j].EntryID
	})
	return out, nil
}
