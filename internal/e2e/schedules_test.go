//go:build integration

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows/schedules"
)

func outboxHas(t *testing.T, id string) bool {
	t.Helper()
	out, err := shared.clients.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(shared.cfg.Name(notify.Table)), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"notification_id": &ddbtypes.AttributeValueMemberS{Value: id}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Item) > 0
}

// Apply the schedules, trigger the reminders, find the notifications; trigger again and
// find no duplicates.
func TestSchedulesApplyTriggerAndRemindOnce(t *testing.T) {
	ctx := context.Background()
	queue := startWorker(t, lambdaInvoker())
	list := schedules.Declare(12, 60)
	for i := range list {
		list[i].ID = list[i].ID + "-" + uuid.NewString()[:8] // this test's own schedules
	}
	t.Cleanup(func() {
		for _, s := range list {
			_ = shared.temporal.ScheduleClient().GetHandle(ctx, s.ID).Delete(ctx)
		}
	})
	for pass, want := range []string{"created", "updated"} {
		res, err := schedules.Apply(ctx, shared.temporal, queue, list)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if res[s.ID] != want {
				t.Fatalf("apply %d: %s %s, want %s", pass+1, s.ID, res[s.ID], want)
			}
		}
	}

	// Obligations due in 30, 7 and 1 days (Moscow), and one due in 5 days (no reminder).
	today := time.Now().In(calendar.Moscow)
	inn := domain.CompleteINN12(fmt.Sprintf("54%08d", rand.IntN(100_000_000)))
	var ids []string
	for _, days := range []int{30, 7, 1, 5} {
		due := today.AddDate(0, 0, days)
		o := contract.Obligation{ObligationID: "ob-" + uuid.NewString(), INN: inn, Tax: "transport", Amount: 150_000,
			DueDate: due.Format(time.DateOnly), DueMonth: due.Format("2006-01")}
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(reminders.Table), "obligation_id", o); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprintf("reminder#%s#%d", o.ObligationID, days))
	}
	h := shared.temporal.ScheduleClient().GetHandle(ctx, list[0].ID)
	run := func() contract.SweepResult {
		t.Helper()
		before := 0
		if d, err := h.Describe(ctx); err == nil {
			before = len(d.Info.RecentActions)
		}
		if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			d, err := h.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(d.Info.RecentActions); n > before {
				wf := d.Info.RecentActions[n-1].StartWorkflowResult
				var res contract.SweepResult
				if err := shared.temporal.GetWorkflow(ctx, wf.WorkflowID, wf.FirstExecutionRunID).Get(ctx, &res); err != nil {
					t.Fatal(err)
				}
				return res
			}
			if time.Now().After(deadline) {
				t.Fatal("the triggered run never started")
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	first := run()
	for _, id := range ids[:3] {
		if !outboxHas(t, id) {
			t.Fatalf("reminder %s not in the outbox (run: %+v)", id, first)
		}
	}
	if outboxHas(t, ids[3]) {
		t.Fatal("a reminder for an obligation due in 5 days was sent")
	}
	second := run()
	if second.Sent != 0 || second.Duplicates < 3 {
		t.Fatalf("second run sent %d (duplicates %d): reminders must go out once", second.Sent, second.Duplicates)
	}
}
