package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/store"
)

// The e-signature method needs a signature over a fresh nonce of the caller's tenant: a
// bare certificate, a forged signature, a replayed, expired or foreign nonce are refused
// and start nothing.
func TestESignatureNeedsProofOfPossession(t *testing.T) {
	now := time.Now()
	body := func(e *proofEnv, n string, sig []byte) string {
		return mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert, "nonce": n, "signature": sig})
	}
	// Each bad proof in an environment of its own: the attempts would count toward the
	// taxpayer's limit.
	for name, c := range map[string]struct {
		body  func(e *proofEnv, n string) string
		field string
	}{
		"bare certificate": {func(e *proofEnv, _ string) string { return body(e, "", nil) }, "nonce"},
		"forged signature": {func(e *proofEnv, n string) string {
			_, otherKey, _ := e.ca.IssueWithKey(8, victimINN, victimSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
			return body(e, n, sign(t, otherKey, n))
		}, "signature"},
		"another's nonce": {func(e *proofEnv, _ string) string {
			foreign := e.nonce(t, "beta-integrator")
			return body(e, foreign, sign(t, e.key, foreign))
		}, "nonce"},
		"expired nonce": {func(e *proofEnv, _ string) string {
			expired := "expired-nonce"
			if _, err := store.PutNew(context.Background(), e.db, e.s.Idempotency, "key", challenge{Key: "nonce#" + expired, Tenant: "alpha", ExpiresAt: now.Add(-time.Second).Unix()}); err != nil {
				t.Fatal(err)
			}
			return body(e, expired, sign(t, e.key, expired))
		}, "nonce"},
		"made-up nonce":      {func(e *proofEnv, n string) string { return body(e, "guess", sign(t, e.key, n)) }, "nonce"},
		"signature of other": {func(e *proofEnv, n string) string { return body(e, n, []byte("not a signature")) }, "signature"},
	} {
		e := newProofEnv(t)
		n := e.nonce(t, "alpha-integrator")
		res := e.create(c.body(e, n))
		if res.code != http.StatusBadRequest || !strings.Contains(res.body, `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", name, res.code, res.body)
		}
		if starts, _ := e.tmp.counts(); starts != 0 {
			t.Fatalf("%s: a verification started on a bad proof", name)
		}
		// The refused request spent nothing: the nonce still proves the real key.
		if res := e.create(body(e, n, sign(t, e.key, n))); res.code != http.StatusCreated {
			t.Fatalf("%s, then a valid proof: %d %s", name, res.code, res.body)
		}
		if res := e.create(body(e, n, sign(t, e.key, n))); res.code != http.StatusBadRequest || !strings.Contains(res.body, "already used") {
			t.Fatalf("%s, then the nonce replayed: %d %s", name, res.code, res.body)
		}
		if starts, _ := e.tmp.counts(); starts != 1 {
			t.Fatalf("%s: started %d", name, starts)
		}
	}
}
