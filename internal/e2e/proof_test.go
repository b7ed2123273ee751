//go:build integration

package e2e

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/trust"
	"github.com/taxflow/taxflow/workflows"
)

var trustOnce struct {
	sync.Once
	ca  *esigntest.CA
	err error
}

// trustedCA is the one test authority of the stack, its root and a current revocation
// list put in S3 once: the esign check caches its trust material per instance, so every
// test of the suite uses the same authority.
func trustedCA(t *testing.T) *esigntest.CA {
	t.Helper()
	trustOnce.Do(func() {
		now := time.Now()
		ca, err := esigntest.NewCA(now)
		if err != nil {
			trustOnce.err = err
			return
		}
		crl, err := ca.CRL(now)
		if err != nil {
			trustOnce.err = err
			return
		}
		// The anchors go where the operator's `taxflow trust put` puts them: the trust
		// bucket, which no function may write.
		bucket := shared.cfg.Name(trust.Bucket)
		for kind, b := range map[string][]byte{"roots": ca.RootPEM(), "crl": crl} {
			if _, err := trust.Put(context.Background(), shared.clients.S3, bucket, kind, b); err != nil {
				trustOnce.err = err
				return
			}
		}
		trustOnce.ca = ca
	})
	if trustOnce.err != nil {
		t.Fatal(trustOnce.err)
	}
	return trustOnce.ca
}

// challenge asks for a nonce and signs it with key.
func (c *apiClient) challenge(key *ecdsa.PrivateKey) (nonce string, sig []byte) {
	c.t.Helper()
	code, out := c.do("POST", "/v1/identity-verifications/challenges", nil)
	var ch struct{ Nonce string }
	if code != http.StatusCreated || json.Unmarshal(out, &ch) != nil {
		c.t.Fatalf("challenge: %d %s", code, out)
	}
	sig, err := esigntest.Sign(key, []byte(ch.Nonce))
	if err != nil {
		c.t.Fatal(err)
	}
	return ch.Nonce, sig
}

// Start with a certificate that does not verify (a mismatch), then re-submit the victim's
// certificate: without a proof of possession (bare, made up, signed by another key) the
// re-submission is refused and the case does not move; with the proof it is verified.
func TestResubmittedCertificateNeedsItsProofOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	cabinet, _ := startIdentityAPI(t, queue)
	ca := trustedCA(t)
	now := time.Now()
	p := newPerson(t, true)
	snils, _ := domain.NormalizeSNILS("snils", p.SNILS)
	// The attacker's own certificate, from an authority nobody trusts: its proof is
	// genuine, the check finds a mismatch and the case waits for a re-submission.
	rogue, _ := esigntest.NewCA(now)
	own, ownKey, _ := rogue.IssueWithKey(int64(rand.IntN(1e9)), p.INN, snils, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	n, sig := cabinet.challenge(ownKey)
	body, _ := json.Marshal(map[string]any{"method": contract.MethodESignature, "person": p, "certificate": own, "nonce": n, "signature": sig})
	code, out := cabinet.do("POST", "/v1/identity-verifications", body, "Idempotency-Key", uuid.NewString())
	var started struct {
		CaseID string `json:"case_id"`
	}
	if code != http.StatusCreated || json.Unmarshal(out, &started) != nil {
		t.Fatalf("start: %d %s", code, out)
	}
	id := started.CaseID
	cabinet.waitIdentity(id, status(workflows.IdentityNeedsDocuments), "a mismatch")

	victim, key, _ := ca.IssueWithKey(int64(rand.IntN(1e9)), p.INN, snils, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	n2, ownSig := cabinet.challenge(ownKey)
	for name, b := range map[string]map[string]any{
		"bare certificate":    {"certificate": victim},
		"made-up proof":       {"certificate": victim, "nonce": "made-up", "signature": []byte("sig")},
		"another key's proof": {"certificate": victim, "nonce": n2, "signature": ownSig},
	} {
		body, _ := json.Marshal(b)
		if code, out := cabinet.do("POST", "/v1/identity-verifications/"+id+"/resubmit", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	time.Sleep(2 * time.Second)
	if st := cabinet.identity(id); st.Status != workflows.IdentityNeedsDocuments || st.Attempts != 1 {
		t.Fatalf("after refused re-submissions the case is %s after %d attempts", st.Status, st.Attempts)
	}
	n3, sig3 := cabinet.challenge(key)
	body, _ = json.Marshal(map[string]any{"certificate": victim, "nonce": n3, "signature": sig3})
	if code, out := cabinet.do("POST", "/v1/identity-verifications/"+id+"/resubmit", body); code != http.StatusOK {
		t.Fatalf("re-submission with its proof: %d %s", code, out)
	}
	cabinet.waitIdentity(id, status(workflows.IdentityVerified), "verified by the re-submitted certificate")
}

// A suspicious-activity lock is lifted by an identity re-verification only with the
// certificate's proof of possession: a made-up or missing proof starts nothing.
func TestUnblockByIdentityNeedsTheProofOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	client := func(p api.Principal) *apiClient {
		k, err := keys.Create(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	cabinet := client(api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeIdentityWrite, api.ScopeAccountRead, api.ScopeAccountUnblock}})
	auth := client(api.Principal{ID: "e2e-auth", Tenant: "e2e-auth", Role: api.RoleAuthSystem,
		Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})
	ca := trustedCA(t)
	now := time.Now()
	p := newPerson(t, true)
	snils, _ := domain.NormalizeSNILS("snils", p.SNILS)
	cert, key, _ := ca.IssueWithKey(int64(rand.IntN(1e9)), p.INN, snils, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	_, otherKey, _ := ca.IssueWithKey(int64(rand.IntN(1e9)), p.INN, snils, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))

	ev, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: contract.EventSuspicious})
	if code, out := auth.do("POST", "/v1/accounts/"+p.INN+"/events", ev); code != http.StatusAccepted {
		t.Fatalf("account event: %d %s", code, out)
	}
	lock := func() workflows.AccountStatus {
		var a workflows.AccountStatus
		_, out := auth.do("GET", "/v1/accounts/"+p.INN+"/lock", nil)
		_ = json.Unmarshal(out, &a)
		return a
	}
	poll(t, "the account to await identity", lock, func(a workflows.AccountStatus) bool { return a.Status == workflows.AccountAwaitingIdentity })

	n, otherSig := cabinet.challenge(otherKey)
	for name, b := range map[string]map[string]any{
		"bare certificate":    {"method": contract.MethodESignature, "person": p, "certificate": cert},
		"made-up proof":       {"method": contract.MethodESignature, "person": p, "certificate": cert, "nonce": "made-up", "signature": []byte("AAAA")},
		"another key's proof": {"method": contract.MethodESignature, "person": p, "certificate": cert, "nonce": n, "signature": otherSig},
	} {
		body, _ := json.Marshal(b)
		if code, out := cabinet.do("POST", "/v1/accounts/"+p.INN+"/unblock/identity", body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	if a := lock(); a.Status != workflows.AccountAwaitingIdentity || a.IdentityCase != "" {
		t.Fatalf("after refused unblocks the account is %s with identity case %q", a.Status, a.IdentityCase)
	}
	n2, sig := cabinet.challenge(key)
	body, _ := json.Marshal(map[string]any{"method": contract.MethodESignature, "person": p, "certificate": cert, "nonce": n2, "signature": sig})
	if code, out := cabinet.do("POST", "/v1/accounts/"+p.INN+"/unblock/identity", body); code != http.StatusOK {
		t.Fatalf("unblock with the proof: %d %s", code, out)
	}
	poll(t, "the account to open again", lock, func(a workflows.AccountStatus) bool { return a.Status == workflows.AccountActive })
}
