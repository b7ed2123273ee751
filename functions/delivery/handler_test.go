package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newStore() *storetest.DB {
	return storetest.New(map[string]storetest.Key{"t-outbox": {PK: "notification_id"}, "t-deliveries": {PK: "notification_id"}})
}

func queue(t *testing.T, db store.DB, n int) {
	t.Helper()
	out := notify.Handler{DB: db, Table: "t-outbox"}
	for i := 0; i < n; i++ {
		if _, err := out.Send(context.Background(), contract.Notification{NotificationID: fmt.Sprintf("refund-1/%d/1", i+1), CaseID: "refund-1",
			Recipient: "supervisor", Template: "refund.deadline_passed", At: now}); err != nil {
			t.Fatal(err)
		}
	}
}

func sweep(t *testing.T, db store.DB) (contract.SweepResult, error) {
	t.Helper()
	h := Handler{DB: db, Outbox: "t-outbox", Channel: Deliveries{DB: db, Table: "t-deliveries", Now: func() time.Time { return now }},
		Now: func() time.Time { return now }}
	out, err := lambda.NewHandler(fn.Handler(h.Sweep)).Invoke(context.Background(), []byte(`{"date":"2026-11-22","limit":100}`))
	if err != nil {
		return contract.SweepResult{}, err
	}
	var res contract.SweepResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func states(t *testing.T, db *storetest.DB) map[string]int {
	out := map[string]int{}
	for _, it := range db.Items("t-outbox") {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil {
			t.Fatal(err)
		}
		out[n.State]++
	}
	return out
}

func TestSweepDeliversEachPendingNotificationOnce(t *testing.T) {
	db := newStore()
	queue(t, db, 5)
	res, err := sweep(t, db)
	if err != nil || res.Processed != 5 || res.Sent != 5 || res.Duplicates != 0 {
		t.Fatalf("first sweep: %+v %v", res, err)
	}
	if st := states(t, db); st["sent"] != 5 || len(db.Items("t-deliveries")) != 5 {
		t.Fatalf("outbox %v, %d delivered", st, len(db.Items("t-deliveries")))
	}
	res, err = sweep(t, db)
	if err != nil || res.Processed != 0 {
		t.Fatalf("second sweep found work: %+v %v", res, err)
	}
}

func TestSweepAfterACrashDeliversAgainButTheChannelDeduplicates(t *testing.T) {
	db := newStore()
	queue(t, db, 3)
	// the store goes down after the channel had the notifications: none is marked sent
	broken := &failMark{DB: db}
	if _, err := sweep(t, broken); err == nil {
		t.Fatal("want the sweep to fail when it cannot mark")
	}
	if st := states(t, db); st["pending"] != 3 || len(db.Items("t-deliveries")) != 3 {
		t.Fatalf("after the crash: outbox %v, %d delivered", st, len(db.Items("t-deliveries")))
	}
	res, err := sweep(t, db)
	if err != nil || res.Sent != 0 || res.Duplicates != 3 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if st := states(t, db); st["sent"] != 3 || len(db.Items("t-deliveries")) != 3 {
		t.Fatalf("after the retry: outbox %v, %d delivered", st, len(db.Items("t-deliveries")))
	}
}

// failMark refuses every update: the marking as sent.
type failMark struct{ *storetest.DB }

// UpdateItem fails the marking (the claim before the hand-over goes through).
func (f *failMark) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if aws.ToString(in.UpdateExpression) == "SET #h = :h" {
		return f.DB.UpdateItem(ctx, in, opts...)
	}
	return nil, errors.New("connection reset")
}

// staleIndex lists, besides what the outbox holds, a notification that is gone (the index
// is eventually consistent: a replaced step's deleted notification may still be listed).
type staleIndex struct {
	*storetest.DB
	gone map[string]types.AttributeValue
}

func (s *staleIndex) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := s.DB.Query(ctx, in, opts...)
	if err == nil {
		out.Items = append(out.Items, s.gone)
	}
	return out, err
}

// The relay claims a notification on the table before it hands it over: one the index
// still lists after it was deleted is not handed over, and every one handed over was
// claimed first (a replaced step keeps a claimed one as handed over).
func TestSweepClaimsBeforeItHandsOver(t *testing.T) {
	db := newStore()
	queue(t, db, 2)
	gone, err := store.Marshal(contract.Notification{NotificationID: "refund-1/9/1", CaseID: "refund-1", Recipient: "taxpayer",
		Template: "refund.approved", At: now, State: notify.StatePending})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sweep(t, &staleIndex{DB: db, gone: gone})
	if err != nil || res.Processed != 3 || res.Sent != 2 || res.Duplicates != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	for _, d := range db.Items("t-deliveries") {
		if id := d["notification_id"].(*types.AttributeValueMemberS).Value; id == "refund-1/9/1" {
			t.Fatal("a deleted notification was handed over")
		}
	}
	for _, it := range db.Items("t-outbox") {
		if _, ok := it[AttrHandedAt]; !ok {
			t.Fatalf("handed over unclaimed: %v", it)
		}
	}
}
