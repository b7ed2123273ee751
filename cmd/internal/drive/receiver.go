// Package drive holds what the demo and the benches drive the API with, as an integrator
// would: requests with a key, a small PDF to upload, and a webhook endpoint on loopback.
package drive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taxflow/taxflow/internal/events"
)

// Receiver is an integrator's webhook endpoint on loopback, for the demo and the bench: it
// verifies every delivery with the Standard Webhooks library's own verifier (not with our
// signing code), answers 200, and keeps what it got — each event once by its webhook-id,
// with the time of its first arrival and how often it came.
type Receiver struct {
	srv *http.Server
	url string

	mu       sync.Mutex
	verifier *standardwebhooks.Webhook
	got      map[string]*Received // by webhook-id
	order    []string             // webhook-ids in order of first arrival
	refused  int                  // deliveries whose signature did not verify
}

// Received is one event as the receiver got it.
type Received struct {
	Event      events.Event
	Type       string
	First      time.Time // the first arrival, when the receiver answered 200
	Deliveries int       // how many times it came (at least once: more is allowed)
}

// webhookPayload is a delivery's body (the Standard Webhooks envelope).
type webhookPayload struct {
	Type      string       `json:"type"`
	Timestamp time.Time    `json:"timestamp"`
	Data      events.Event `json:"data"`
}

// StartReceiver listens on a free loopback port.
func StartReceiver() (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &Receiver{url: "http://" + ln.Addr().String() + "/hooks/taxflow", got: map[string]*Received{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the endpoint to register.
func (r *Receiver) URL() string { return r.url }

// SetSecret is the signing secret the registration answered ("whsec_…").
func (r *Receiver) SetSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("webhook secret: %w", err)
	}
	r.mu.Lock()
	r.verifier = wh
	r.mu.Unlock()
	return nil
}

// Close stops listening.
func (r *Receiver) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verifier == nil || r.verifier.Verify(body, req.Header) != nil {
		r.refused++
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "payload", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if old, ok := r.got[id]; ok {
		old.Deliveries++
	} else {
		r.got[id] = &Received{Event: p.Data, Type: p.Type, First: time.Now(), Deliveries: 1}
		r.order = append(r.order, id)
	}
	w.WriteHeader(http.StatusOK)
}

// Events are the events received, each once, in order of first arrival.
func (r *Receiver) Events() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Received, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, *r.got[id])
	}
	return out
}

// Refused is how many deliveries did not verify.
func (r *Receiver) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// WaitFor waits until every case in ids has an event of a type in final, or the timeout.
func (r *Receiver) WaitFor(ctx context.Context, ids []string, final map[string]bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		done := map[string]bool{}
		for _, e := range r.Events() {
			if final[e.Type] {
				done[e.Event.CaseID] = true
			}
		}
		missing := 0
		for _, id := range ids {
			if !done[id] {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook receiver: %d of %d cases without a final event after %s", missing, len(ids), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Lags are, per event received, the time from its transition's commit to its first 200,
// sorted.
func (r *Receiver) Lags() []time.Duration {
	var out []time.Duration
	for _, e := range r.Events() {
		out = append(out, e.First.Sub(e.Event.OccurredAt))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// OrderKept tells whether every case's events arrived in the order of their sequence
// numbers (an error names the first case that did not, by id: no personal data).
func (r *Receiver) OrderKept() error {
	last := map[string]int64{}
	for _, e := range r.Events() {
		if e.Event.Seq <= last[e.Event.CaseID] {
			return errors.New("webhook receiver: case " + e.Event.CaseID + " got an event out of order")
		}
		last[e.Event.CaseID] = e.Event.Seq
	}
	return nil
}
