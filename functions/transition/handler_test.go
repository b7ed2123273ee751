package transition

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const caseID = "refund-1"

var at = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newHandler() (lambda.Handler, *storetest.DB) {
	db := storetest.New(map[string]storetest.Key{
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"}})
	return lambda.NewHandler(fn.Handler(Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox"}.Record)), db
}

// step is a status transition from → to at seq, with its projection and a notification.
func step(seq int64, from, to string) contract.RecordInput {
	return contract.RecordInput{CaseID: caseID, Seq: seq,
		Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "status_changed", From: from, To: to}},
		Case:    &contract.CaseRecord{Process: "refund", Status: to, Label: to, Version: seq, UpdatedAt: at, Amounts: map[string]int64{"claimed": 100}},
		Notifications: []contract.Notification{{Recipient: "taxpayer", INN: "500100732259", Template: "refund." + to, At: at,
			Params: map[string]string{"label": to}}},
	}
}

func invoke(t *testing.T, h lambda.Handler, in contract.RecordInput) (contract.RecordResult, error) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), b)
	if err != nil {
		return contract.RecordResult{}, err
	}
	var res contract.RecordResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func errType(err error) string {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie.Type
	}
	return ""
}

func TestRecordWritesTheStepInOneTransaction(t *testing.T) {
	h, db := newHandler()
	for seq, to := range []string{"received", "in_review", "approved"} {
		from := ""
		if seq > 0 {
			from = []string{"received", "in_review"}[seq-1]
		}
		res, err := invoke(t, h, step(int64(seq+1), from, to))
		if err != nil || res.Duplicate || res.Key != contract.RecordKey(caseID, int64(seq+1)) {
			t.Fatalf("step %d: %+v %v", seq+1, res, err)
		}
	}
	journal, err := audit.Journal(context.Background(), db, "t-audit", caseID)
	if err != nil || len(journal) != 3 {
		t.Fatalf("journal %+v %v", journal, err)
	}
	for i, e := range journal {
		if e.Seq != int64(i+1) || e.EntryID != contract.RecordKey(caseID, int64(i+1))+"/1" || e.CaseID != caseID {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	rec, found, err := cases.Get(context.Background(), db, "t-cases", caseID)
	if err != nil || !found || rec.Version != 3 || rec.Status != "approved" {
		t.Fatalf("projection %+v found %v err %v", rec, found, err)
	}
	outbox := db.Items("t-outbox")
	if len(outbox) != 3 {
		t.Fatalf("outbox holds %d notifications", len(outbox))
	}
	for _, it := range outbox {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil || n.State != "pending" || !strings.HasPrefix(n.NotificationID, caseID+"/") {
			t.Errorf("notification %+v %v", n, err)
		}
	}
	if db.Writes != 9 {
		t.Fatalf("%d item writes, want 9", db.Writes)
	}
}

func TestRecordRetryOfTheSameStepIsANoOp(t *testing.T) {
	h, db := newHandler()
	in := step(1, "", "received")
	if _, err := invoke(t, h, in); err != nil {
		t.Fatal(err)
	}
	// The retry carries other times (a reset runs the workflow clock again): the same step.
	again := step(1, "", "received")
	again.Entries[0].At, again.Case.UpdatedAt, again.Notifications[0].At = at.Add(time.Hour), at.Add(time.Hour), at.Add(time.Hour)
	res, err := invoke(t, h, again)
	if err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if db.Writes != 3 {
		t.Fatalf("the retry wrote: %d item writes", db.Writes)
	}
	// A retry of an earlier step after a later one is still recognised by its journal entry.
	if _, err := invoke(t, h, step(2, "received", "in_review")); err != nil {
		t.Fatal(err)
	}
	if res, err := invoke(t, h, step(1, "", "received")); err != nil || !res.Duplicate {
		t.Fatalf("late retry of step 1: %+v %v", res, err)
	}
}

func TestRecordSameKeyOtherContentIsKeyReused(t *testing.T) {
	h, db := newHandler()
	if _, err := invoke(t, h, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*contract.RecordInput){
		"other status":       func(in *contract.RecordInput) { in.Entries[0].To, in.Case.Status = "rejected", "rejected" },
		"other notification": func(in *contract.RecordInput) { in.Notifications[0].Template = "refund.other" },
		"other amount":       func(in *contract.RecordInput) { in.Case.Amounts["claimed"] = 101 },
		"one more entry": func(in *contract.RecordInput) {
			in.Entries = append(in.Entries, contract.AuditEntry{At: at, Actor: "system", Action: "document_accepted"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := step(1, "", "received")
			mutate(&in)
			_, err := invoke(t, h, in)
			if errType(err) != fnerr.TypeKeyReused || !fnerr.IsBusiness(errType(err)) {
				t.Fatalf("want KeyReused, got %v", err)
			}
		})
	}
	if db.Writes != 3 {
		t.Fatalf("a refused step wrote: %d item writes", db.Writes)
	}
}

func TestRecordStaleOrSkippedVersionIsConflict(t *testing.T) {
	h, db := newHandler()
	for seq, to := range []string{"received", "in_review", "approved"} {
		if _, err := invoke(t, h, step(int64(seq+1), "", to)); err != nil {
			t.Fatal(err)
		}
	}
	for name, in := range map[string]contract.RecordInput{
		// step 5 follows version 4, which is not there
		"skipped": step(5, "paid", "closed"),
		// a projection written over version 1 while the case is at version 3
		"stale": {CaseID: caseID, Seq: 2, Case: &contract.CaseRecord{Status: "in_review", UpdatedAt: at, Escalated: true}},
	} {
		if _, err := invoke(t, h, in); errType(err) != fnerr.TypeConflict {
			t.Fatalf("%s: want Conflict, got %v", name, err)
		}
	}
	// A later step of a case without a projection (a sequence that was not carried over).
	if _, err := invoke(t, h, contract.RecordInput{CaseID: "account-2", Seq: 8, Case: &contract.CaseRecord{Status: "active", UpdatedAt: at}}); errType(err) != fnerr.TypeConflict {
		t.Fatalf("step 8 of a new case: want Conflict, got %v", err)
	}
	// The first step of a case whose projection exists (a case id used twice).
	h2, db2 := newHandler()
	if _, err := store.PutNew(context.Background(), db2, "t-cases", "case_id", contract.CaseRecord{CaseID: caseID, Status: "paid", Version: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, h2, step(1, "", "received")); errType(err) != fnerr.TypeConflict {
		t.Fatalf("first step over an existing projection: %v", err)
	}
	if db.Writes != 9 || db2.Writes != 1 {
		t.Fatalf("refused steps wrote: %d, %d", db.Writes, db2.Writes)
	}
}

func TestRecordStepsWithoutStatusChange(t *testing.T) {
	h, db := newHandler()
	if _, err := invoke(t, h, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	// several journal entries and no notification; then a projection only; then a
	// notification only (with the projection, as the workflows send it)
	two := contract.RecordInput{CaseID: caseID, Seq: 2, Entries: []contract.AuditEntry{
		{At: at, Actor: "system", Action: "document_accepted"}, {At: at, Actor: "system", Action: "payout_held", Reason: "requisites"}},
		Case: &contract.CaseRecord{Status: "received", UpdatedAt: at}}
	three := contract.RecordInput{CaseID: caseID, Seq: 3, Case: &contract.CaseRecord{Status: "received", UpdatedAt: at, Escalated: true}}
	four := contract.RecordInput{CaseID: caseID, Seq: 4, Case: &contract.CaseRecord{Status: "received", UpdatedAt: at, Escalated: true},
		Notifications: []contract.Notification{{Recipient: "supervisor", Template: "refund.deadline_passed", At: at}}}
	for _, in := range []contract.RecordInput{two, three, four} {
		if res, err := invoke(t, h, in); err != nil || res.Duplicate {
			t.Fatalf("seq %d: %+v %v", in.Seq, res, err)
		}
	}
	journal, _ := audit.Journal(context.Background(), db, "t-audit", caseID)
	if len(journal) != 3 || journal[1].Action != "document_accepted" || journal[2].EntryID != caseID+"/2/2" {
		t.Fatalf("journal %+v", journal)
	}
	rec, _, _ := cases.Get(context.Background(), db, "t-cases", caseID)
	if rec.Version != 4 || !rec.Escalated {
		t.Fatalf("projection %+v", rec)
	}
	if len(db.Items("t-outbox")) != 2 {
		t.Fatalf("outbox holds %d", len(db.Items("t-outbox")))
	}
	// A journal-only step (no projection: the self-check) is recognised on retry too.
	self := contract.RecordInput{CaseID: "selfcheck-1", Seq: 1, Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "selfcheck_passed"}}}
	for i, want := range []bool{false, true} {
		if res, err := invoke(t, h, self); err != nil || res.Duplicate != want {
			t.Fatalf("self-check write %d: %+v %v", i+1, res, err)
		}
	}
}

func TestRecordValidation(t *testing.T) {
	long := strings.Repeat("x", maxField+1)
	for name, c := range map[string]struct {
		mutate func(*contract.RecordInput)
		field  string
	}{
		"no case":             {func(in *contract.RecordInput) { in.CaseID = " " }, "case_id"},
		"slash in case":       {func(in *contract.RecordInput) { in.CaseID = "a/b" }, "case_id"},
		"seq 0":               {func(in *contract.RecordInput) { in.Seq = 0 }, "seq"},
		"nothing to write":    {func(in *contract.RecordInput) { in.Entries, in.Case, in.Notifications = nil, nil, nil }, "entries"},
		"no actor":            {func(in *contract.RecordInput) { in.Entries[0].Actor = "" }, "entries[0].actor"},
		"no time":             {func(in *contract.RecordInput) { in.Entries[0].At = time.Time{} }, "entries[0].at"},
		"reason too long":     {func(in *contract.RecordInput) { in.Entries[0].Reason = long }, "entries[0].reason"},
		"no status":           {func(in *contract.RecordInput) { in.Case.Status = "" }, "case.status"},
		"version not seq":     {func(in *contract.RecordInput) { in.Case.Version = 9 }, "case.version"},
		"bad recipient":       {func(in *contract.RecordInput) { in.Notifications[0].Recipient = "anyone" }, "notifications[0].recipient"},
		"taxpayer without id": {func(in *contract.RecordInput) { in.Notifications[0].INN = "" }, "notifications[0].inn"},
		"over 100 items": {func(in *contract.RecordInput) {
			for i := 0; i < 99; i++ {
				in.Entries = append(in.Entries, in.Entries[0])
			}
		}, "entries"},
	} {
		t.Run(name, func(t *testing.T) {
			h, db := newHandler()
			in := step(1, "", "received")
			c.mutate(&in)
			_, err := invoke(t, h, in)
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput || !strings.HasPrefix(ie.Message, c.field+":") {
				t.Fatalf("want InvalidInput on %s, got %v", c.field, err)
			}
			if db.Writes != 0 {
				t.Fatal("an invalid step wrote")
			}
		})
	}
}

func TestRecordStoreDownIsRetryable(t *testing.T) {
	h, db := newHandler()
	db.Err = errors.New("connection refused")
	_, err := invoke(t, h, step(1, "", "received"))
	if errType(err) != fnerr.TypeInternal || fnerr.IsBusiness(errType(err)) {
		t.Fatalf("want a retryable internal error, got %v", err)
	}
}

func TestDigestIgnoresTimesNotContent(t *testing.T) {
	a, _ := Digest(step(1, "", "received"))
	later := step(1, "", "received")
	later.Entries[0].At = at.Add(time.Minute)
	b, _ := Digest(later)
	other := step(1, "", "received")
	other.Notifications[0].Params["label"] = "x"
	c, _ := Digest(other)
	if a != b || a == c {
		t.Fatalf("digests %s %s %s", a, b, c)
	}
}

// A committed step is never changed or deleted: a later write of its key with other
// content — whatever it decided, "cancelled" over "paid" included, and whatever the
// relay did with its notification meanwhile — is KeyReused and leaves every item of the
// step as it was (the API has no input that names an earlier writer to replace).
func TestRecordCommittedStepIsNeverOverwritten(t *testing.T) {
	h, db := newHandler()
	for seq, to := range []string{"received", "paid"} {
		from := map[int]string{1: "received"}[seq]
		if _, err := invoke(t, h, step(int64(seq+1), from, to)); err != nil {
			t.Fatal(err)
		}
	}
	// the relay has sent step 2's notification
	if _, err := store.SetFields(context.Background(), db, "t-outbox", map[string]types.AttributeValue{"notification_id": store.S(caseID + "/2/1")},
		map[string]any{"state": "sent"}); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		var out []string
		for _, table := range []string{"t-audit", "t-cases", "t-outbox"} {
			for _, it := range db.Items(table) {
				var m map[string]any
				if err := store.Unmarshal(it, &m); err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(m)
				out = append(out, table+" "+string(b))
			}
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	before := snapshot()
	cancelled := step(2, "received", "cancelled")
	cancelled.Entries[0].At, cancelled.Case.UpdatedAt = at.Add(time.Minute), at.Add(time.Minute)
	cancelled.Notifications = nil
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := invoke(t, h, cancelled); errType(err) != fnerr.TypeKeyReused {
			t.Fatalf("attempt %d: want KeyReused, got %v", attempt+1, err)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("a refused step changed the record:\nbefore %s\nafter  %s", before, after)
	}
	if res, err := invoke(t, h, step(2, "received", "paid")); err != nil || !res.Duplicate {
		t.Fatalf("the committed step again: %+v %v", res, err)
	}
	rec, _, _ := cases.Get(context.Background(), db, "t-cases", caseID)
	journal, _ := audit.Journal(context.Background(), db, "t-audit", caseID)
	if rec.Status != "paid" || rec.Version != 2 || len(journal) != 2 || journal[1].To != "paid" {
		t.Fatalf("projection %+v, journal %+v", rec, journal)
	}
}

// dump is every item of the three tables, canonically encoded, for comparing stores.
func dump(t *testing.T, db *storetest.DB) string {
	t.Helper()
	var out []string
	for _, table := range []string{"t-audit", "t-cases", "t-outbox"} {
		for _, it := range db.Items(table) {
			var m map[string]any
			if err := store.Unmarshal(it, &m); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			out = append(out, table+" "+string(b))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func newDB() *storetest.DB {
	return storetest.New(map[string]storetest.Key{
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"}})
}

// A step written as a fragment of another transaction (Prepare + Puts) is the step
// Record writes: the same items, byte for byte, and the same digest, so that either
// path recognises the other's write as a duplicate.
func TestPreparedStepWritesWhatRecordWrites(t *testing.T) {
	ctx := context.Background()
	viaRecord, viaFragment := newDB(), newDB()
	sent := &recordingDB{DB: viaRecord}
	hr := Handler{DB: sent, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox"}
	hf := Handler{DB: viaFragment, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox"}
	for seq, to := range []string{"received", "approved"} {
		in := step(int64(seq+1), "", to)
		in.Entries[0].Reason = "reserved in full"
		if _, err := hr.Record(ctx, in); err != nil {
			t.Fatal(err)
		}
		s, err := hf.Prepare(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Digest(in)
		if s.Digest != want || s.Key != contract.RecordKey(caseID, int64(seq+1)) || s.Len() != 3 || s.Reason() != "reserved in full" {
			t.Fatalf("prepared %+v, digest want %s", s, want)
		}
		// the same puts, conditions included, as Record sent
		if !reflect.DeepEqual(s.Puts(), sent.last) {
			t.Fatalf("step %d: the fragment's puts differ from Record's", seq+1)
		}
		for i, p := range s.Puts() {
			if p.Put == nil || p.Put.ConditionExpression == nil {
				t.Fatalf("step %d: put %d is unconditional", seq+1, i)
			}
		}
		if _, err := viaFragment.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: s.Puts()}); err != nil {
			t.Fatal(err)
		}
		// each path recognises the other's write
		if res, err := hf.Record(ctx, in); err != nil || !res.Duplicate {
			t.Fatalf("record over a fragment's write: %+v %v", res, err)
		}
	}
	if a, b := dump(t, viaRecord), dump(t, viaFragment); a != b || a == "" {
		t.Fatalf("the fragment wrote other items:\nrecord   %s\nfragment %s", a, b)
	}
}

// Explain reads only the step's own items at their offset in a larger transaction: a
// failure of the caller's item is not the step's; a step item's failure is explained as
// Record would (Duplicate, KeyReused, Conflict).
func TestExplainAtAnOffset(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(map[string]storetest.Key{
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"}, "other": {PK: "key"}})
	h := Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox"}
	if _, err := h.Record(ctx, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNew(ctx, db, "other", "key", map[string]string{"key": "taken"}); err != nil {
		t.Fatal(err)
	}
	// tx writes the caller's item (once only) at index 0 and the step after it.
	tx := func(s Step, callerKey string) []types.CancellationReason {
		t.Helper()
		av, _ := store.Marshal(map[string]string{"key": callerKey})
		items := append([]types.TransactWriteItem{{Put: &types.Put{TableName: aws.String("other"), Item: av,
			ConditionExpression: aws.String("attribute_not_exists(#k)"), ExpressionAttributeNames: map[string]string{"#k": "key"}}}}, s.Puts()...)
		_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			t.Fatalf("want a cancelled transaction, got %v", err)
		}
		return tce.CancellationReasons
	}
	two, _ := h.Prepare(ctx, step(2, "received", "approved"))
	if _, mine, err := two.Explain(ctx, tx(two, "taken"), 1); mine || err != nil {
		t.Fatalf("the caller's item failed, not the step's: mine %v %v", mine, err)
	}
	one, _ := h.Prepare(ctx, step(1, "", "received"))
	if res, mine, err := one.Explain(ctx, tx(one, "free-1"), 1); !mine || err != nil || !res.Duplicate {
		t.Fatalf("duplicate: %+v %v %v", res, mine, err)
	}
	other, _ := h.Prepare(ctx, step(1, "", "rejected"))
	if _, mine, err := other.Explain(ctx, tx(other, "free-2"), 1); !mine || !isType(err, fnerr.TypeKeyReused) {
		t.Fatalf("key reused: %v %v", mine, err)
	}
	skipped, _ := h.Prepare(ctx, step(3, "approved", "paid"))
	if _, mine, err := skipped.Explain(ctx, tx(skipped, "free-3"), 1); !mine || !isType(err, fnerr.TypeConflict) {
		t.Fatalf("conflict: %v %v", mine, err)
	}
	if len(db.Items("other")) != 1 {
		t.Fatal("a cancelled transaction wrote")
	}
}

// recordingDB keeps the items of the last transaction sent.
type recordingDB struct {
	*storetest.DB
	last []types.TransactWriteItem
}

func (r *recordingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	r.last = in.TransactItems
	return r.DB.TransactWriteItems(ctx, in, o...)
}

func isType(err error, typ string) bool {
	var fe *fnerr.Error
	return errors.As(err, &fe) && fe.Type == typ
}
