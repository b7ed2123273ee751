package audit

import (
	"context"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestJournalIsOrderedByTimeThenStep(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}})
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// entry ids sort the other way round from their times and steps
	for _, e := range []contract.AuditEntry{
		{EntryID: "refund-1/9/1", Seq: 9, At: t0},
		{EntryID: "refund-1/10/1", Seq: 10, At: t0},
		{EntryID: "refund-1/11/1", Seq: 11, At: t0.Add(time.Minute)},
	} {
		e.CaseID, e.Actor, e.Action = "refund-1", "system", "status_changed"
		if _, err := store.PutNew(context.Background(), db, "t-audit", "entry_id", e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Journal(context.Background(), db, "t-audit", "refund-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].EntryID != "refund-1/9/1" || got[1].EntryID != "refund-1/10/1" || got[2].EntryID != "refund-1/11/1" {
		t.Fatalf("got %+v", got)
	}
}
