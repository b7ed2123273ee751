package contract

import "time"

// FnWebhookDeliver runs one round of an endpoint's webhook deliveries (functions/webhooks):
// it turns the tenant's new feed entries into deliveries and sends those due.
const FnWebhookDeliver = "webhook-deliver"

// WebhookPolicy is what an endpoint's deliveries run under. The API fills it from
// configuration when it starts the endpoint's workflow (TAXFLOW_WEBHOOK_*), so the
// function needs no configuration of its own beyond its tables and the secrets' key.
type WebhookPolicy struct {
	BackoffBase  time.Duration `json:"backoff_base"`  // first retry's ceiling (full jitter), doubling
	BackoffCap   time.Duration `json:"backoff_cap"`   // ceiling of any one wait
	GiveUpAfter  time.Duration `json:"give_up_after"` // a delivery is failed this long after its first attempt
	DisableAfter time.Duration `json:"disable_after"` // an endpoint whose every attempt failed this long is disabled
	Concurrency  int           `json:"concurrency"`   // sends at once per endpoint
	PollFor      time.Duration `json:"poll_for"`      // how long one round long-polls the feed
	// AllowLoopback: http:// and loopback receivers are allowed (the local stack only).
	AllowLoopback bool `json:"allow_loopback,omitempty"`
}

// DefaultWebhookPolicy is the policy without configuration.
func DefaultWebhookPolicy() WebhookPolicy {
	return WebhookPolicy{BackoffBase: 5 * time.Second, BackoffCap: time.Hour, GiveUpAfter: 72 * time.Hour,
		DisableAfter: 24 * time.Hour, Concurrency: 4, PollFor: 20 * time.Second}
}

// WebhookDeliverInput names the endpoint of a round; no secret and no URL travel in it.
type WebhookDeliverInput struct {
	EndpointID string        `json:"endpoint_id"`
	Policy     WebhookPolicy `json:"policy"`
}

// WebhookDeliverResult is what a round did.
type WebhookDeliverResult struct {
	Ingested  int `json:"ingested"`  // deliveries made from feed entries
	Delivered int `json:"delivered"` // answered 2xx
	Attempts  int `json:"attempts"`  // sends made
	Failed    int `json:"failed"`    // deliveries that gave up in this round
	// Status of the endpoint after the round: enabled, disabled or deleted.
	Status string `json:"status"`
	// NextAttempt is the earliest retry due (zero: none pending).
	NextAttempt time.Time `json:"next_attempt,omitempty"`
}
