package webhooks

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Review: one case the receiver keeps refusing must not stall every other case once
// `window` deliveries lie after it (and must not get the endpoint disabled).
func TestReviewOnePoisonCaseStallsTheEndpoint(t *testing.T) {
	var late atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		if strings.HasPrefix(id, "refund-poison/") {
			w.WriteHeader(500)
			return
		}
		if strings.HasPrefix(id, "refund-late/") {
			late.Add(1)
		}
	}))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	p := policy()
	p.Concurrency = 64
	v.st.Append("alpha", ev("refund-poison", 1))
	for i := 0; i < window; i++ {
		v.st.Append("alpha", ev(fmt.Sprintf("refund-%d", i), 1))
	}
	for range 20 {
		v.round(t, p)
		v.clock.add(time.Hour)
	}
	v.st.Append("alpha", ev("refund-late", 1))
	for range 30 {
		v.round(t, p)
		v.clock.add(time.Hour)
	}
	e, _, _ := v.st.GetEndpoint(t.Context(), v.e.EndpointID)
	t.Logf("endpoint status %s floor %d cursor %d; late received %d", e.Status, e.Floor, e.Cursor, late.Load())
	if late.Load() == 0 {
		t.Fatalf("a healthy case's event waited 30 h behind another case's failing one (status %s)", e.Status)
	}
}

// Review: IPv6 forms that embed a private IPv4 address (NAT64 well-known prefix, 6to4,
// IPv4-compatible) reach it through a translator; they must be refused like it.
func TestReviewEmbeddedIPv4Refused(t *testing.T) {
	for _, a := range []string{"64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "2002:a9fe:a9fe::1", "2002:7f00:1::1", "::a9fe:a9fe", "::7f00:1"} {
		if AddressAllowed(netip.MustParseAddr(a), false) {
			t.Errorf("%s allowed", a)
		}
	}
	r := fakeResolver{"nat64.example.com": {"64:ff9b::a9fe:a9fe"}}
	if why := CheckURL(t.Context(), "https://[64:ff9b::a9fe:a9fe]/latest/meta-data", false, r); why == "" {
		t.Error("https://[64:ff9b::169.254.169.254]/ registers")
	}
}

// Review: whether a send may reach loopback is the function's configuration, never the
// round's input (a workflow started or reset with AllowLoopback true reaches nothing).
func TestLoopbackIsTheFunctionsConfigurationNotTheInput(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	v := newEnv(t, srv.URL)
	v.h.AllowLoopback = false
	p := policy() // AllowLoopback: true in the input
	v.st.Append("alpha", ev("refund-1", 1))
	v.round(t, p)
	ds := v.deliveries(t)
	if hits.Load() != 0 || len(ds) != 1 || ds[0].Last().Error != "address" {
		t.Fatalf("%d hits; deliveries %+v", hits.Load(), ds)
	}
}
