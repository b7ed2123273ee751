package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
)

// Notifier queues an operator notification (functions/notify's Handler).
type Notifier interface {
	Send(ctx context.Context, n contract.Notification) (contract.NotifyResult, error)
}

// Handler runs rounds of deliveries.
type Handler struct {
	Store  Store
	Sealer Sealer
	Notify Notifier
	// Client builds the HTTP client of a round (NewClient when nil).
	Client func(allowLoopback bool) *http.Client
	Now    func() time.Time
	// Rand draws the jitter of retries (seeded from the clock when nil). The randomness
	// lives here, in the function: a workflow never draws it.
	Rand *rand.Rand
	// PollEvery is how often a round idle in its long poll looks again (1 s when zero).
	PollEvery time.Duration
	// AllowLoopback lets sends reach loopback receivers: the function's own configuration
	// (TAXFLOW_WEBHOOK_ALLOW_LOOPBACK, set on the local stack only), never the round's input,
	// which whoever starts or resets the endpoint's workflow could write.
	AllowLoopback bool

	mu sync.Mutex
}

// Reading sizes: feed entries ingested per transaction (one item is the endpoint's),
// and deliveries a round looks at (oldest first: a case's earlier ones are always in).
const (
	ingestBatch = 99
	window      = 500
	maxPages    = 10
)

// TemplateDisabled is the operator notification of an endpoint disabled for failing.
const TemplateDisabled = "webhook_endpoint_disabled"

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) jitter(n int64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Rand == nil {
		h.Rand = rand.New(rand.NewSource(time.Now().UnixNano())) //nolint:gosec // jitter, not a secret
	}
	return h.Rand.Int63n(n)
}

// Backoff is the wait after the attempt-th failed attempt: full jitter (uniform in
// [0, ceiling]) under a ceiling that starts at the base and doubles up to the cap.
func Backoff(attempt int, p contract.WebhookPolicy, draw func(n int64) int64) time.Duration {
	ceiling := p.BackoffBase
	for i := 1; i < attempt && ceiling < p.BackoffCap; i++ {
		ceiling *= 2 // doubling stops at the cap: no overflow
	}
	ceiling = min(ceiling, p.BackoffCap)
	return time.Duration(draw(int64(ceiling) + 1))
}

// Round ingests the endpoint's new feed entries and sends what is due, for up to the
// policy's PollFor (a long poll: it waits for the feed while nothing is due).
func (h *Handler) Round(ctx context.Context, in contract.WebhookDeliverInput) (contract.WebhookDeliverResult, error) {
	p := Normalize(in.Policy)
	var res contract.WebhookDeliverResult
	if in.EndpointID == "" {
		return res, errors.New("endpoint_id: required")
	}
	newClient := h.Client
	if newClient == nil {
		newClient = NewClient
	}
	client := newClient(h.AllowLoopback)
	defer client.CloseIdleConnections()
	// The long poll is a budget of wall time (the business clock, Now, may be a test's).
	started := time.Now()
	poll := h.PollEvery
	if poll <= 0 {
		poll = time.Second
	}
	for {
		e, found, err := h.Store.GetEndpoint(ctx, in.EndpointID)
		if err != nil {
			return res, err
		}
		res.Status = e.Status
		if !found || e.Status == StatusDeleted {
			res.Status = StatusDeleted
			return res, nil
		}
		if e.Status == StatusDisabled {
			return res, nil
		}
		n, err := h.ingest(ctx, &e)
		if err != nil {
			return res, err
		}
		res.Ingested += n
		ds, err := h.Store.Deliveries(ctx, e.EndpointID, e.Floor, window)
		if err != nil {
			return res, err
		}
		if err := h.raiseFloor(ctx, e, ds); err != nil {
			return res, err
		}
		// A case stuck pending holds the floor: read on past final deliveries so the
		// later deliveries of other cases are not hidden behind it.
		for pages := 1; len(ds) >= window*pages && pages < maxPages; pages++ {
			more, err := h.Store.Deliveries(ctx, e.EndpointID, ds[len(ds)-1].Pos, window)
			if err != nil {
				return res, err
			}
			ds = append(ds, more...)
		}
		now := h.now()
		due, next := Due(ds, now)
		res.NextAttempt = next
		// A round sends a bounded number at once (the rest go in the next pass), so a
		// receiver that hangs costs at most a few timeouts per pass, not one per case.
		if n := p.Concurrency * 4; len(due) > n {
			due = due[:n]
		}
		if len(due) > 0 {
			if err := h.send(ctx, client, p, e, due, &res); err != nil {
				return res, err
			}
			if time.Since(started) >= p.PollFor {
				return res, nil
			}
			continue
		}
		left := p.PollFor - time.Since(started)
		if left <= 0 {
			return res, nil
		}
		now = h.now()
		wait := min(poll, left)
		if !next.IsZero() && next.Sub(now) < wait {
			wait = max(next.Sub(now), 0)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// Due picks the deliveries to send now: of each case, only its earliest pending one (a
// case's later event waits until the earlier is delivered or failed), and only when its
// next attempt has come. next is the earliest later attempt of such a head (zero: none).
func Due(ds []Delivery, now time.Time) (due []Delivery, next time.Time) {
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Status != Pending || seen[d.Event.CaseID] {
			continue
		}
		seen[d.Event.CaseID] = true
		if !d.NextAttemptAt.After(now) {
			due = append(due, d)
		} else if next.IsZero() || d.NextAttemptAt.Before(next) {
			next = d.NextAttemptAt
		}
	}
	return due, next
}

// ingest turns the feed entries after the cursor into deliveries, moving the cursor in
// the same transaction: an entry becomes a delivery once, whatever retries or rounds run
// at the same time (the cursor's revision and the delivery's key both refuse a second).
func (h *Handler) ingest(ctx context.Context, e *Endpoint) (int, error) {
	total := 0
	for range 10 {
		entries, err := h.Store.Feed(ctx, e.Tenant, e.Cursor, ingestBatch)
		if err != nil || len(entries) == 0 {
			return total, err
		}
		next := *e
		var ds []Delivery
		now := h.now()
		for _, fe := range entries {
			next.Cursor = fe.Pos
			// The feed is the tenant's own partition; the check keeps another tenant's event
			// out even if an entry were ever misfiled.
			if fe.Tenant == e.Tenant && e.Wants(fe.Type) {
				ds = append(ds, Delivery{EndpointID: e.EndpointID, Pos: fe.Pos, Event: fe.Event, Status: Pending, NextAttemptAt: now,
					CreatedAt: now, ExpiresAt: now.Add(events.Keep).Unix(), Rev: NewRev()})
			}
		}
		next.Rev = NewRev()
		err = h.Store.Ingest(ctx, next, e.Rev, ds)
		if errors.Is(err, ErrConflict) {
			// Another writer (a round, the API) moved first: read again next time.
			fresh, found, gerr := h.Store.GetEndpoint(ctx, e.EndpointID)
			if gerr != nil || !found {
				return total, gerr
			}
			*e = fresh
			continue
		}
		if err != nil {
			return total, err
		}
		*e = next
		total += len(ds)
		if len(entries) < ingestBatch {
			return total, nil
		}
	}
	return total, nil
}

// raiseFloor moves the endpoint's floor over the final deliveries at the start of the
// window, unless a delivery was retried since the window was read (Retries moved).
func (h *Handler) raiseFloor(ctx context.Context, e Endpoint, ds []Delivery) error {
	floor := e.Floor
	for _, d := range ds {
		if d.Status == Pending {
			break
		}
		floor = d.Pos
	}
	if floor == e.Floor {
		return nil
	}
	_, _, err := UpdateEndpoint(ctx, h.Store, e.EndpointID, func(x *Endpoint) bool {
		if x.Retries != e.Retries || floor <= x.Floor {
			return false
		}
		x.Floor = floor
		return true
	})
	return err
}

// signer signs with the endpoint's secret, and with the previous one while a rotation
// keeps it valid: the header then carries both signatures.
type signer struct{ hooks []*standardwebhooks.Webhook }

func (h *Handler) signer(e Endpoint, now time.Time) (signer, error) {
	var s signer
	sealed := []string{e.Secret}
	if e.OldSecret != "" && now.Unix() < e.OldSecretUntil {
		sealed = append(sealed, e.OldSecret)
	}
	for _, x := range sealed {
		secret, err := h.Sealer.Open(x)
		if err != nil {
			return s, fmt.Errorf("endpoint %s: %w", e.EndpointID, err)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return s, fmt.Errorf("endpoint %s: the stored secret is not a signing secret", e.EndpointID)
		}
		s.hooks = append(s.hooks, wh)
	}
	return s, nil
}

func (s signer) sign(id string, at time.Time, body []byte) (string, error) {
	var sigs []string
	for _, wh := range s.hooks {
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Body is what a receiver gets: the Standard Webhooks envelope around the event.
type Body struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      events.Event `json:"data"`
}

// send attempts the due deliveries, Concurrency at a time (each is the head of its case,
// so the order within a case holds), records each attempt, and judges the endpoint.
func (h *Handler) send(ctx context.Context, client *http.Client, p contract.WebhookPolicy, e Endpoint, due []Delivery, res *contract.WebhookDeliverResult) error {
	sg, err := h.signer(e, h.now())
	if err != nil {
		return err
	}
	var (
		mu                sync.Mutex
		wg                sync.WaitGroup
		firstErr          error
		succeeded, failed bool
		firstFail         time.Time
		sem               = make(chan struct{}, p.Concurrency)
		delivered, gaveUp int
		attempts          int
	)
	for _, d := range due {
		// Never start a send the invocation's deadline would cut: its attempt would go
		// unrecorded (sent again later, with the same webhook-id).
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < SendTimeout+5*time.Second {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(d Delivery) {
			defer func() { <-sem; wg.Done() }()
			a := h.attempt(ctx, client, sg, e, d)
			d2, err := h.record(ctx, p, d, a)
			mu.Lock()
			defer mu.Unlock()
			attempts++
			if err != nil && firstErr == nil {
				firstErr = err
			}
			switch a.Error {
			case "":
				succeeded = true
			default:
				failed = true
				if firstFail.IsZero() || a.At.Before(firstFail) {
					firstFail = a.At
				}
			}
			switch d2.Status {
			case Delivered:
				delivered++
			case Failed:
				gaveUp++
			}
		}(d)
	}
	wg.Wait()
	res.Attempts += attempts
	res.Delivered += delivered
	res.Failed += gaveUp
	if firstErr != nil {
		return firstErr
	}
	return h.judge(ctx, p, e.EndpointID, succeeded, failed, firstFail)
}

// attempt sends one delivery and classifies the outcome.
func (h *Handler) attempt(ctx context.Context, client *http.Client, sg signer, e Endpoint, d Delivery) Attempt {
	at := h.now()
	body, err := json.Marshal(Body{Type: d.Event.Type, Timestamp: d.Event.OccurredAt, Data: d.Event})
	if err != nil {
		return Attempt{At: at, Error: "encode"}
	}
	sig, err := sg.sign(d.Event.ID, at, body)
	if err != nil {
		return Attempt{At: at, Error: "sign"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return Attempt{At: at, Error: "url"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "taxflow-webhooks/1")
	req.Header.Set(standardwebhooks.HeaderWebhookID, d.Event.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	start := time.Now()
	resp, err := client.Do(req)
	a := Attempt{At: at}
	if err != nil {
		a.DurationMS = time.Since(start).Milliseconds()
		a.Error = classify(err)
		return a
	}
	// At most MaxBody bytes of the answer are read: a receiver cannot make us read more.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	_ = resp.Body.Close()
	a.DurationMS = time.Since(start).Milliseconds()
	a.Code = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.Error = "redirect" // never followed
	default:
		a.Error = "status"
	}
	return a
}

// classify names the kind of a transport failure (never its text, which may carry the URL).
func classify(err error) string {
	var ne net.Error
	var te *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrAddress):
		return "address"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &te), errors.As(err, &rh):
		return "tls"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "connect"
	}
	return "network"
}

// record writes an attempt's outcome: delivered, failed after GiveUpAfter from the
// first attempt, or pending until the next attempt (backoff with full jitter, never
// beyond the give-up time, where one last attempt is made).
func (h *Handler) record(ctx context.Context, p contract.WebhookPolicy, d Delivery, a Attempt) (Delivery, error) {
	old := d.Rev
	if d.FirstAttempt.IsZero() {
		d.FirstAttempt = a.At
	}
	d.Attempts = append(d.Attempts, a)
	giveUp := d.FirstAttempt.Add(p.GiveUpAfter)
	switch {
	case a.Error == "":
		d.Status = Delivered
		d.NextAttemptAt = time.Time{}
	case !a.At.Before(giveUp):
		d.Status = Failed
		d.NextAttemptAt = time.Time{}
	default:
		next := a.At.Add(Backoff(len(d.Attempts), p, h.jitter))
		if next.After(giveUp) {
			next = giveUp
		}
		d.NextAttemptAt = next
	}
	d.Rev = NewRev()
	if err := h.Store.PutDelivery(ctx, d, old); err != nil && !errors.Is(err, ErrConflict) {
		// A conflict: another round recorded this delivery first; its record stands.
		return d, err
	}
	return d, nil
}

// judge keeps the endpoint's failure streak: a success ends it; an endpoint whose every
// attempt failed for DisableAfter is disabled and its tenant's operators are told.
func (h *Handler) judge(ctx context.Context, p contract.WebhookPolicy, id string, succeeded, failed bool, firstFail time.Time) error {
	now := h.now()
	e, _, err := UpdateEndpoint(ctx, h.Store, id, func(x *Endpoint) bool {
		switch {
		case succeeded:
			changed := x.FailingSince != 0 || now.Unix()-x.LastSuccessAt >= 60
			x.FailingSince, x.LastSuccessAt = 0, now.Unix()
			return changed
		case failed && x.FailingSince == 0:
			x.FailingSince = firstFail.Unix()
			return true
		}
		return false
	})
	if err != nil || succeeded || e.FailingSince == 0 || e.Status != StatusEnabled {
		return err
	}
	since := time.Unix(e.FailingSince, 0)
	if now.Sub(since) < p.DisableAfter {
		return nil
	}
	// The notification first, under an id of this streak: a retried round writes it once.
	if h.Notify != nil {
		if _, err := h.Notify.Send(ctx, contract.Notification{NotificationID: fmt.Sprintf("webhook-disabled/%s/%d", id, e.FailingSince),
			CaseID: id, Recipient: "operator", Template: TemplateDisabled, At: now.UTC(),
			Params: map[string]string{"tenant": e.Tenant, "endpoint_id": id, "failing_since": since.UTC().Format(time.RFC3339)}}); err != nil {
			return fmt.Errorf("notify operators of a disabled endpoint: %w", err)
		}
	}
	_, _, err = UpdateEndpoint(ctx, h.Store, id, func(x *Endpoint) bool {
		if x.Status != StatusEnabled || x.FailingSince == 0 {
			return false
		}
		x.Status, x.DisabledAt = StatusDisabled, now.Unix()
		x.DisabledReason = fmt.Sprintf("every delivery attempt failed since %s", since.UTC().Format(time.RFC3339))
		return true
	})
	return err
}
