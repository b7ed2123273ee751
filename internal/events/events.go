// Package events is the contract of integrator events: what a tenant hears about its
// cases. Every committed transition of a case (a step that writes its projection)
// writes one Pending item into the events table in the step's own transaction, so an
// event exists exactly when its transition committed. The relay (functions/eventrelay)
// moves pending events, in each case's sequence order, into the tenant's Feed: an
// append-only list numbered 1, 2, 3… per tenant (Pos). The feed is what GET /v1/events
// pages through and what webhook deliveries (functions/webhooks) read after each
// endpoint's cursor.
//
// Both tables carry expires_at (DynamoDB TTL): events are kept 30 days.
package events

import (
	"fmt"
	"strings"
	"time"
)

// Tables (logical names; the deployment prefixes them).
const (
	// Table: one item per committed transition. Partition key case_id (S), sort key
	// seq (N). Index ByState (state S, at S) lists the pending ones oldest first.
	Table   = "events"
	ByState = "by_state"
	// FeedTable: partition key tenant (S), sort key pos (N), 1, 2, 3… per tenant with no
	// gaps. A counter item per tenant (pos 0, attribute last) holds the last pos given.
	FeedTable = "event_feed"
)

// States of an item of Table.
const (
	StatePending = "pending" // committed with its transition, not in a feed yet
	StateRelayed = "relayed" // in its tenant's feed (or no tenant hears it: Tenant "")
)

// Keep is how long events and feed entries are kept.
const Keep = 30 * 24 * time.Hour

// Event is one committed transition as a tenant hears it. It carries no personal data:
// the case id, its process and status, never an INN, a name or an amount's owner.
type Event struct {
	ID          string    `json:"id"`           // "<case_id>/<seq>": stable, the receiver's idempotency key
	Type        string    `json:"type"`         // "<process>.<status>", e.g. refund.paid
	CaseID      string    `json:"case_id"`      //
	Process     string    `json:"process"`      // refund, identity, declaration, account, batch
	Status      string    `json:"status"`       //
	StatusLabel string    `json:"status_label"` // the Russian label the case's GET answers
	Seq         int64     `json:"seq"`          // the transition's sequence number in its case
	OccurredAt  time.Time `json:"occurred_at"`  // when the transition committed
}

// Item is an Event as stored in Table.
type Item struct {
	Event
	State     string `json:"state"`
	Tenant    string `json:"tenant,omitempty"` // set by the relay ("" : the case has no tenant)
	ExpiresAt int64  `json:"expires_at"`       // epoch seconds (TTL)
	// At is the sort key of ByState: OccurredAt as fixed-width text (IndexTime), so the
	// index lists pending events oldest first. The relay removes it with the pending
	// state, which drops a relayed event out of the index (a sparse index).
	At string `json:"at,omitempty"`
}

// IndexTime is t as ByState's sort key: UTC, fixed width, so text order is time order.
func IndexTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// Counter is the attribute of a tenant's counter item (pos 0 of FeedTable) that holds
// the last position given. The counter never expires: positions are never reused.
const Counter = "last"

// FnRelay is the relay function's logical name (functions/eventrelay).
const FnRelay = "event-relay"

// RelayInput is one invocation of the relay: relay what is pending, then wait up to
// WaitMillis for new events (0: relay what is pending and return).
type RelayInput struct {
	WaitMillis int `json:"wait_millis,omitempty"`
	Limit      int `json:"limit,omitempty"` // index items read a page (default 100)
}

// RelayResult says what an invocation relayed.
type RelayResult struct {
	Relayed   int   `json:"relayed"`             // events appended to a feed
	NoTenant  int   `json:"no_tenant,omitempty"` // events of cases without a tenant, marked relayed
	Conflicts int   `json:"conflicts,omitempty"` // transactions lost to another relay (tried again)
	Passes    int   `json:"passes"`              // index pages read
	MaxLagMs  int64 `json:"max_lag_ms,omitempty"`
}

// FeedEntry is an Event in its tenant's feed.
type FeedEntry struct {
	Event
	Tenant    string    `json:"tenant"`
	Pos       int64     `json:"pos"`
	RelayedAt time.Time `json:"relayed_at"`
	ExpiresAt int64     `json:"expires_at"`
}

// ID is the event id of a case's transition.
func ID(caseID string, seq int64) string { return fmt.Sprintf("%s/%d", caseID, seq) }

// Type is the event type of a process's status: "<process>.<status>".
func Type(process, status string) string { return process + "." + status }

// SplitType is the inverse of Type.
func SplitType(t string) (process, status string, ok bool) {
	process, status, ok = strings.Cut(t, ".")
	return process, status, ok && process != "" && status != ""
}

// BatchLabels are the Russian labels of a batch file's statuses (workflows/batch.go), as its
// events carry them.
var BatchLabels = map[string]string{
	"reading":   "Файл читается",
	"importing": "Строки загружаются",
	"done":      "Файл обработан",
	"refused":   "Файл отклонён",
	"gone":      "Файл уже обработан",
}
