package transition

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// txLog records every transaction sent, to tell which items rode in which one.
type txLog struct {
	*storetest.DB
	mu  sync.Mutex
	txs [][]types.TransactWriteItem
}

func (l *txLog) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	l.mu.Lock()
	l.txs = append(l.txs, in.TransactItems)
	l.mu.Unlock()
	return l.DB.TransactWriteItems(ctx, in, o...)
}

func eventsHandler() (Handler, *txLog) {
	db := &txLog{DB: storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"},
		"t-outbox": {PK: "notification_id"}, "t-events": {PK: "case_id", SK: "seq"}})}
	return Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox", Events: "t-events"}, db
}

func storedEvents(t *testing.T, db *txLog) []events.Item {
	t.Helper()
	var out []events.Item
	if err := store.UnmarshalList(db.Items("t-events"), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The event is one of the step's own transaction's items, with the projection's status,
// label and time, pending, kept 30 days.
func TestStepWritesItsEventInItsTransaction(t *testing.T) {
	h, db := eventsHandler()
	in := step(1, "", "received")
	in.Case.Label = "Принято"
	if _, err := h.Record(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(db.txs) != 1 {
		t.Fatalf("%d transactions, want 1", len(db.txs))
	}
	tables := map[string]int{}
	for _, it := range db.txs[0] {
		if it.Put != nil {
			tables[aws.ToString(it.Put.TableName)]++
		}
	}
	if tables["t-events"] != 1 || tables["t-cases"] != 1 || tables["t-audit"] != 1 || tables["t-outbox"] != 1 {
		t.Fatalf("the step's transaction holds %v", tables)
	}
	got := storedEvents(t, db)
	if len(got) != 1 {
		t.Fatalf("%d events", len(got))
	}
	e := got[0]
	want := events.Event{ID: caseID + "/1", Type: "refund.received", CaseID: caseID, Process: "refund", Status: "received",
		StatusLabel: "Принято", Seq: 1, OccurredAt: at}
	if e.Event != want || e.State != events.StatePending || e.Tenant != "" || e.ExpiresAt != at.Add(30*24*time.Hour).Unix() ||
		e.At != events.IndexTime(at) {
		t.Fatalf("event %+v", e)
	}
	// No personal data: the notification's INN is in the step, never in its event.
	for k, v := range db.Items("t-events")[0] {
		if s, ok := v.(*types.AttributeValueMemberS); ok && s.Value == "500100732259" {
			t.Fatalf("the event carries the INN in %s", k)
		}
	}
}

// A retried step (a reset runs the clock again: other times) is the same step: no
// second event, the first one unchanged. Another content under the same key is refused.
func TestRetriedStepWritesNoSecondEvent(t *testing.T) {
	h, db := eventsHandler()
	if _, err := h.Record(context.Background(), step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	again := step(1, "", "received")
	later := at.Add(time.Hour)
	again.Entries[0].At, again.Case.UpdatedAt, again.Notifications[0].At = later, later, later
	res, err := h.Record(context.Background(), again)
	if err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}
	got := storedEvents(t, db)
	if len(got) != 1 || !got[0].OccurredAt.Equal(at) {
		t.Fatalf("events after the retry: %+v", got)
	}
	other := step(1, "", "in_review")
	if _, err := h.Record(context.Background(), other); !isType(err, fnerr.TypeKeyReused) {
		t.Fatalf("other content under the key: %v", err)
	}
	if n := len(storedEvents(t, db)); n != 1 {
		t.Fatalf("%d events", n)
	}
}

// An event whose id is taken by another step (the only item that fails) is a Conflict
// that names the event, and writes nothing of the step.
func TestEventTakenByAnotherStepIsAConflict(t *testing.T) {
	h, db := eventsHandler()
	in := contract.RecordInput{CaseID: caseID, Seq: 1, Case: step(1, "", "received").Case}
	av, _ := store.Marshal(events.Item{Event: events.Event{CaseID: caseID, Seq: 1}, State: events.StatePending})
	av[AttrKey], av[AttrDigest] = store.S("someone-else/1"), store.S("x")
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("t-events"), Item: av}); err != nil {
		t.Fatal(err)
	}
	_, err := h.Record(context.Background(), in)
	if !isType(err, fnerr.TypeConflict) || !strings.Contains(err.Error(), "event") {
		t.Fatalf("want a Conflict naming the event, got %v", err)
	}
	if n := len(db.Items("t-cases")); n != 0 {
		t.Fatalf("the projection was written (%d)", n)
	}
}

// Steps without a projection (a journal entry, a notification) are no transition: no
// event. Without an events table (other packages' unit tests) no step writes one.
func TestStepWithoutProjectionWritesNoEvent(t *testing.T) {
	h, db := eventsHandler()
	if _, err := h.Record(context.Background(), step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	only := step(2, "", "")
	only.Case = nil
	if _, err := h.Record(context.Background(), only); err != nil {
		t.Fatal(err)
	}
	if n := len(storedEvents(t, db)); n != 1 {
		t.Fatalf("%d events, want the first step's only", n)
	}
	h.Events = ""
	other := step(1, "", "received")
	other.CaseID = "refund-2"
	if _, err := h.Record(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if n := len(storedEvents(t, db)); n != 1 {
		t.Fatalf("%d events without an events table", n)
	}
}

// A status with a '.' cannot make an event type: refused, nothing written. A projection
// without a process (only hand-made test steps) writes no event.
func TestStepWhoseEventTypeIsAmbiguousIsRefused(t *testing.T) {
	h, db := eventsHandler()
	in := step(1, "", "paid.twice")
	if _, err := h.Record(context.Background(), in); !isType(err, fnerr.TypeInvalidInput) {
		t.Fatalf("want InvalidInput, got %v", err)
	}
	if db.Writes != 0 {
		t.Fatalf("%d writes", db.Writes)
	}
	in = step(1, "", "received")
	in.Case.Process = ""
	if _, err := h.Record(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if n := len(storedEvents(t, db)); n != 0 {
		t.Fatalf("%d events of a projection without a process", n)
	}
}

// A step whose projection condition fails writes no event (the transaction is one).
func TestFailedStepWritesNoEvent(t *testing.T) {
	h, db := eventsHandler()
	if _, err := h.Record(context.Background(), step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Record(context.Background(), step(3, "in_review", "approved")); !isType(err, fnerr.TypeConflict) {
		t.Fatalf("a step after a missing one: %v", err)
	}
	if n := len(storedEvents(t, db)); n != 1 {
		t.Fatalf("%d events", n)
	}
}
