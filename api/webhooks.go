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

func (s *Server) webhookStore(w http.ResponseWriter) (webhooks.Store, bool) {
	if s.Webhooks.Store == nil || s.Webhooks.Sealer == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "webhooks are not configured on this server", nil)
		return nil, false
	}
	return s.Webhooks.Store, true
}

// checkWebhook judges a registration; nothing is stored before it passes.
func (s *Server) checkWebhook(ctx context.Context, req WebhookRequest) []domain.FieldError {
	var errs []domain.FieldError
	resolver := s.Webhooks.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if why := webhooks.CheckURL(ctx, req.URL, s.Webhooks.Policy.AllowLoopback, resolver); why != "" {
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
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 200 {
		writeError(w, http.StatusBadRequest, "idempotency_key_required", "send an Idempotency-Key header (1-200 characters) so a retried request registers one endpoint", nil)
		return
	}
	var req WebhookRequest
	if !decodeBody(w, r, &req) {
		return
	}
	st, ok := s.webhookStore(w)
	if !ok {
		return
	}
	if errs := s.checkWebhook(r.Context(), req); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	p := principal(r)
	id := webhookID(p.Tenant, key)
	hash := webhookRequestHash(req)
	secret, err := webhooks.NewSecret()
	if err != nil {
		s.internal(w, "make webhook secret", err)
		return
	}
	sealed, err := s.Webhooks.Sealer.Seal(secret)
	if err != nil {
		s.internal(w, "seal webhook secret", err)
		return
	}
	now := time.Now().UTC()
	e := webhooks.Endpoint{EndpointID: id, Tenant: p.Tenant, URL: req.URL, EventTypes: req.EventTypes, Status: webhooks.StatusEnabled,
		CreatedAt: now.Format(time.RFC3339), CreatedBy: p.ID, Secret: sealed, RequestSHA256: hash, Rev: webhooks.NewRev()}
	// The new endpoint starts at the feed's end: it hears what happens from now on.
	if e.Cursor, err = st.FeedEnd(r.Context(), p.Tenant); err != nil {
		s.internal(w, "read the event feed", err)
		return
	}
	replay := false
	for attempt := 0; ; attempt++ {
		err = st.CreateEndpoint(r.Context(), e)
		if !errors.Is(err, webhooks.ErrConflict) || attempt == 3 {
			break
		}
	}
	switch {
	case errors.Is(err, webhooks.ErrTooMany):
		writeError(w, http.StatusBadRequest, "too_many_endpoints", fmt.Sprintf("a tenant has at most %d webhook endpoints: delete one first", webhooks.MaxPerTenant),
			[]domain.FieldError{{Field: "url", Reason: fmt.Sprintf("this tenant has %d endpoints already, the limit", webhooks.MaxPerTenant)}})
		return
	case errors.Is(err, webhooks.ErrExists):
		old, found, gerr := st.GetEndpoint(r.Context(), id)
		if gerr != nil || !found {
			s.internal(w, "read webhook endpoint", fmt.Errorf("an endpoint of this key exists but cannot be read: %w", gerr))
			return
		}
		created, _ := time.Parse(time.RFC3339, old.CreatedAt)
		if old.Tenant != p.Tenant || old.RequestSHA256 != hash || old.Status == webhooks.StatusDeleted || time.Since(created) > IdempotencyTTL {
			writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
				[]domain.FieldError{{Field: "Idempotency-Key", Reason: "already names another endpoint registration: send a new key for a new endpoint"}})
			return
		}
		if old.OldSecret != "" || old.OldSecretUntil != 0 {
			// The secret this registration answered has been rotated: its answer is not
			// replayed, so a rotated secret is shown once, to the rotation's caller.
			writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "the endpoint this Idempotency-Key registered has a rotated secret: its answer is not replayed",
				[]domain.FieldError{{Field: "Idempotency-Key", Reason: "its endpoint's secret was rotated since; read the endpoint with GET /v1/webhooks/{id}"}})
			return
		}
		if secret, err = s.Webhooks.Sealer.Open(old.Secret); err != nil {
			s.internal(w, "open webhook secret", err)
			return
		}
		e, replay = old, true
	case err != nil:
		s.internal(w, "store webhook endpoint", err)
		return
	}
	// Its owner makes the other routes' object rule (RuleCase) answer 404 to other
	// tenants; a retry writes it again if the first request died before.
	owner := caseOwner{CaseID: e.EndpointID, Tenant: p.Tenant, CreatedBy: p.ID, KeyID: p.KeyID, CreatedAt: now.Unix()}
	if _, err := store.PutNew(r.Context(), s.DB, s.Owners, "case_id", owner); err != nil {
		s.internal(w, "record webhook owner", err)
		return
	}
	if err := s.startWebhook(r.Context(), e.EndpointID); err != nil {
		s.internal(w, "start webhook deliveries", err)
		return
	}
	v := webhookView(e)
	v.Secret = secret
	w.Header().Set("Location", "/v1/webhooks/"+e.EndpointID)
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	WriteJSON(w, http.StatusCreated, v)
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
func (s *Server) endpointOf(w http.ResponseWriter, r *http.Request) (webhooks.Store, webhooks.Endpoint, bool) {
	st, ok := s.webhookStore(w)
	if !ok {
		return nil, webhooks.Endpoint{}, false
	}
	id := r.PathValue("id")
	if !webhookIDRE.MatchString(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such webhook endpoint", nil)
		return nil, webhooks.Endpoint{}, false
	}
	e, found, err := st.GetEndpoint(r.Context(), id)
	if err != nil {
		s.internal(w, "read webhook endpoint", err)
		return nil, e, false
	}
	if o := actsFor(principal(r)); !found || e.Status == webhooks.StatusDeleted || (!o.all && e.Tenant != o.tenant) {
		writeError(w, http.StatusNotFound, "not_found", "no such webhook endpoint", nil)
		return nil, e, false
	}
	return st, e, true
}

// WebhookList is the answer of GET /v1/webhooks.
type WebhookList struct {
	Endpoints []WebhookView `json:"endpoints"`
	Limit     int           `json:"limit"`
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	st, ok := s.webhookStore(w)
	if !ok {
		return
	}
	es, err := st.Endpoints(r.Context(), principal(r).Tenant)
	if err != nil {
		s.internal(w, "list webhook endpoints", err)
		return
	}
	out := WebhookList{Endpoints: []WebhookView{}, Limit: webhooks.MaxPerTenant}
	for _, e := range es {
		out.Endpoints = append(out.Endpoints, webhookView(e))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	if _, e, ok := s.endpointOf(w, r); ok {
		WriteJSON(w, http.StatusOK, webhookView(e))
	}
}

// deleteWebhook ends an endpoint: no more deliveries; its workflow ends.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	st, e, ok := s.endpointOf(w, r)
	if !ok {
		return
	}
	if _, _, err := webhooks.UpdateEndpoint(r.Context(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status == webhooks.StatusDeleted {
			return false
		}
		// The sealed secrets go with it: nothing signs for a deleted endpoint again.
		x.Status, x.Secret, x.OldSecret, x.OldSecretUntil = webhooks.StatusDeleted, "", "", 0
		return true
	}); err != nil {
		s.internal(w, "delete webhook endpoint", err)
		return
	}
	// The round sees the status and ends the workflow; the signal ends one waiting.
	if err := s.signalWebhook(r.Context(), e.EndpointID, workflows.WebhookSignalStop); err != nil {
		s.Log.Warn().Err(err).Str("endpoint", e.EndpointID).Msg("stop signal not sent; the next round ends the workflow")
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateWebhookSecret makes a new secret (shown once); the previous one keeps signing,
// next to it, for RotationOverlap.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	st, e, ok := s.endpointOf(w, r)
	if !ok {
		return
	}
	secret, err := webhooks.NewSecret()
	if err != nil {
		s.internal(w, "make webhook secret", err)
		return
	}
	sealed, err := s.Webhooks.Sealer.Seal(secret)
	if err != nil {
		s.internal(w, "seal webhook secret", err)
		return
	}
	until := time.Now().Add(RotationOverlap).Unix()
	deleted := false
	e, _, err = webhooks.UpdateEndpoint(r.Context(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status == webhooks.StatusDeleted { // deleted since it was read: nothing to rotate
			deleted = true
			return false
		}
		x.OldSecret, x.OldSecretUntil, x.Secret = x.Secret, until, sealed
		return true
	})
	if err != nil {
		s.internal(w, "rotate webhook secret", err)
		return
	}
	if deleted {
		writeError(w, http.StatusNotFound, "not_found", "no such webhook endpoint", nil)
		return
	}
	v := webhookView(e)
	v.Secret = secret
	WriteJSON(w, http.StatusOK, v)
}

// enableWebhook sends again to an endpoint disabled for failing: its pending deliveries
// go out at once, its failure streak starts over.
func (s *Server) enableWebhook(w http.ResponseWriter, r *http.Request) {
	st, e, ok := s.endpointOf(w, r)
	if !ok {
		return
	}
	e, _, err := webhooks.UpdateEndpoint(r.Context(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		if x.Status != webhooks.StatusDisabled {
			return false
		}
		x.Status, x.FailingSince, x.DisabledAt, x.DisabledReason = webhooks.StatusEnabled, 0, 0, ""
		return true
	})
	if err != nil {
		s.internal(w, "enable webhook endpoint", err)
		return
	}
	if err := s.signalWebhook(r.Context(), e.EndpointID, workflows.WebhookSignalRetry); err != nil {
		s.internal(w, "wake webhook deliveries", err)
		return
	}
	WriteJSON(w, http.StatusOK, webhookView(e))
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
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	st, e, ok := s.endpointOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
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
		writeError(w, http.StatusBadRequest, "invalid_request", "some parameters are invalid", errs)
		return
	}
	ds, err := st.Deliveries(r.Context(), e.EndpointID, after, limit+1)
	if err != nil {
		s.internal(w, "list deliveries", err)
		return
	}
	page := DeliveryPage{Deliveries: []DeliveryView{}}
	if len(ds) > limit {
		ds = ds[:limit]
		page.Next = deliveryCursor(ds[limit-1].Pos)
	}
	for _, d := range ds {
		page.Deliveries = append(page.Deliveries, deliveryView(d))
	}
	WriteJSON(w, http.StatusOK, page)
}

// retryDelivery puts a failed delivery back to pending, due now, with a new 72-hour
// window; a pending or delivered one is 409.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request) {
	st, e, ok := s.endpointOf(w, r)
	if !ok {
		return
	}
	pos, err := strconv.ParseInt(r.PathValue("delivery"), 10, 64)
	if err != nil || pos < 1 {
		writeError(w, http.StatusNotFound, "not_found", "no such delivery", nil)
		return
	}
	d, found, err := st.GetDelivery(r.Context(), e.EndpointID, pos)
	if err != nil {
		s.internal(w, "read delivery", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "no such delivery", nil)
		return
	}
	if d.Status != webhooks.Failed {
		writeProblem(w, Problem{Status: http.StatusConflict, Code: "not_failed", CurrentStatus: d.Status,
			Detail: "only a failed delivery is retried; this one is " + d.Status})
		return
	}
	old := d.Rev
	d.Status, d.NextAttemptAt, d.FirstAttempt, d.Rev = webhooks.Pending, time.Now().UTC(), time.Time{}, webhooks.NewRev()
	if err := st.PutDelivery(r.Context(), d, old); errors.Is(err, webhooks.ErrConflict) {
		writeError(w, http.StatusConflict, "conflict", "the delivery changed meanwhile; read it again", nil)
		return
	} else if err != nil {
		s.internal(w, "retry delivery", err)
		return
	}
	// The delivery may lie below the endpoint's floor (where every delivery was final):
	// lower it, and count the retry, so a round that read its window before does not
	// raise the floor over it again.
	if _, _, err := webhooks.UpdateEndpoint(r.Context(), st, e.EndpointID, func(x *webhooks.Endpoint) bool {
		x.Retries++
		x.Floor = min(x.Floor, pos-1)
		return true
	}); err != nil {
		s.internal(w, "retry delivery", err)
		return
	}
	if err := s.signalWebhook(r.Context(), e.EndpointID, workflows.WebhookSignalRetry); err != nil {
		s.Log.Warn().Err(err).Str("endpoint", e.EndpointID).Msg("retry signal not sent; the next round sends it")
	}
	WriteJSON(w, http.StatusAccepted, deliveryView(d))
}
