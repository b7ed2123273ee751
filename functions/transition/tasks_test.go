package transition

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/internal/tasks"
)

func taskHandler(t *testing.T) (Handler, *storetest.DB) {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"},
		"t-outbox": {PK: "notification_id"}, "t-owners": {PK: "case_id"}})
	for _, o := range []tasks.Owner{{CaseID: "refund-a", Tenant: "alpha"}, {CaseID: "declaration-k", Tenant: "beta"}} {
		if _, err := store.PutNew(context.Background(), db, "t-owners", "case_id", o); err != nil {
			t.Fatal(err)
		}
	}
	return Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox", Owners: "t-owners"}, db
}

func caseItem(t *testing.T, db *storetest.DB, id string) map[string]types.AttributeValue {
	t.Helper()
	for _, it := range db.Items("t-cases") {
		if attr(it, "case_id") == id {
			return it
		}
	}
	t.Fatalf("no projection of %s", id)
	return nil
}

// Each transition writes the task keys while the case waits in a human step, with its
// owner's tenant, and a step out of it drops them (the projection is put whole).
func TestRecordWritesAndClearsTheTaskKeys(t *testing.T) {
	h, db := taskHandler(t)
	ctx := context.Background()
	due := time.Date(2026, 12, 22, 21, 0, 0, 0, time.UTC)
	rec := func(id, process, status string, seq int64, deadline time.Time) contract.RecordInput {
		return contract.RecordInput{CaseID: id, Seq: seq, Case: &contract.CaseRecord{Process: process, Status: status, Label: status,
			UpdatedAt: at, Deadline: deadline}}
	}
	for _, c := range []struct {
		in                   contract.RecordInput
		role, tenantRole, sk string
	}{
		{rec("refund-a", "refund", "received", 1, due), "", "", ""},
		{rec("refund-a", "refund", "in_review", 2, due), "reviewer#refund", "reviewer#refund#alpha", "2026-12-22T21:00:00.000000000Z#refund-a"},
		{rec("refund-a", "refund", "in_review", 3, due.Add(time.Hour)), "reviewer#refund", "reviewer#refund#alpha", "2026-12-22T22:00:00.000000000Z#refund-a"},
		{rec("refund-a", "refund", "payout_failed", 4, time.Time{}), "operator#refund", "operator#refund#alpha", "~#refund-a"},
		{rec("refund-a", "refund", "paid", 5, due), "", "", ""},
		// A refund a declaration started belongs to the declaration's owner.
		{rec("refund-k-2", "refund", "in_review", 1, due), "reviewer#refund", "reviewer#refund#beta", "2026-12-22T21:00:00.000000000Z#refund-k-2"},
		// No owner: listed to staff of every tenant only.
		{rec("identity-x", "identity", "manual_review", 1, due), "reviewer#identity", "", "2026-12-22T21:00:00.000000000Z#identity-x"},
		// An account belongs to a taxpayer: never a tenant key, no owner read.
		{rec("account-s", "account", "awaiting_specialist", 1, due), "specialist#account", "", "2026-12-22T21:00:00.000000000Z#account-s"},
	} {
		if _, err := h.Record(ctx, c.in); err != nil {
			t.Fatalf("%s seq %d: %v", c.in.CaseID, c.in.Seq, err)
		}
		it := caseItem(t, db, c.in.CaseID)
		if attr(it, tasks.AttrRole) != c.role || attr(it, tasks.AttrTenantRole) != c.tenantRole || attr(it, tasks.AttrDue) != c.sk {
			t.Errorf("%s %s: task keys %q %q %q, want %q %q %q", c.in.CaseID, c.in.Case.Status, attr(it, tasks.AttrRole),
				attr(it, tasks.AttrTenantRole), attr(it, tasks.AttrDue), c.role, c.tenantRole, c.sk)
		}
		_, has1 := it[tasks.AttrRole]
		_, has2 := it[tasks.AttrTenantRole]
		_, has3 := it[tasks.AttrDue]
		if c.role == "" && (has1 || has2 || has3) {
			t.Errorf("%s %s: out of a human step but still carries task keys", c.in.CaseID, c.in.Case.Status)
		}
	}
	// An escalated case is also in the escalated indexes, with the same partitions, and
	// leaves them with the step that settles it.
	esc := rec("refund-a", "refund", "in_review", 6, due)
	esc.Case.Escalated = true
	if _, err := h.Record(ctx, esc); err != nil {
		t.Fatal(err)
	}
	if it := caseItem(t, db, "refund-a"); attr(it, tasks.AttrEscRole) != "reviewer#refund" || attr(it, tasks.AttrEscTenantRole) != "reviewer#refund#alpha" {
		t.Errorf("escalated: keys %q %q", attr(it, tasks.AttrEscRole), attr(it, tasks.AttrEscTenantRole))
	}
	if _, err := h.Record(ctx, rec("refund-a", "refund", "paid", 7, due)); err != nil {
		t.Fatal(err)
	}
	for _, k := range tasks.AttrNames {
		if _, ok := caseItem(t, db, "refund-a")[k]; ok {
			t.Errorf("paid: still carries %s", k)
		}
	}
	// A retry of a step is recognised as written (the looked-up tenant is no part of the digest).
	res, err := h.Record(ctx, rec("refund-k-2", "refund", "in_review", 1, due))
	if err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}
}

// An owner that cannot be read fails the step (retryable), never writes it without its
// tenant (bound staff would miss the case).
func TestRecordFailsWhenTheOwnerCannotBeRead(t *testing.T) {
	h, db := taskHandler(t)
	h.DB = failingOwners{db}
	_, err := h.Record(context.Background(), contract.RecordInput{CaseID: "refund-a", Seq: 1,
		Case: &contract.CaseRecord{Process: "refund", Status: "in_review", UpdatedAt: at}})
	if err == nil || len(db.Items("t-cases")) != 0 {
		t.Fatalf("err %v, %d projections", err, len(db.Items("t-cases")))
	}
}

type failingOwners struct{ *storetest.DB }

func (f failingOwners) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if *in.TableName == "t-owners" {
		return nil, context.DeadlineExceeded
	}
	return f.DB.GetItem(ctx, in, o...)
}

// A case's first step writes its owner in the step's own transaction (the case's first
// event and task never exist without their tenant): a retry of the step is a duplicate,
// an owner row of the same tenant (the API's own write) is taken as it is, another
// tenant's is a conflict that writes nothing, and only a first step may carry an owner.
func TestFirstStepWritesTheOwner(t *testing.T) {
	h, db := taskHandler(t)
	ctx := context.Background()
	owner := &contract.CaseOwner{Tenant: "gamma", CreatedBy: "gamma/integrator", KeyID: "k1"}
	first := contract.RecordInput{CaseID: "refund-new", Seq: 1, Owner: owner,
		Case: &contract.CaseRecord{Process: "refund", Status: "received", Label: "received", UpdatedAt: at}}
	for i := range 2 {
		res, err := h.Record(ctx, first)
		if err != nil || res.Duplicate != (i == 1) {
			t.Fatalf("attempt %d: %+v %v", i, res, err)
		}
	}
	tenant, by, found, err := tasks.CaseOwner(ctx, db, "t-owners", "refund-new")
	if err != nil || !found || tenant != "gamma" || by != "gamma/integrator" {
		t.Fatalf("owner: %q %q %v %v", tenant, by, found, err)
	}
	// The API wrote the row first (same tenant): the step is written all the same.
	if _, err := store.PutNew(ctx, db, "t-owners", "case_id", tasks.Owner{CaseID: "refund-api", Tenant: "gamma", CreatedBy: "gamma/integrator"}); err != nil {
		t.Fatal(err)
	}
	api := first
	api.CaseID = "refund-api"
	if res, err := h.Record(ctx, api); err != nil || res.Duplicate {
		t.Fatalf("a step after the API's owner row: %+v %v", res, err)
	}
	// Another tenant owns the id: a conflict, and nothing of the step is written.
	other := first
	other.CaseID = "refund-a" // alpha's
	if _, err := h.Record(ctx, other); err == nil || !isType(err, "Conflict") {
		t.Fatalf("a step naming another owner: %v", err)
	}
	for _, it := range db.Items("t-cases") {
		if attr(it, "case_id") == "refund-a" {
			t.Fatal("a refused step wrote its projection")
		}
	}
	later := first
	later.Seq, later.CaseID = 2, "refund-new"
	if _, err := h.Record(ctx, later); err == nil {
		t.Fatal("a later step carried an owner")
	}
}
