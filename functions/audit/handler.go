// Package audit is the audit-journal writer: it appends an entry to a case's journal,
// once per entry id, and reads a journal back in order.
package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the logical name of the journal table: partition key case_id, sort key entry_id.
const Table = "audit"

// Handler appends journal entries.
type Handler struct {
	DB    store.DB
	Table string // deployed table name
}

const maxField = 512

// Append stores the entry unless an entry with the same id is already in the journal.
func (h Handler) Append(ctx context.Context, e contract.AuditEntry) (contract.AuditResult, error) {
	if err := validate(e); err != nil {
		return contract.AuditResult{}, err
	}
	e.At = e.At.UTC()
	created, err := store.PutNew(ctx, h.DB, h.Table, "entry_id", e)
	if err != nil {
		return contract.AuditResult{}, fmt.Errorf("append audit entry: %w", err)
	}
	return contract.AuditResult{Duplicate: !created}, nil
}

func validate(e contract.AuditEntry) error {
	required := map[string]string{"case_id": e.CaseID, "entry_id": e.EntryID, "actor": e.Actor, "action": e.Action}
	for _, f := range []string{"case_id", "entry_id", "actor", "action"} {
		if strings.TrimSpace(required[f]) == "" {
			return fnerr.Invalid(f, "must not be empty")
		}
	}
	if e.At.IsZero() {
		return fnerr.Invalid("at", "must be set (the time of the change, from the workflow clock)")
	}
	for name, v := range map[string]string{"case_id": e.CaseID, "entry_id": e.EntryID, "actor": e.Actor, "action": e.Action,
		"from": e.From, "to": e.To, "reason": e.Reason, "request_id": e.RequestID} {
		if len(v) > maxField {
			return fnerr.Invalid(name, fmt.Sprintf("longer than %d bytes", maxField))
		}
	}
	return nil
}

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
