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

func (f *failMark) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errors.New("connection reset")
}
