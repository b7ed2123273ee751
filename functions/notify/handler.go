// Package notify writes notifications to the outbox, once per notification id. A sender
// (e-mail, SMS, push, cabinet) drains the outbox on the channels the taxpayer chose.
package notify

import (
	"context"
	"fmt"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the outbox: partition key notification_id; index by_state (state, at).
const Table = "outbox"

// Recipients a notification may go to.
var recipients = map[string]bool{"taxpayer": true, "reviewer": true, "supervisor": true, "operator": true}

// States of an outbox item: pending until a channel has it, then sent.
const (
	StatePending = "pending"
	StateSent    = "sent"
)

// Check validates a notification before it enters the outbox.
func Check(n contract.Notification) error {
	switch {
	case n.NotificationID == "":
		return fnerr.Invalid("notification_id", "must not be empty")
	case n.CaseID == "":
		return fnerr.Invalid("case_id", "must not be empty")
	case !recipients[n.Recipient]:
		return fnerr.Invalid("recipient", "must be taxpayer, reviewer, supervisor or operator")
	case n.Template == "":
		return fnerr.Invalid("template", "must not be empty")
	case n.At.IsZero():
		return fnerr.Invalid("at", "must be set")
	case n.Recipient == "taxpayer" && n.INN == "":
		return fnerr.Invalid("inn", "a notification to the taxpayer names the taxpayer")
	}
	return nil
}

// Handler writes to the outbox.
type Handler struct {
	DB    store.DB
	Table string
}

// Send queues the notification.
func (h Handler) Send(ctx context.Context, n contract.Notification) (contract.NotifyResult, error) {
	if err := Check(n); err != nil {
		return contract.NotifyResult{}, err
	}
	n.State = StatePending
	n.At = n.At.UTC()
	created, err := store.PutNew(ctx, h.DB, h.Table, "notification_id", n)
	if err != nil {
		return contract.NotifyResult{}, fmt.Errorf("queue notification: %w", err)
	}
	return contract.NotifyResult{Duplicate: !created}, nil
}
