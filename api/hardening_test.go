package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestBodyLimitsAnswer413AndHeadersAreSet(t *testing.T) {
	h, _ := testServer()
	big := strings.Repeat("x", JSONBodyLimit+1)
	// Declared too long: refused before reading, before the handler.
	rec := do(h, "POST", "/v1/refunds", "integrator-key", big, "Idempotency-Key", "k")
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a %d-byte create: %d %s", len(big), rec.Code, rec.Body)
	}
	_ = errorOf(t, rec)
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if rec := do(h, "GET", "/healthz", "", ""); rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("public routes lack the security headers")
	}
	if bodyLimit("POST", "/v1/refunds/{id}/documents") != FileBodyLimit || bodyLimit("POST", "/v1/refunds/{id}/decision") != JSONBodyLimit {
		t.Error("per-route limits")
	}
}

func TestHTTPServerSetsEveryTimeout(t *testing.T) {
	s, _ := newTestServer()
	srv := s.HTTPServer("127.0.0.1:0")
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("%+v", srv)
	}
}
