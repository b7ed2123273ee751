package cases

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/internal/tasks"
)

func s(av types.AttributeValue) string {
	if v, ok := av.(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// Cases that waited in a human step before the function wrote task keys get them (with
// their owner's tenant), once; cases in no human step and cases that have them are left
// alone; a second run writes nothing.
func TestBackfillGivesWaitingCasesTheirTaskKeys(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(map[string]storetest.Key{"cases": {PK: "case_id"}, "owners": {PK: "case_id"}})
	due := time.Date(2026, 4, 30, 21, 0, 0, 0, time.UTC)
	for _, o := range []tasks.Owner{{CaseID: "refund-a", Tenant: "alpha"}, {CaseID: "declaration-b", Tenant: "beta"}} {
		if _, err := store.PutNew(ctx, db, "owners", "case_id", o); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []contract.CaseRecord{
		{CaseID: "refund-a", Process: "refund", Status: "in_review", Version: 3, Deadline: due},
		{CaseID: "declaration-b", Process: "declaration", Status: "in_review", Version: 2, Deadline: due},
		{CaseID: "account-c", Process: "account", Status: "awaiting_specialist", Version: 9},
		{CaseID: "refund-d", Process: "refund", Status: "paid", Version: 7, Deadline: due},
		// escalated before the escalated indexes existed: it gets their keys too
		{CaseID: "refund-e", Process: "refund", Status: "in_review", Version: 4, Deadline: due, Escalated: true},
	} {
		if _, err := store.PutNew(ctx, db, "cases", "case_id", r); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Backfill(ctx, db, "cases", "owners")
	if err != nil || rep != (BackfillReport{Scanned: 5, Waiting: 4, Written: 4}) {
		t.Fatalf("first run: %+v %v", rep, err)
	}
	got := map[string][5]string{}
	for _, it := range db.Items("cases") {
		got[s(it["case_id"])] = [5]string{s(it[tasks.AttrRole]), s(it[tasks.AttrTenantRole]), s(it[tasks.AttrDue]), s(it[tasks.AttrEscRole]), s(it[tasks.AttrEscTenantRole])}
	}
	want := map[string][5]string{
		"refund-a":      {"reviewer#refund", "reviewer#refund#alpha", "2026-04-30T21:00:00.000000000Z#refund-a"},
		"declaration-b": {"inspector#declaration", "inspector#declaration#beta", "2026-04-30T21:00:00.000000000Z#declaration-b"},
		"account-c":     {"specialist#account", "", "~#account-c"},
		"refund-d":      {},
		// no owner row: every tenant's staff only
		"refund-e": {"reviewer#refund", "", "2026-04-30T21:00:00.000000000Z#refund-e", "reviewer#refund", ""},
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %v, want %v", id, got[id], w)
		}
	}
	if rep, err := Backfill(ctx, db, "cases", "owners"); err != nil || rep.Written != 0 || rep.Waiting != 4 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}
