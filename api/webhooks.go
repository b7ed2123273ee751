package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/webhooks"
	"github.com/taxflow/taxflow/workflows"
)

// WebhookConfig is what the webhook routes need. A nil Store answers 503.
type WebhookConfig struct {
	Store  webhooks.Store
	Sealer webhooks.Sealer
	// Policy is what each endpoint's deliveries run under (its AllowLoopback also lets
	// http:// loopback receivers register: the local stack only).
	Policy contract.WebhookPolicy
	// Resolver resolves receivers' hosts at registration (net.DefaultResolver when nil).
	Resolver webhooks.Resolver
}

// WebhookPolicy turns the configuration into the policy of new endpoints.
func WebhookPolicy(c config.Webhook) contract.WebhookPolicy {
	p := contract.DefaultWebhookPolicy()
	p.BackoffBase, p.BackoffCap, p.GiveUpAfter, p.DisableAfter, p.Concurrency = c.BackoffBase, c.BackoffCap, c.GiveUpAfter, c.DisableAfter, c.Concurrency
	p.AllowLoopback = c.AllowLoopback
	return webhooks.Normalize(p)
}

// WebhookRequest registers an endpoint.
type WebhookRequest struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
}

// WebhookView is an endpoint as its tenant sees it. Secret is set only in the answer
// that made it (registration, rotation).
type WebhookView struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	EventTypes     []string `json:"event_types"`
	Status         string   `json:"status"`
	CreatedAt      string   `json:"created_at"`
	Secret         string   `json:"secret,omitempty"`
	FailingSince   string   `json:"failing_since,omitempty"`
	DisabledAt     string   `json:"disabled_at,omitempty"`
	DisabledReason string   `json:"disabled_reason,omitempty"`
	// PreviousSecretExpiresAt: after a rotation, until when the previous secret signs too.
	PreviousSecretExpiresAt string `json:"previous_secret_expires_at,omitempty"`
}

func unixRFC(t int64) string {
	if t == 0 {
		return ""
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

func webhookView(e webhooks.Endpoint) WebhookView {
	v := WebhookView{ID: e.EndpointID, URL: e.URL, EventTypes: e.EventTypes, Status: e.Status, CreatedAt: e.CreatedAt,
		FailingSince: unixRFC(e.FailingSince), DisabledAt: unixRFC(e.DisabledAt), DisabledReason: e.DisabledReason}
	if e.OldSecret != "" && e.OldSecretUntil > time.Now().Unix() {
		v.PreviousSecretExpiresAt = unixRFC(e.OldSecretUntil)
	}
	return v
}

var webhookIDRE = regexp.MustCompile(`^wh_[0-9a-f]{32}$`)

// webhookID is the endpoint a tenant's Idempotency-Key names: the same key makes the same
// endpoint, so a retried registration finds the first one.
func webhookID(tenant, key string) string {
	sum := sha256.Sum256([]byte("webhook\x00" + tenant + "\x00" + key))
	return "wh_" + hex.EncodeToString(sum[:16])
}

// RotationOverlap is how long a rotated-out secret keeps signing.
const RotationOverlap = 24 * time.Hour

func (s *Server) webhookStore() (webhooks.Store, error) {
	if s.Webhooks.Store == nil || s.Webhooks.Sealer == nil {
		return nil, refuse(http.StatusServiceUnavailable, "unavailable", "webhooks are not configured on this server")
	}
	return s.Webhooks.Store, nil
}

// checkWebhook judges a registration; nothing is stored before it passes.
func (s *Server) checkWebhook(ctx context.Context, req WebhookRequest) []domain.FieldError {
	resolver := s.Webhooks.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if why := webhooks.CheckURL(ctx, req.URL, s.Webhooks.Policy.AllowLoopback, resolver); why != "" {
		return []domain.FieldError{{Field: "url", Reason: why}}
	}
	return nil
}

// Validate is what can be said of a registration without the network or the policy: the
// URL's form, and the event types. Where the URL leads is checkWebhook's.
func (req WebhookRequest) Validate() []domain.FieldError {
	var errs []domain.FieldError
	if why := webhooks.CheckURLSyntax(req.URL); why != "" {
		errs = append(errs, domain.FieldError{Field: "url", Reason: why})
	}
	known := EventTypes()
	switch {
	case len(req.EventTypes) == 0:
		errs = append(errs, domain.FieldError{Field: "event_types", Reason: `at least one: "*" for every type, or types such as refund.paid`})
	case len(req.EventTypes) > len(known)+1:
		errs = append(errs, domain.FieldError{Field: "event_types", Reason: fmt.Sprintf("at most %d", len(known)+1)})
	default:
		seen := map[string]bool{}
		for i, t := range req.EventTypes {
			field := fmt.Sprintf("event_types[%d]", i)
			switch {
			case seen[t]:
				errs = append(errs, domain.FieldError{Field: field, Reason: "repeated"})
			case t != "*" && !slices.Contains(known, t):
				shown := t
				if len(shown) > 60 {
					shown = shown[:60] + "…"
				}
				errs = append(errs, domain.FieldError{Field: field, Reason: fmt.Sprintf("unknown event type %q: want \"*\" or one of the types listed in the API description (such as refund.paid)", shown)})
			}
			seen[t] = true
		}
	}
	return errs
}

func webhookRequestHash(req WebhookRequest) string {
	types := slices.Clone(req.EventTypes)
	sort.Strings(types)
	sum := sha256.Sum256([]byte(req.URL + "\x00" + strings.Join(types, "\x00")))
	return hex.EncodeToString(sum[:])
}

// createWebhook registers an endpoint and starts its deliveries' workflow. The
// Idempotency-Key is required as on every create; it names the endpoint (webhookID), so
// a retry with the same body answers the endpoint the first made (with its secret, for
// the 24 hours a key is kept), and one with another body 422. The generic middleware is
// not used: it would keep the answer, secret included, in clear text.
func (s *Server) createWebhook(c *call[WebhookRequest]) (reply, error) {
	req, p := c.Body, c.who()
	st, err := s.webhookStore()
	if err != nil {
		return reply{}, err
	}
	if err := invalidFields(s.checkWebhook(c.ctx(), req)); err != nil {
		return reply{}, err
	}
	id := webhookID(p.Tenant, c.r.Header.Get("Idempotency-Key"))
	hash := webhookRequestHash(req)
	secret, sealed, err := s.newSecret()
	if err != nil {
		return reply{}, err
	}
	now := time.Now().UTC()
	e := webhooks.Endpoint{EndpointID: id, Tenant: p.Tenant, URL: req.URL, EventTypes: req.EventTypes, Status: webhooks.StatusEnabled,
		CreatedAt: now.Format(time.RFC3339), CreatedBy: p.ID, Secret: sealed, RequestSHA256: hash, Rev: webhooks.NewRev()}
	// The new endpoint starts at the feed's end: it hears what happens from now on.
	if e.Cursor, err = st.FeedEnd(c.ctx(), p.Tenant); err != nil {
		return reply{}, unavailable("read the event feed", err)
	}
	replay := false
	for attempt := 0; ; attempt++ {
		err = st.CreateEndpoint(c.ctx(), e)
		if !errors.Is(err, webhooks.ErrConflict) || attempt == 3 {
			break
		}
	}
	switch {
	case errors.Is(err, webhooks.ErrTooMany):
		return reply{}, refuse(http.StatusBadRequest, "too_many_endpoints", fmt.Sprintf("a tenant has at most %d webhook endpoints: delete one first", webhooks.MaxPerTenant),
			domain.FieldError{Field: "url", Reason: fmt.Sprintf("this tenant has %d endpoints already, the limit", webhooks.MaxPerTenant)})
	case errors.Is(err, webhooks.ErrExists):
		old, found, gerr := st.GetEndpoint(c.ctx(), id)
		if gerr != nil || !found {
			return reply{}, unavailable("read webhook endpoint", fmt.Errorf("an endpoint of this key exists but cannot be read: %w", gerr))
		}
		created, _ := time.Parse(time.RFC3339, old.CreatedAt)
		if old.Tenant != p.Tenant || old.RequestSHA256 != hash || old.Status == webhooks.StatusDeleted || time.Since(created) > IdempotencyTTL {
			return reply{}, refuse(http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
				domain.FieldError{Field: "Idempotency-Key", Reason: "already names another endpoint registration: send a new key for a new endpoint"})
		}
		if old.OldSecret != "" || old.OldSecretUntil != 0 {
			// The secret this registration answered has been rotated: its answer is not
			// replayed, so a rotated secret is shown once, to the rotation's caller.
			return reply{}, refuse(http.StatusUnprocessableEntity, "idempotency_key_reused", "the endpoint this Idempotency-Key registered has a rotated secret: its answer is not replayed",
				domain.FieldError{Field: "Idempotency-Key", Reason: "its endpoint's secret was rotated since; read the endpoint with GET /v1/webhooks/{id}"})
		}
		if secret, err = s.Webhooks.Sealer.Open(old.Secret); err != nil {
			return reply{}, unavailable("open webhook secret", err)
		}
		e, replay = old, true
	case err != nil:
		return reply{}, unavailable("store webhook endpoint", err)
	}
	// Its owner makes the other routes' object rule (RuleCase) answer 404 to other
	// tenants; a retry writes it again if the first request died before.
	owner := caseOwner{CaseID: e.EndpointID, Tenant: p.Tenant, CreatedBy: p.ID, KeyID: p.KeyID, CreatedAt: now.Unix()}
	if _, err := store.PutNew(c.ctx(), s.DB, s.Owners, "case_id", owner); err != nil {
		return reply{}, unavailable("record webhook owner", err)
	}
	if err := s.startWebhook(c.ctx(), e.EndpointID); err != nil {
		return reply{}, unavailable("start webhook deliveries", err)
	}
	v := webhookView(e)
	v.Secret = secret
	if replay {
		c.w.Header().Set("Idempotent-Replayed", "true")
	}
	return createdReply("/v1/webhooks/"+e.EndpointID, v), nil
}

// startWebhook starts the endpoint's workflow once: a second start (a retried POST)
// finds the running one.
func (s *Server) startWebhook(ctx context.Context, endpointID string) error {
	if s.Temporal == nil {
		return errors.New("no Temporal client")
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WebhookID(endpointID), TaskQueue: s.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
		workflows.WebhookEndpoint, workflows.WebhookEndpointInput{EndpointID: endpointID, Policy: s.Webhooks.Policy})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// signalWebhook wakes (retry) or ends (stop) the endpoint's workflow; one that has ended
// needs neither.
func (s *Server) signalWebhook(ctx context.Context, endpointID, signal string) error {
	if s.Temporal == nil {
		return nil
	}
	err := s.Temporal.SignalWorkflow(ctx, workflows.WebhookID(endpointID), "", signal, nil)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// endpointOf reads the endpoint in {id} for its tenant; another tenant's or a deleted
// one answers 404 (RuleCase has judged the owner already; this is the same rule again
// on the item itself).
func (s *Server) endpointOf(r *http.Request) (webhooks.Store, webhooks.Endpoint, error) {
	st, err := s.webhookStore()
	if err != nil {
		return nil, webhooks.Endpoint{}, err
	}
	id := r.PathValue("id")
	if !webhookIDRE.MatchString(id) {
		return nil, webhooks.Endpoint{}, errNoEndpoint
	}
	e, found, err := st.GetEndpoint(r.Context(), id)
	if err != nil {
		return nil, e, unavailable("read webhook endpoint", err)
	}
	if o := actsFor(principal(r)); !found || e.Status == webhooks.StatusDeleted || (!o.all && e.Tenant != o.tenant) {
		return nil, e, errNoEndpoint
	}
	return st, e, nil
}

// newSecret makes an endpoint's signing secret: shown once, stored sealed.
func (s *Server) newSecret() (secret, sealed string, err error) {
	if secret, err = webhooks.NewSecret(); err != nil {
		return "", "", unavailable("make webhook secret", err)
	}
	if sealed, err = s.Webhooks.Sealer.Seal(secret); err != nil {
		return "", "", unavailable("seal webhook secret", err)
	}
	return secret, sealed, nil
}

// onEndpoint is the own code of a route on one endpoint, given the endpoint it names.
func onEndpoint(run func(*Server, *call[none], webhooks.Store, webhooks.Endpoint) (reply, error)) func(*Server, *call[none]) (reply, error) {
	return func(s *Server, c *call[none]) (reply, error) {
		st, e, err := s.endpointOf(c.r)
		if err != nil {
			return reply{}, err
		}
		return run(s, c, st, e)
	}
}

var errNoEndpoint = refuse(http.StatusNotFound, "not_found", "no such webhook endpoint")

// WebhookList is the answer of GET /v1/webhooks.
type WebhookList struct {
	Endpoints []WebhookView `json:"endpoints"`
	Limit     int           `json:"limit"`
}

func (s *Server) listWebhooks(c *call[none]) (reply, error) {
	st, err := s.webhookStore()
	if err != nil {
		return reply{}, err
	}
	es, err := st.Endpoints(c.ctx(), c.who().Tenant)
	if err != nil {
		return reply{}, unavailable("list webhook endpoints", err)
	}
	out := WebhookList{Endpoints: []WebhookView{}, Limit: webhooks.MaxPerTenant}
	for _, e := range es {
		out.Endpoints = append(out.Endpoints, webhookView(e))
	}
	return okReply(out), nil
}

func (s *Server) getWebhook(c *call[none], _ webhooks.Store, e webhooks.Endpoint) (reply, error) {
	return okReply(webhookView(e)), nil
}

// deleteWebhook ends an endpoint: no more deliveries; its workflow ends.
func (s *Server) deleteWebhook(c *call[none], st webhooks.Store, e webhooks.Endpoint) (reply, error) {
	if _, _, err := webhooks.UpdateEndpoint(c.ctx(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status == webhooks.StatusDeleted {
			return false
		}
		// The sealed secrets go with it: nothing signs for a deleted endpoint again.
		x.Status, x.Secret, x.OldSecret, x.OldSecretUntil = webhooks.StatusDeleted, "", "", 0
		return true
	}); err != nil {
		return reply{}, unavailable("delete webhook endpoint", err)
	}
	// The round sees the status and ends the workflow; the signal ends one waiting.
	if err := s.signalWebhook(c.ctx(), e.EndpointID, workflows.WebhookSignalStop); err != nil {
		s.Log.Warn().Err(err).Str("endpoint", e.EndpointID).Msg("stop signal not sent; the next round ends the workflow")
	}
	return reply{status: http.StatusNoContent}, nil
}

// rotateWebhookSecret makes a new secret (shown once); the previous one keeps signing,
// next to it, for RotationOverlap.
func (s *Server) rotateWebhookSecret(c *call[none], st webhooks.Store, e webhooks.Endpoint) (reply, error) {
	secret, sealed, err := s.newSecret()
	if err != nil {
		return reply{}, err
	}
	until := time.Now().Add(RotationOverlap).Unix()
	deleted := false
	e, _, err = webhooks.UpdateEndpoint(c.ctx(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status == webhooks.StatusDeleted { // deleted since it was read: nothing to rotate
			deleted = true
			return false
		}
		x.OldSecret, x.OldSecretUntil, x.Secret = x.Secret, until, sealed
		return true
	})
	if err != nil {
		return reply{}, unavailable("rotate webhook secret", err)
	}
	if deleted {
		return reply{}, errNoEndpoint
	}
	v := webhookView(e)
	v.Secret = secret
	return okReply(v), nil
}

// enableWebhook sends again to an endpoint disabled for failing: its pending deliveries
// go out at once, its failure streak starts over.
func (s *Server) enableWebhook(c *call[none], st webhooks.Store, e webhooks.Endpoint) (reply, error) {
	e, _, err := webhooks.UpdateEndpoint(c.ctx(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status != webhooks.StatusDisabled {
			return false
		}
		x.Status, x.FailingSince, x.DisabledAt, x.DisabledReason = webhooks.StatusEnabled, 0, 0, ""
		return true
	})
	if err != nil {
		return reply{}, unavailable("enable webhook endpoint", err)
	}
	if err := s.signalWebhook(c.ctx(), e.EndpointID, workflows.WebhookSignalRetry); err != nil {
		return reply{}, unavailable("wake webhook deliveries", err)
	}
	return okReply(webhookView(e)), nil
}

// DeliveryView is one delivery as its tenant sees it.
type DeliveryView struct {
	ID             string `json:"id"`
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	CaseID         string `json:"case_id"`
	Status         string `json:"status"`
	Attempts       int    `json:"attempts"`
	LastAttemptAt  string `json:"last_attempt_at,omitempty"`
	LastStatusCode int    `json:"last_response_code,omitempty"`
	LastDurationMS int64  `json:"last_duration_ms,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	NextAttemptAt  string `json:"next_attempt_at,omitempty"`
}

func deliveryView(d webhooks.Delivery) DeliveryView {
	v := DeliveryView{ID: d.ID(), EventID: d.Event.ID, Type: d.Event.Type, CaseID: d.Event.CaseID, Status: d.Status, Attempts: len(d.Attempts)}
	if last := d.Last(); !last.At.IsZero() {
		v.LastAttemptAt, v.LastStatusCode, v.LastDurationMS, v.LastError = last.At.UTC().Format(time.RFC3339), last.Code, last.DurationMS, last.Error
	}
	if d.Status == webhooks.Pending && !d.NextAttemptAt.IsZero() {
		v.NextAttemptAt = d.NextAttemptAt.UTC().Format(time.RFC3339)
	}
	return v
}

// DeliveryPage is the answer of GET /v1/webhooks/{id}/deliveries.
type DeliveryPage struct {
	Deliveries []DeliveryView `json:"deliveries"`
	Next       string         `json:"next,omitempty"`
}

const (
	deliveriesDefaultLimit = 50
	deliveriesMaxLimit     = 200
)

func deliveryCursor(pos int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("d:" + strconv.FormatInt(pos, 10)))
}

func parseDeliveryCursor(c string) (int64, bool) {
	if c == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "d:"), 10, 64)
	return n, err == nil && strings.HasPrefix(string(b), "d:") && n >= 0
}

// listDeliveries pages through an endpoint's deliveries in feed order.
func (s *Server) listDeliveries(c *call[none], st webhooks.Store, e webhooks.Endpoint) (reply, error) {
	q := c.r.URL.Query()
	var errs []domain.FieldError
	limit := deliveriesDefaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > deliveriesMaxLimit {
			errs = append(errs, domain.FieldError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", deliveriesMaxLimit)})
		}
		limit = n
	}
	after, ok := parseDeliveryCursor(q.Get("cursor"))
	if !ok {
		errs = append(errs, domain.FieldError{Field: "cursor", Reason: "not a cursor this list gave"})
	}
	if len(errs) > 0 {
		return reply{}, refuse(http.StatusBadRequest, "invalid_request", "some parameters are invalid", errs...)
	}
	ds, err := st.Deliveries(c.ctx(), e.EndpointID, after, limit+1)
	if err != nil {
		return reply{}, unavailable("list deliveries", err)
	}
	page := DeliveryPage{Deliveries: []DeliveryView{}}
	if len(ds) > limit {
		ds = ds[:limit]
		page.Next = deliveryCursor(ds[limit-1].Pos)
	}
	for _, d := range ds {
		page.Deliveries = append(page.Deliveries, deliveryView(d))
	}
	return okReply(page), nil
}

// retryDelivery puts a failed delivery back to pending, due now, with a new 72-hour
// window; a pending or delivered one is 409.
func (s *Server) retryDelivery(c *call[none], st webhooks.Store, e webhooks.Endpoint) (reply, error) {
	noDelivery := refuse(http.StatusNotFound, "not_found", "no such delivery")
	pos, err := strconv.ParseInt(c.r.PathValue("delivery"), 10, 64)
	if err != nil || pos < 1 {
		return reply{}, noDelivery
	}
	d, found, err := st.GetDelivery(c.ctx(), e.EndpointID, pos)
	if err != nil {
		return reply{}, unavailable("read delivery", err)
	}
	if !found {
		return reply{}, noDelivery
	}
	if d.Status != webhooks.Failed {
		return reply{}, &refusal{Problem{Status: http.StatusConflict, Code: "not_failed", CurrentStatus: d.Status,
			Detail: "only a failed delivery is retried; this one is " + d.Status}}
	}
	old := d.Rev
	d.Status, d.NextAttemptAt, d.FirstAttempt, d.Rev = webhooks.Pending, time.Now().UTC(), time.Time{}, webhooks.NewRev()
	if err := st.PutDelivery(c.ctx(), d, old); errors.Is(err, webhooks.ErrConflict) {
		return reply{}, refuse(http.StatusConflict, "conflict", "the delivery changed meanwhile; read it again")
	} else if err != nil {
		return reply{}, unavailable("retry delivery", err)
	}
	// The delivery may lie below the endpoint's floor (where every delivery was final):
	// lower it, and count the retry, so a round that read its window before does not
	// raise the floor over it again.
	if _, _, err := webhooks.UpdateEndpoint(c.ctx(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		x.Retries++
		x.Floor = min(x.Floor, pos-1)
		return true
	}); err != nil {
		return reply{}, unavailable("retry delivery", err)
	}
	if err := s.signalWebhook(c.ctx(), e.EndpointID, workflows.WebhookSignalRetry); err != nil {
		s.Log.Warn().Err(err).Str("endpoint", e.EndpointID).Msg("retry signal not sent; the next round sends it")
	}
	return acceptedReply(deliveryView(d)), nil
}
