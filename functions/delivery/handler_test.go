package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
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

// UpdateItem fails the marking.
func (f *failMark) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errors.New("connection reset")
}

// staleIndex lists, besides what the outbox holds as pending, a notification already sent
// (the index is eventually consistent).
type staleIndex struct {
	*storetest.DB
	sent map[string]types.AttributeValue
}

func (s *staleIndex) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := s.DB.Query(ctx, in, opts...)
	if err == nil {
		out.Items = append(out.Items, s.sent)
	}
	return out, err
}

// A notification the index still lists after it was sent is handed over again, and the
// channel, which de-duplicates by id, does not deliver it a second time.
func TestSweepOfAStaleIndexDeliversOnce(t *testing.T) {
	db := newStore()
	queue(t, db, 2)
	if res, err := sweep(t, db); err != nil || res.Sent != 2 {
		t.Fatalf("first sweep: %+v %v", res, err)
	}
	sent := db.Items("t-outbox")[0]
	if _, err := (notify.Handler{DB: db, Table: "t-outbox"}).Send(context.Background(), contract.Notification{NotificationID: "refund-1/9/1",
		CaseID: "refund-1", Recipient: "supervisor", Template: "refund.deadline_passed", At: now}); err != nil {
		t.Fatal(err)
	}
	res, err := sweep(t, &staleIndex{DB: db, sent: sent})
	if err != nil || res.Processed != 2 || res.Sent != 1 || res.Duplicates != 1 {
		t.Fatalf("sweep: %+v %v", res, err)
	}
	if n := len(db.Items("t-deliveries")); n != 3 {
		t.Fatalf("%d delivered, want 3", n)
	}
}
