// Package delivery drains the outbox: one page of pending notifications is handed to
// the channel and marked sent. Delivery is at least once — a crash between handing a
// notification over and marking it sent leaves it pending, and the next sweep hands it
// over again — and the channel de-duplicates by the notification's id, so the taxpayer
// gets each notification once.
package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is what the channel has received: partition key notification_id. It stands for
// the channels' own de-duplication (a cabinet inbox, an SMS gateway's idempotency key).
const Table = "deliveries"

// Index lists the outbox by state and time.
const Index = "by_state"

// Delivery is a notification as the channel received it.
type Delivery struct {
	NotificationID string    `json:"notification_id"`
	CaseID         string    `json:"case_id"`
	Recipient      string    `json:"recipient"`
	Template       string    `json:"template"`
	Channels       []string  `json:"channels,omitempty"`
	DeliveredAt    time.Time `json:"delivered_at"`
}

// Channel hands a notification to its recipient, once per notification id:
// duplicate is true when it had it already.
type Channel interface {
	Deliver(ctx context.Context, n contract.Notification) (duplicate bool, err error)
}

// Deliveries is the channel the local stack and the tests use: a conditional write per
// notification id into the deliveries table.
type Deliveries struct {
	DB    store.DB
	Table string
	Now   func() time.Time
}

// Deliver records the delivery unless it is recorded already.
func (d Deliveries) Deliver(ctx context.Context, n contract.Notification) (bool, error) {
	channels := n.Channels
	if len(channels) == 0 {
		channels = []string{"cabinet"}
	}
	created, err := store.PutNew(ctx, d.DB, d.Table, "notification_id", Delivery{NotificationID: n.NotificationID, CaseID: n.CaseID,
		Recipient: n.Recipient, Template: n.Template, Channels: channels, DeliveredAt: d.Now().UTC()})
	if err != nil {
		return false, fmt.Errorf("deliver: %w", err)
	}
	return !created, nil
}

// Handler delivers one page of the outbox.
type Handler struct {
	DB      store.DB
	Outbox  string
	Channel Channel
	Now     func() time.Time
}

const parallel = 16

// Sweep delivers the pending notifications of one page, oldest first.
func (h Handler) Sweep(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	if in.Limit <= 0 || in.Limit > 1000 {
		in.Limit = 500
	}
	start, err := store.DecodeCursor(in.Cursor)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("cursor", err.Error())
	}
	// An index is read eventually consistent: an item already sent may still be listed
	// as pending, which costs one de-duplicated delivery, never a second message.
	page, err := h.DB.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(h.Outbox), IndexName: aws.String(Index),
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": store.S(notify.StatePending)},
		ExclusiveStartKey:         start, Limit: aws.Int32(int32(in.Limit)),
	})
	if err != nil {
		return contract.SweepResult{}, fmt.Errorf("read the outbox: %w", err)
	}
	var pending []contract.Notification
	if err := store.UnmarshalList(page.Items, &pending); err != nil {
		return contract.SweepResult{}, fmt.Errorf("decode the outbox: %w", err)
	}
	res := contract.SweepResult{Processed: len(pending), Cursor: store.EncodeCursor(page.LastEvaluatedKey)}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, n := range pending {
		wg.Add(1)
		sem <- struct{}{}
		go func(n contract.Notification) {
			defer wg.Done()
			defer func() { <-sem }()
			dup, err := h.deliver(ctx, n)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			case dup:
				res.Duplicates++
			default:
				res.Sent++
			}
		}(n)
	}
	wg.Wait()
	if firstErr != nil {
		return contract.SweepResult{}, fmt.Errorf("deliver notifications: %w", firstErr)
	}
	return res, nil
}

// deliver hands a notification over and marks it sent. A committed notification is never
// deleted or changed but for its state, and the channel de-duplicates by id, so a
// notification the index still lists after it was sent costs one de-duplicated hand-over,
// never a second message: no claim before the hand-over is needed.
func (h Handler) deliver(ctx context.Context, n contract.Notification) (bool, error) {
	dup, err := h.Channel.Deliver(ctx, n)
	if err != nil {
		return false, err
	}
	// Marked only once the channel has it: a crash before this line delivers again.
	if _, err := store.SetFields(ctx, h.DB, h.Outbox, map[string]types.AttributeValue{"notification_id": store.S(n.NotificationID)},
		map[string]any{"state": notify.StateSent, "sent_at": h.Now().UTC()}); err != nil {
		return false, fmt.Errorf("mark sent: %w", err)
	}
	return dup, nil
}
