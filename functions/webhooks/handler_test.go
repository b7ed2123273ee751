package webhooks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/seal"
)

func testSealer(t *testing.T) Sealer {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return KeySealer{S: c}
}

func TestAddressAllowed(t *testing.T) {
	for addr, want := range map[string]bool{
		"10.1.2.3": false, "127.0.0.1": false, "127.8.8.8": false, "169.254.169.254": false, "::1": false, "fd00::1": false,
		"fd12:3456::1": false, "192.168.1.1": false, "172.16.0.1": false, "100.64.0.1": false, "0.0.0.0": false, "::": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "fe80::1": false, "224.0.0.1": false, "ff02::1": false,
		"8.8.8.8": true, "93.184.216.34": true, "2a00:1450:4001::1": true,
	} {
		if got := AddressAllowed(netip.MustParseAddr(addr), false); got != want {
			t.Errorf("%s: allowed %v, want %v", addr, got, want)
		}
	}
	// The local stack lets loopback through, and nothing else of the blocked ranges.
	if !AddressAllowed(netip.MustParseAddr("127.0.0.1"), true) || !AddressAllowed(netip.MustParseAddr("::1"), true) {
		t.Error("local stack: loopback refused")
	}
	if AddressAllowed(netip.MustParseAddr("10.0.0.1"), true) || AddressAllowed(netip.MustParseAddr("169.254.169.254"), true) {
		t.Error("local stack: a private or link-local address allowed")
	}
}

// fakeResolver answers fixed addresses per name.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range f[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

func TestCheckURL(t *testing.T) {
	r := fakeResolver{"hooks.example.com": {"93.184.216.34"}, "internal.example.com": {"10.0.0.7"}, "rebind.example.com": {"93.184.216.34", "127.0.0.1"},
		"localhost": {"127.0.0.1", "::1"}, "meta.example.com": {"169.254.169.254"}}
	for _, c := range []struct {
		url      string
		loopback bool
		want     string // "" allowed, else a part of the reason
	}{
		{"https://hooks.example.com/taxflow", false, ""},
		{"https://hooks.example.com:8443/x?y=1", false, ""},
		{"", false, "required"},
		{"hooks.example.com/x", false, "absolute"},
		{"/relative", false, "absolute"},
		{"https://", false, "absolute"},
		{"ftp://hooks.example.com/", false, "https"},
		{"http://hooks.example.com/", false, "https"},
		{"http://hooks.example.com/", true, "https"}, // http only to loopback, even locally
		{"https://user:pw@hooks.example.com/", false, "user information"},
		{"https://hooks.example.com/#frag", false, "fragment"},
		{"https://internal.example.com/", false, "does not resolve to a public address"},
		{"https://rebind.example.com/", false, "does not resolve to a public address"}, // one address of many is enough
		{"https://meta.example.com/", false, "does not resolve to a public address"},
		{"https://169.254.169.254/latest/meta-data", false, "private"},
		{"https://10.1.2.3/", false, "private"},
		{"https://[::1]/", false, "private"},
		{"https://[fd00::1]/", false, "private"},
		{"https://localhost/", false, "does not resolve to a public address"},
		{"http://127.0.0.1:9999/hook", false, "https"},
		{"http://127.0.0.1:9999/hook", true, ""},
		{"http://localhost:9999/hook", true, ""},
		{"https://nowhere.example.com/", false, "does not resolve to a public address"}, // the same answer: no probing of internal names
		{"https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", false, "private"},           // Teredo
		{"https://[2001:2::1]/", false, "private"},                                      // benchmarking
		{"https://" + strings.Repeat("a", 2100) + ".com/", false, "at most"},
	} {
		got := CheckURL(context.Background(), c.url, c.loopback, r)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%q (loopback %v): %q, want %q", c.url, c.loopback, got, c.want)
		}
	}
}

// The dialer judges the address it connects to, whatever a name resolved to when the
// endpoint was registered: loopback by IP and by a name (DNS rebinding) is refused.
func TestClientRefusesPrivateAddressesAtConnect(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, u := range []string{srv.URL, "http://localhost:" + port, "http://[::1]:" + port} {
		_, err := NewClient(false).Get(u)
		if !errors.Is(err, ErrAddress) || classify(err) != "address" {
			t.Errorf("%s: %v (class %s), want the address refused", u, err, classify(err))
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver was reached %d times", hits.Load())
	}
	if res, err := NewClient(true).Get(srv.URL); err != nil || res.StatusCode != 200 {
		t.Fatalf("local stack: %v", err)
	}
}

// env is an endpoint in a memory store with a receiver.
type env struct {
	st     *MemoryStore
	h      *Handler
	e      Endpoint
	secret string
	clock  *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func policy() contract.WebhookPolicy {
	p := contract.DefaultWebhookPolicy()
	p.PollFor, p.AllowLoopback = time.Millisecond, true
	return p
}
func ev(caseID string, seq int64) events.Event {
	return events.Event{ID: events.ID(caseID, seq), Type: "refund.in_review", CaseID: caseID, Process: "refund", Status: "in_review", Seq: seq,
		OccurredAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Minute)}
}

func newEnv(t *testing.T, url string, types ...string) *env {
	t.Helper()
	if len(types) == 0 {
		types = []string{"*"}
	}
	sealer := testSealer(t)
	secret, _ := NewSecret()
	sealed, err := sealer.Seal(secret)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	e := Endpoint{EndpointID: "wh_test", Tenant: "alpha", URL: url, EventTypes: types, Status: StatusEnabled, Secret: sealed, Rev: NewRev()}
	st := NewMemoryStore()
	if err := st.CreateEndpoint(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	n := &notes{}
	return &env{st: st, e: e, secret: secret, clock: c,
		h: &Handler{Store: st, Sealer: sealer, Notify: n, Now: c.now, Rand: mrand.New(mrand.NewSource(1)), PollEvery: time.Millisecond, AllowLoopback: true}}
}

type notes struct {
	mu  sync.Mutex
	got []contract.Notification
}

func (n *notes) Send(_ context.Context, x contract.Notification) (contract.NotifyResult, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range n.got {
		if o.NotificationID == x.NotificationID {
			return contract.NotifyResult{Duplicate: true}, nil
		}
	}
	n.got = append(n.got, x)
	return contract.NotifyResult{}, nil
}

func (v *env) round(t *testing.T, p contract.WebhookPolicy) contract.WebhookDeliverResult {
	t.Helper()
	res, err := v.h.Round(context.Background(), contract.WebhookDeliverInput{EndpointID: v.e.EndpointID, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (v *env) deliveries(t *testing.T) []Delivery {
	t.Helper()
	ds, err := v.st.Deliveries(context.Background(), v.e.EndpointID, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// A receiver verifies with the library's own verifier; the webhook-id is the event id.
func TestDeliverySignedAndVerifiedByTheLibrary(t *testing.T) {
	var got []string
	var mu sync.Mutex
	var v *env
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		wh, _ := standardwebhooks.NewWebhook(v.secret)
		if err := wh.VerifyIgnoringTimestamp(body, r.Header); err != nil {
			t.Errorf("verify: %v", err)
		}
		mu.Lock()
		got = append(got, r.Header.Get("webhook-id"))
		mu.Unlock()
	}))
	defer srv.Close()
	v = newEnv(t, srv.URL)
	v.st.Append("alpha", ev("refund-a", 1), ev("refund-a", 2))
	v.st.Append("beta", ev("refund-b", 1)) // another tenant's: never sent here
	res := v.round(t, policy())
	res2 := v.round(t, policy()) // one send a round at this poll: the case's second waits for its first
	if res.Ingested != 2 || res.Delivered+res2.Delivered != 2 {
		t.Fatalf("rounds: %+v %+v", res, res2)
	}
	if strings.Join(got, ",") != "refund-a/1,refund-a/2" {
		t.Fatalf("received %v", got)
	}
}

// An endpoint takes only the types it asked for; a feed entry becomes a delivery once,
// however many rounds run at the same time.
func TestIngestOncePerEntryAndOnlyWantedTypes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	v := newEnv(t, srv.URL, "refund.paid")
	for i := int64(1); i <= 150; i++ {
		e := ev(fmt.Sprintf("refund-%d", i%7), i)
		if i%3 == 0 {
			e.Type = "refund.paid"
		}
		v.st.Append("alpha", e)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); v.round(t, policy()) }()
	}
	wg.Wait()
	ds := v.deliveries(t)
	if len(ds) != 50 {
		t.Fatalf("%d deliveries, want 50", len(ds))
	}
	for _, d := range ds {
		if d.Event.Type != "refund.paid" {
			t.Fatalf("delivery of %s", d.Event.Type)
		}
	}
	e, _, _ := v.st.GetEndpoint(context.Background(), v.e.EndpointID)
	if e.Cursor != 150 {
		t.Fatalf("cursor %d, want 150", e.Cursor)
	}
}

// A 3xx is a failed attempt: the location is never visited.
func TestRedirectIsNotFollowed(t *testing.T) {
	var visited atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { visited.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	v.st.Append("alpha", ev("refund-a", 1))
	v.round(t, policy())
	d := v.deliveries(t)[0]
	if d.Status != Pending || d.Last().Code != 307 || d.Last().Error != "redirect" || visited.Load() != 0 {
		t.Fatalf("delivery %+v, target visited %d", d, visited.Load())
	}
}

// countingBody counts what the client reads of an answer.
type countingTransport struct {
	rt   http.RoundTripper
	read *atomic.Int64
}

type countingBody struct {
	io.ReadCloser
	read *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := c.rt.RoundTrip(r)
	if err == nil {
		res.Body = countingBody{res.Body, c.read}
	}
	return res, err
}

func TestAnswerReadAtMost64KiB(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 160 { // 10 MB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	v := newEnv(t, srv.URL)
	v.h.Client = func(allow bool) *http.Client {
		c := NewClient(allow)
		c.Transport = countingTransport{c.Transport, &read}
		return c
	}
	v.st.Append("alpha", ev("refund-a", 1))
	res := v.round(t, policy())
	if res.Delivered != 1 || read.Load() > MaxBody {
		t.Fatalf("round %+v; read %d bytes of a 10 MB answer, want at most %d", res, read.Load(), MaxBody)
	}
}

// The backoff is bounded by its ceiling, jittered, and the same for the same seed.
func TestBackoffBoundedJitteredReproducible(t *testing.T) {
	p := contract.DefaultWebhookPolicy()
	draw := func(seed int64) func(int64) int64 { r := mrand.New(mrand.NewSource(seed)); return r.Int63n }
	a, b := draw(7), draw(7)
	distinct := map[time.Duration]bool{}
	for n := 1; n <= 60; n++ {
		ceiling := p.BackoffCap
		if n <= 10 { // 5 s · 2^9 = 42 min < 1 h
			ceiling = p.BackoffBase << (n - 1)
		}
		x, y := Backoff(n, p, a), Backoff(n, p, b)
		if x != y {
			t.Fatalf("attempt %d: %v and %v from the same seed", n, x, y)
		}
		if x < 0 || x > ceiling {
			t.Fatalf("attempt %d: %v outside [0, %v]", n, x, ceiling)
		}
		distinct[x] = true
	}
	if len(distinct) < 50 {
		t.Fatalf("only %d distinct waits in 60: not jittered", len(distinct))
	}
}

// A receiver that always fails: attempts follow the backoff until 72 h after the first,
// one last attempt at that time, then the delivery is failed; nothing after.
func TestRetriesStopAt72Hours(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.WriteHeader(500) }))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	p := policy()
	p.DisableAfter = 1000 * time.Hour // this test is about the delivery, not the endpoint
	v.st.Append("alpha", ev("refund-a", 1))
	var d Delivery
	for i := 0; i < 1000; i++ {
		v.round(t, p)
		d = v.deliveries(t)[0]
		if d.Status != Pending {
			break
		}
		if d.NextAttemptAt.After(d.FirstAttempt.Add(72 * time.Hour)) {
			t.Fatalf("next attempt %v after the give-up time", d.NextAttemptAt)
		}
		v.clock.set(d.NextAttemptAt)
	}
	last := d.Last()
	if d.Status != Failed || !last.At.Equal(d.FirstAttempt.Add(72*time.Hour)) || last.Code != 500 || last.Error != "status" {
		t.Fatalf("delivery %s after %d attempts, last %+v", d.Status, len(d.Attempts), last)
	}
	if n := len(d.Attempts); n < 72 || n > 200 || int(hits.Load()) != n {
		t.Fatalf("%d attempts recorded, %d received", n, hits.Load())
	}
	v.clock.add(time.Hour)
	v.round(t, p)
	if int(hits.Load()) != len(d.Attempts) {
		t.Fatal("a failed delivery was sent again")
	}
}

// The receiver answers 500 three times, then 200: the fourth attempt delivers, with the
// same webhook-id on every attempt.
func TestFourthAttemptDeliversWithTheSameID(t *testing.T) {
	var ids []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, r.Header.Get("webhook-id"))
		if len(ids) <= 3 {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	v.st.Append("alpha", ev("refund-a", 1))
	for range 10 {
		v.round(t, policy())
		d := v.deliveries(t)[0]
		if d.Status != Pending {
			break
		}
		v.clock.set(d.NextAttemptAt)
	}
	d := v.deliveries(t)[0]
	if d.Status != Delivered || len(d.Attempts) != 4 || strings.Join(ids, ",") != "refund-a/1,refund-a/1,refund-a/1,refund-a/1" {
		t.Fatalf("delivery %s after %d attempts; ids %v", d.Status, len(d.Attempts), ids)
	}
}

// Many cases, a receiver that fails at random and answers slowly: sends run a few at a
// time, and a case's event is never attempted before the case's earlier events were
// delivered.
func TestCaseOrderKeptUnderConcurrency(t *testing.T) {
	var (
		mu        sync.Mutex
		delivered = map[string]int64{} // case → last seq delivered
		inFlight  atomic.Int32
		maxFlight atomic.Int32
		rnd       = mrand.New(mrand.NewSource(3))
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxFlight.Load(); n > m && !maxFlight.CompareAndSwap(m, n); m = maxFlight.Load() {
		}
		id := r.Header.Get("webhook-id")
		caseID, seqS, _ := strings.Cut(id, "/")
		var seq int64
		_, _ = fmt.Sscan(seqS, &seq)
		mu.Lock()
		if delivered[caseID] != seq-1 {
			t.Errorf("%s attempted while %s had delivered up to %d", id, caseID, delivered[caseID])
		}
		fail := rnd.Intn(3) == 0
		sleep := time.Duration(rnd.Intn(3)) * time.Millisecond
		mu.Unlock()
		time.Sleep(sleep)
		if fail {
			w.WriteHeader(503)
			return
		}
		mu.Lock()
		delivered[caseID] = seq
		mu.Unlock()
	}))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	const cases, per = 20, 6
	for s := int64(1); s <= per; s++ {
		for c := 0; c < cases; c++ {
			v.st.Append("alpha", ev(fmt.Sprintf("refund-%02d", c), s))
		}
	}
	p := policy()
	p.BackoffBase, p.BackoffCap = time.Millisecond, time.Millisecond
	for i := 0; i < 500; i++ {
		v.round(t, p)
		v.clock.add(time.Second)
		mu.Lock()
		done := len(delivered) == cases
		for _, s := range delivered {
			done = done && s == per
		}
		mu.Unlock()
		if done {
			break
		}
	}
	for c := 0; c < cases; c++ {
		if got := delivered[fmt.Sprintf("refund-%02d", c)]; got != per {
			t.Fatalf("case %d delivered up to %d of %d", c, got, per)
		}
	}
	if m := maxFlight.Load(); m > 4 {
		t.Fatalf("%d sends at once to one endpoint, want at most 4", m)
	}
	t.Logf("at most %d sends at once", maxFlight.Load())
}

// After a rotation both secrets sign until the old one expires; then only the new one.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	var sigs []string
	var bodies [][]byte
	var hdrs []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sigs, bodies, hdrs = append(sigs, r.Header.Get("webhook-signature")), append(bodies, b), append(hdrs, r.Header.Clone())
	}))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	oldSecret := v.secret
	newSecret, _ := NewSecret()
	sealed, _ := v.h.Sealer.Seal(newSecret)
	if _, _, err := UpdateEndpoint(context.Background(), v.st, v.e.EndpointID, func(x *Endpoint) bool {
		x.OldSecret, x.OldSecretUntil, x.Secret = x.Secret, v.clock.now().Add(24*time.Hour).Unix(), sealed
		return true
	}); err != nil {
		t.Fatal(err)
	}
	v.st.Append("alpha", ev("refund-a", 1))
	v.round(t, policy())
	v.clock.add(25 * time.Hour)
	v.st.Append("alpha", ev("refund-a", 2))
	v.round(t, policy())
	if len(sigs) != 2 || strings.Count(sigs[0], "v1,") != 2 || strings.Count(sigs[1], "v1,") != 1 {
		t.Fatalf("signatures %q", sigs)
	}
	for i, s := range []string{oldSecret, newSecret} {
		wh, _ := standardwebhooks.NewWebhook(s)
		if err := wh.VerifyIgnoringTimestamp(bodies[0], hdrs[0]); err != nil {
			t.Errorf("during the overlap, secret %d does not verify: %v", i, err)
		}
	}
	wh, _ := standardwebhooks.NewWebhook(oldSecret)
	if err := wh.VerifyIgnoringTimestamp(bodies[1], hdrs[1]); err == nil {
		t.Error("the old secret still verifies after its 24 hours")
	}
}

// Every attempt failing for DisableAfter disables the endpoint, tells its operators once,
// and stops the sends; a success before that ends the streak.
func TestEndpointDisabledAfterFailingAndOperatorsTold(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.WriteHeader(502) }))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	p := policy()
	v.st.Append("alpha", ev("refund-a", 1))
	var res contract.WebhookDeliverResult
	for i := 0; i < 500 && res.Status != StatusDisabled; i++ {
		res = v.round(t, p)
		if d := v.deliveries(t)[0]; d.Status == Pending {
			v.clock.set(d.NextAttemptAt)
		}
	}
	e, _, _ := v.st.GetEndpoint(context.Background(), v.e.EndpointID)
	if e.Status != StatusDisabled || v.clock.now().Sub(time.Unix(e.FailingSince, 0)) < 24*time.Hour {
		t.Fatalf("endpoint %s, failing since %v (now %v)", e.Status, time.Unix(e.FailingSince, 0), v.clock.now())
	}
	n := v.h.Notify.(*notes)
	if len(n.got) != 1 || n.got[0].Recipient != "operator" || n.got[0].Template != TemplateDisabled || n.got[0].Params["tenant"] != "alpha" {
		t.Fatalf("notifications %+v", n.got)
	}
	before := hits.Load()
	v.clock.add(48 * time.Hour)
	if res := v.round(t, p); res.Status != StatusDisabled || hits.Load() != before {
		t.Fatalf("a disabled endpoint was sent to: %+v", res)
	}
	if d := v.deliveries(t)[0]; d.Status != Pending {
		t.Fatalf("the delivery of a disabled endpoint is %s, want pending (kept, not lost)", d.Status)
	}
}

// A secret never appears in a round's errors: a secret that cannot be opened is named
// by its endpoint only.
func TestSecretNeverInErrors(t *testing.T) {
	v := newEnv(t, "http://127.0.0.1:1/")
	v.h.Sealer = testSealer(t) // another key: the stored secret does not open
	v.st.Append("alpha", ev("refund-a", 1))
	_, err := v.h.Round(context.Background(), contract.WebhookDeliverInput{EndpointID: v.e.EndpointID, Policy: policy()})
	if err == nil || strings.Contains(err.Error(), v.secret) || strings.Contains(err.Error(), strings.TrimPrefix(v.secret, SecretPrefix)) ||
		strings.Contains(err.Error(), v.e.Secret) {
		t.Fatalf("error %v", err)
	}
}
