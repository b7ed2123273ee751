package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store"
)

// The e-signature method needs a signature over a fresh nonce of the caller's tenant: a
// bare certificate, a forged signature, a replayed, expired or foreign nonce are refused
// and start nothing.
func TestESignatureNeedsProofOfPossession(t *testing.T) {
	s, h := tenantServer(t)
	started := 0
	prove := s.authenticate(s.proveESignature(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started++
		w.WriteHeader(http.StatusCreated)
	})))
	now := time.Now()
	ca, _ := esigntest.NewCA(now)
	cert, key, err := ca.IssueWithKey(7, "500100732259", "11223344595", now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ca.IssueWithKey(8, "500100732259", "11223344595", now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	nonce := func(key string) string {
		rec := do(h, "POST", "/v1/identity-verifications/challenges", key, "")
		var out struct{ Nonce string }
		if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Nonce == "" {
			t.Fatalf("challenge: %d %s", rec.Code, rec.Body)
		}
		return out.Nonce
	}
	body := func(n string, sig []byte) string {
		b, _ := json.Marshal(map[string]any{"method": "esignature", "certificate": cert, "nonce": n, "signature": sig})
		return string(b)
	}
	n := nonce("alpha-integrator")
	good, _ := esigntest.Sign(key, []byte(n))
	forged, _ := esigntest.Sign(otherKey, []byte(n))
	foreign := nonce("beta-integrator")
	foreignSig, _ := esigntest.Sign(key, []byte(foreign))
	expired := "expired-nonce"
	if _, err := store.PutNew(context.Background(), s.DB, s.Idempotency, "key", challenge{Key: "nonce#" + expired, Tenant: "alpha", ExpiresAt: now.Add(-time.Second).Unix()}); err != nil {
		t.Fatal(err)
	}
	expiredSig, _ := esigntest.Sign(key, []byte(expired))
	for name, c := range map[string]struct{ body, field string }{
		"bare certificate":   {body("", nil), "nonce"},
		"forged signature":   {body(n, forged), "signature"},
		"another's nonce":    {body(foreign, foreignSig), "nonce"},
		"expired nonce":      {body(expired, expiredSig), "nonce"},
		"made-up nonce":      {body("guess", good), "nonce"},
		"signature of other": {body(n, []byte("not a signature")), "signature"},
	} {
		rec := do(prove, "POST", "/v1/identity-verifications", "alpha-integrator", c.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if started != 0 {
		t.Fatalf("%d verifications started on a bad proof", started)
	}
	if rec := do(prove, "POST", "/v1/identity-verifications", "alpha-integrator", body(n, good)); rec.Code != http.StatusCreated {
		t.Fatalf("valid proof: %d %s", rec.Code, rec.Body)
	}
	if rec := do(prove, "POST", "/v1/identity-verifications", "alpha-integrator", body(n, good)); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "already used") {
		t.Fatalf("replayed nonce: %d %s", rec.Code, rec.Body)
	}
	if started != 1 {
		t.Fatalf("started %d", started)
	}
}
