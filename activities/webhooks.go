package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/contract"
)

// WebhookOptions: a round long-polls for about 20 s and then finishes the sends it began
// (10 s each at most); the function's own timeout is 60 s. Its heartbeat (call's) lets a
// dead worker's round be retried soon: a send it made and did not record is made again,
// with the same webhook-id (at least once).
var WebhookOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 90 * time.Second,
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(10),
}

// DeliverWebhooks runs one round of an endpoint's deliveries (functions/webhooks).
func (a *Activities) DeliverWebhooks(ctx context.Context, in contract.WebhookDeliverInput) (contract.WebhookDeliverResult, error) {
	return call[contract.WebhookDeliverResult](ctx, a.Invoker, contract.FnWebhookDeliver, in)
}
