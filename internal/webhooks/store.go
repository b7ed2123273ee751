// Package webhooks delivers a tenant's events (its feed, internal/events) to the HTTPS
// endpoints the tenant registered, signed by the Standard Webhooks scheme. One round of
// an endpoint (Handler.Round, the function webhook-deliver) turns the feed entries after
// the endpoint's cursor into deliveries, in the same transaction that moves the cursor,
// and sends the deliveries that are due, a few at a time, each case's in its order.
//
// The API (api/webhooks.go) registers endpoints through the same Store; the endpoint's
// workflow (workflows.WebhookEndpoint) calls rounds one after another.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/store"
)

// Tables (logical names).
const (
	// Table: the endpoints (partition key endpoint_id) and one item per tenant
	// (endpoint_id "tenant#<tenant>") listing the tenant's endpoints, which also bounds them.
	Table = "webhooks"
	// DeliveriesTable: partition key endpoint_id (S), sort key pos (N): one delivery per
	// feed entry the endpoint wants, numbered by the entry's position in the tenant's feed.
	DeliveriesTable = "webhook_deliveries"
)

// MaxPerTenant is how many endpoints a tenant may have.
const MaxPerTenant = 10

// Endpoint statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
	StatusDeleted  = "deleted"
)

// Delivery statuses.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Failed    = "failed"
)

// Endpoint is a registered receiver. Its secrets are sealed (Sealer): never in clear text
// in the table, in a log, an error or a workflow's history.
type Endpoint struct {
	EndpointID string   `json:"endpoint_id"`
	Tenant     string   `json:"tenant"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
	Status     string   `json:"status"`
	CreatedAt  string   `json:"created_at"` // RFC 3339
	CreatedBy  string   `json:"created_by,omitempty"`
	Secret     string   `json:"secret"` // sealed
	// OldSecret, sealed, signs too until OldSecretUntil (Unix seconds): a rotation.
	OldSecret      string `json:"old_secret,omitempty"`
	OldSecretUntil int64  `json:"old_secret_until,omitempty"`
	// Cursor: the last feed position turned into deliveries (or skipped).
	Cursor int64 `json:"cursor"`
	// Floor: every delivery at or below it is final (delivered or failed).
	Floor int64 `json:"floor"`
	// Retries counts deliveries put pending again by the API: a round moves the floor only
	// if none was retried since it read its window (a retried one may lie below it).
	Retries int64 `json:"retries,omitempty"`
	// FailingSince (Unix seconds): the first failed attempt since the last success.
	FailingSince   int64  `json:"failing_since,omitempty"`
	LastSuccessAt  int64  `json:"last_success_at,omitempty"`
	DisabledAt     int64  `json:"disabled_at,omitempty"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// RequestSHA256 and IdemKey: the create request and its Idempotency-Key (hashed).
	RequestSHA256 string `json:"request_sha256,omitempty"`
	IdemKey       string `json:"idem_key,omitempty"`
	// Rev names this writing of the item: every write is conditional on the one read, so
	// the API (rotate, enable, delete) and a round (cursor, failures) never undo each other.
	Rev string `json:"rev"`
}

// Wants tells whether the endpoint takes events of a type.
func (e Endpoint) Wants(typ string) bool {
	return slices.Contains(e.EventTypes, "*") || slices.Contains(e.EventTypes, typ)
}

// Attempt is one send of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	Code       int       `json:"code,omitempty"` // the receiver's HTTP status; 0 when none came
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"` // the class of failure: timeout, connect, address, redirect, status, …
}

// Delivery is one event to one endpoint.
type Delivery struct {
	EndpointID    string       `json:"endpoint_id"`
	Pos           int64        `json:"pos"`
	Event         events.Event `json:"event"`
	Status        string       `json:"status"`
	Attempts      []Attempt    `json:"attempts,omitempty"`
	FirstAttempt  time.Time    `json:"first_attempt,omitempty"`
	NextAttemptAt time.Time    `json:"next_attempt_at"`
	CreatedAt     time.Time    `json:"created_at"`
	ExpiresAt     int64        `json:"expires_at"` // TTL: kept as long as the feed
	Rev           string       `json:"rev"`
}

// ID is the delivery's id in the API: its feed position.
func (d Delivery) ID() string { return strconv.FormatInt(d.Pos, 10) }

// Last is the latest attempt (zero before the first).
func (d Delivery) Last() Attempt {
	if len(d.Attempts) == 0 {
		return Attempt{}
	}
	return d.Attempts[len(d.Attempts)-1]
}

// Errors of the store.
var (
	ErrConflict = errors.New("changed since read")
	ErrTooMany  = fmt.Errorf("a tenant has at most %d webhook endpoints", MaxPerTenant)
	ErrExists   = errors.New("endpoint exists")
)

// Store is what the API and the rounds read and write. DynamoStore is the deployment's;
// MemoryStore serves the unit tests.
type Store interface {
	GetEndpoint(ctx context.Context, id string) (Endpoint, bool, error)
	// CreateEndpoint adds a new endpoint to its tenant (ErrExists, ErrTooMany).
	CreateEndpoint(ctx context.Context, e Endpoint) error
	// PutEndpoint writes e over the item of revision rev (ErrConflict). An endpoint put
	// deleted leaves its tenant's list.
	PutEndpoint(ctx context.Context, e Endpoint, rev string) error
	// Endpoints lists a tenant's endpoints (deleted ones not), oldest first; tenant ""
	// lists every tenant's.
	Endpoints(ctx context.Context, tenant string) ([]Endpoint, error)
	// FeedEnd is the last position of a tenant's feed (its counter item, pos 0; 0 when empty).
	FeedEnd(ctx context.Context, tenant string) (int64, error)
	// Feed reads up to limit entries of a tenant's feed after pos.
	Feed(ctx context.Context, tenant string, after int64, limit int) ([]events.FeedEntry, error)
	// Ingest writes the deliveries (each once) and the endpoint (over rev) in one transaction.
	Ingest(ctx context.Context, e Endpoint, rev string, ds []Delivery) error
	// Deliveries reads up to limit deliveries of an endpoint after pos, in order.
	Deliveries(ctx context.Context, endpointID string, after int64, limit int) ([]Delivery, error)
	GetDelivery(ctx context.Context, endpointID string, pos int64) (Delivery, bool, error)
	// PutDelivery writes d over the item of revision rev (ErrConflict).
	PutDelivery(ctx context.Context, d Delivery, rev string) error
}

// NewRev is a fresh revision name.
func NewRev() string { return uuid.NewString() }

// tenantItem lists a tenant's endpoints; its key is tenantKey.
type tenantItem struct {
	EndpointID string   `json:"endpoint_id"` // tenantKey(tenant)
	Endpoints  []string `json:"endpoints"`
	Rev        string   `json:"rev"`
}

func tenantKey(tenant string) string { return "tenant#" + tenant }

// DynamoStore keeps endpoints and deliveries in DynamoDB.
type DynamoStore struct {
	DB            store.DB
	Hooks         string // the webhooks table
	DeliveryTable string // the webhook_deliveries table
	FeedTable     string // the event_feed table
}

func (s DynamoStore) GetEndpoint(ctx context.Context, id string) (Endpoint, bool, error) {
	var e Endpoint
	found, err := store.Get(ctx, s.DB, s.Hooks, map[string]types.AttributeValue{"endpoint_id": store.S(id)}, &e)
	if found && e.Tenant == "" {
		return Endpoint{}, false, nil // a tenant's list, not an endpoint
	}
	return e, found, err
}

func (s DynamoStore) tenant(ctx context.Context, tenant string) (tenantItem, bool, error) {
	var t tenantItem
	found, err := store.Get(ctx, s.DB, s.Hooks, map[string]types.AttributeValue{"endpoint_id": store.S(tenantKey(tenant))}, &t)
	return t, found, err
}

// revPut is a Put conditional on the item's revision ("" : the item must not exist).
func revPut(table, keyAttr string, item map[string]types.AttributeValue, rev string) *types.Put {
	p := &types.Put{TableName: aws.String(table), Item: item}
	if rev == "" {
		p.ConditionExpression = aws.String("attribute_not_exists(#k)")
		p.ExpressionAttributeNames = map[string]string{"#k": keyAttr}
	} else {
		p.ConditionExpression = aws.String("#v = :v")
		p.ExpressionAttributeNames = map[string]string{"#v": "rev"}
		p.ExpressionAttributeValues = map[string]types.AttributeValue{":v": store.S(rev)}
	}
	return p
}

// transact runs the writes; a lost condition is ErrConflict with the index of the first
// item that lost.
func (s DynamoStore) transact(ctx context.Context, items []types.TransactWriteItem) (int, error) {
	_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for i, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return i, ErrConflict
			}
		}
	}
	if err != nil {
		return -1, fmt.Errorf("write webhooks: %w", err)
	}
	return -1, nil
}

func (s DynamoStore) CreateEndpoint(ctx context.Context, e Endpoint) error {
	t, found, err := s.tenant(ctx, e.Tenant)
	if err != nil {
		return err
	}
	if len(t.Endpoints) >= MaxPerTenant {
		return ErrTooMany
	}
	oldRev := ""
	if found {
		oldRev = t.Rev
	}
	t = tenantItem{EndpointID: tenantKey(e.Tenant), Endpoints: append(t.Endpoints, e.EndpointID), Rev: NewRev()}
	ti, err := store.Marshal(t)
	if err != nil {
		return err
	}
	ei, err := store.Marshal(e)
	if err != nil {
		return err
	}
	i, err := s.transact(ctx, []types.TransactWriteItem{{Put: revPut(s.Hooks, "endpoint_id", ei, "")},
		{Put: revPut(s.Hooks, "endpoint_id", ti, oldRev)}})
	switch {
	case errors.Is(err, ErrConflict) && i == 0:
		return ErrExists
	case errors.Is(err, ErrConflict):
		return ErrConflict // another create of the tenant at the same time: the caller retries
	}
	return err
}

func (s DynamoStore) PutEndpoint(ctx context.Context, e Endpoint, rev string) error {
	ei, err := store.Marshal(e)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{{Put: revPut(s.Hooks, "endpoint_id", ei, rev)}}
	if e.Status == StatusDeleted {
		t, found, err := s.tenant(ctx, e.Tenant)
		if err != nil {
			return err
		}
		if found && slices.Contains(t.Endpoints, e.EndpointID) {
			old := t.Rev
			t.Endpoints = slices.DeleteFunc(t.Endpoints, func(id string) bool { return id == e.EndpointID })
			t.Rev = NewRev()
			ti, err := store.Marshal(t)
			if err != nil {
				return err
			}
			items = append(items, types.TransactWriteItem{Put: revPut(s.Hooks, "endpoint_id", ti, old)})
		}
	}
	_, err = s.transact(ctx, items)
	return err
}

func (s DynamoStore) Endpoints(ctx context.Context, tenant string) ([]Endpoint, error) {
	var ids []string
	if tenant == "" {
		// Every tenant's (the console of unbound staff): the lists, then their endpoints.
		var start map[string]types.AttributeValue
		for {
			page, err := s.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.Hooks), ExclusiveStartKey: start})
			if err != nil {
				return nil, fmt.Errorf("scan %s: %w", s.Hooks, err)
			}
			var ts []tenantItem
			if err := store.UnmarshalList(page.Items, &ts); err != nil {
				return nil, err
			}
			for _, t := range ts {
				if len(t.EndpointID) > 7 && t.EndpointID[:7] == "tenant#" {
					ids = append(ids, t.Endpoints...)
				}
			}
			if start = page.LastEvaluatedKey; len(start) == 0 {
				break
			}
		}
	} else {
		t, _, err := s.tenant(ctx, tenant)
		if err != nil {
			return nil, err
		}
		ids = t.Endpoints
	}
	out := make([]Endpoint, 0, len(ids))
	for _, id := range ids {
		e, found, err := s.GetEndpoint(ctx, id)
		if err != nil {
			return nil, err
		}
		if found && e.Status != StatusDeleted {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, nil
}

// after reads up to limit items of a partition whose numeric sort key is above after.
func after(ctx context.Context, db store.DB, table, pk, pkValue string, from int64, limit int) ([]map[string]types.AttributeValue, error) {
	res, err := db.Query(ctx, &dynamodb.QueryInput{TableName: aws.String(table),
		KeyConditionExpression:   aws.String("#p = :p AND #s > :s"),
		ExpressionAttributeNames: map[string]string{"#p": pk, "#s": "pos"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(pkValue),
			":s": &types.AttributeValueMemberN{Value: strconv.FormatInt(from, 10)}},
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(int32(limit))})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", table, err)
	}
	return res.Items, nil
}

func (s DynamoStore) FeedEnd(ctx context.Context, tenant string) (int64, error) {
	var c struct {
		Last int64 `json:"last"`
	}
	_, err := store.Get(ctx, s.DB, s.FeedTable, map[string]types.AttributeValue{"tenant": store.S(tenant), "pos": &types.AttributeValueMemberN{Value: "0"}}, &c)
	return c.Last, err
}

func (s DynamoStore) Feed(ctx context.Context, tenant string, from int64, limit int) ([]events.FeedEntry, error) {
	items, err := after(ctx, s.DB, s.FeedTable, "tenant", tenant, from, limit)
	if err != nil {
		return nil, err
	}
	var out []events.FeedEntry
	return out, store.UnmarshalList(items, &out)
}

func (s DynamoStore) Ingest(ctx context.Context, e Endpoint, rev string, ds []Delivery) error {
	ei, err := store.Marshal(e)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{{Put: revPut(s.Hooks, "endpoint_id", ei, rev)}}
	for _, d := range ds {
		di, err := store.Marshal(d)
		if err != nil {
			return err
		}
		items = append(items, types.TransactWriteItem{Put: revPut(s.DeliveryTable, "endpoint_id", di, "")})
	}
	_, err = s.transact(ctx, items)
	return err
}

func (s DynamoStore) Deliveries(ctx context.Context, endpointID string, from int64, limit int) ([]Delivery, error) {
	items, err := after(ctx, s.DB, s.DeliveryTable, "endpoint_id", endpointID, from, limit)
	if err != nil {
		return nil, err
	}
	var out []Delivery
	return out, store.UnmarshalList(items, &out)
}

func (s DynamoStore) GetDelivery(ctx context.Context, endpointID string, pos int64) (Delivery, bool, error) {
	var d Delivery
	found, err := store.Get(ctx, s.DB, s.DeliveryTable, map[string]types.AttributeValue{"endpoint_id": store.S(endpointID),
		"pos": &types.AttributeValueMemberN{Value: strconv.FormatInt(pos, 10)}}, &d)
	return d, found, err
}

func (s DynamoStore) PutDelivery(ctx context.Context, d Delivery, rev string) error {
	di, err := store.Marshal(d)
	if err != nil {
		return err
	}
	_, err = s.transact(ctx, []types.TransactWriteItem{{Put: revPut(s.DeliveryTable, "endpoint_id", di, rev)}})
	return err
}

// MemoryStore is a Store in memory, with the same conditions (tests).
type MemoryStore struct {
	mu         sync.Mutex
	endpoints  map[string]Endpoint
	tenants    map[string][]string
	feed       map[string][]events.FeedEntry
	deliveries map[string]map[int64]Delivery
	// Fail, when set, is returned by every call (a store that is down).
	Fail error
}

// NewMemoryStore is an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{endpoints: map[string]Endpoint{}, tenants: map[string][]string{}, feed: map[string][]events.FeedEntry{},
		deliveries: map[string]map[int64]Delivery{}}
}

// Append adds entries to a tenant's feed at the next positions (as the relay would).
func (m *MemoryStore) Append(tenant string, evs ...events.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range evs {
		pos := int64(len(m.feed[tenant]) + 1)
		m.feed[tenant] = append(m.feed[tenant], events.FeedEntry{Event: ev, Tenant: tenant, Pos: pos, RelayedAt: time.Now()})
	}
}

func (m *MemoryStore) GetEndpoint(_ context.Context, id string) (Endpoint, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.endpoints[id]
	e.EventTypes = slices.Clone(e.EventTypes)
	return e, ok, m.Fail
}

func (m *MemoryStore) CreateEndpoint(_ context.Context, e Endpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if _, ok := m.endpoints[e.EndpointID]; ok {
		return ErrExists
	}
	if len(m.tenants[e.Tenant]) >= MaxPerTenant {
		return ErrTooMany
	}
	m.endpoints[e.EndpointID] = e
	m.tenants[e.Tenant] = append(m.tenants[e.Tenant], e.EndpointID)
	return nil
}

func (m *MemoryStore) PutEndpoint(_ context.Context, e Endpoint, rev string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if old, ok := m.endpoints[e.EndpointID]; !ok || old.Rev != rev {
		return ErrConflict
	}
	m.endpoints[e.EndpointID] = e
	if e.Status == StatusDeleted {
		m.tenants[e.Tenant] = slices.DeleteFunc(m.tenants[e.Tenant], func(id string) bool { return id == e.EndpointID })
	}
	return nil
}

func (m *MemoryStore) Endpoints(_ context.Context, tenant string) ([]Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Endpoint
	for t, ids := range m.tenants {
		if tenant != "" && t != tenant {
			continue
		}
		for _, id := range ids {
			out = append(out, m.endpoints[id])
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, m.Fail
}

func (m *MemoryStore) FeedEnd(_ context.Context, tenant string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.feed[tenant])), m.Fail
}

func (m *MemoryStore) Feed(_ context.Context, tenant string, from int64, limit int) ([]events.FeedEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.feed[tenant]
	if from >= int64(len(f)) {
		return nil, m.Fail
	}
	f = f[from:]
	if len(f) > limit {
		f = f[:limit]
	}
	return slices.Clone(f), m.Fail
}

func (m *MemoryStore) Ingest(_ context.Context, e Endpoint, rev string, ds []Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if old, ok := m.endpoints[e.EndpointID]; !ok || old.Rev != rev {
		return ErrConflict
	}
	for _, d := range ds {
		if _, ok := m.deliveries[d.EndpointID][d.Pos]; ok {
			return ErrConflict
		}
	}
	m.endpoints[e.EndpointID] = e
	for _, d := range ds {
		if m.deliveries[d.EndpointID] == nil {
			m.deliveries[d.EndpointID] = map[int64]Delivery{}
		}
		m.deliveries[d.EndpointID][d.Pos] = d
	}
	return nil
}

func (m *MemoryStore) Deliveries(_ context.Context, endpointID string, from int64, limit int) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Delivery
	for pos, d := range m.deliveries[endpointID] {
		if pos > from {
			d.Attempts = slices.Clone(d.Attempts)
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, m.Fail
}

func (m *MemoryStore) GetDelivery(_ context.Context, endpointID string, pos int64) (Delivery, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[endpointID][pos]
	d.Attempts = slices.Clone(d.Attempts)
	return d, ok, m.Fail
}

func (m *MemoryStore) PutDelivery(_ context.Context, d Delivery, rev string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if old, ok := m.deliveries[d.EndpointID][d.Pos]; !ok || old.Rev != rev {
		return ErrConflict
	}
	m.deliveries[d.EndpointID][d.Pos] = d
	return nil
}
