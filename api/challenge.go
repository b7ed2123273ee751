package api

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/store"
)

// ChallengeTTL is how long a challenge nonce may be signed.
const ChallengeTTL = 5 * time.Minute

// challenge is an issued nonce; a second record ("used#…") marks it spent.
type challenge struct {
	Key       string `json:"key"`
	Tenant    string `json:"tenant"`
	ExpiresAt int64  `json:"expires_at"`
}

// esignChallenge issues a nonce the taxpayer signs with the e-signature's private key:
// a certificate alone is public and proves nothing; a signature over a fresh nonce
// proves the key is at hand.
func (s *Server) esignChallenge(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		s.internal(w, "make nonce", err)
		return
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	expires := time.Now().Add(ChallengeTTL)
	if _, err := store.PutNew(r.Context(), s.DB, s.Idempotency, "key", challenge{Key: "nonce#" + nonce, Tenant: principal(r).Tenant, ExpiresAt: expires.Unix()}); err != nil {
		s.internal(w, "store nonce", err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]any{"nonce": nonce, "expires_at": expires.UTC().Format(time.RFC3339),
		"sign": "the nonce's ASCII bytes, with the certificate's private key (ECDSA or RSA with SHA-256); send nonce and signature with the verification",
		"bank": "or, for the bank method, give the nonce to the partner bank: its signed assertion carries it in the claim \"nonce\""})
}

// precheckBankNonce refuses, before a bank verification starts, an assertion whose nonce
// this tenant was not issued, has expired or another case has used: a quick, clear 400
// for the integrator. It reads the claims unverified: the verification itself checks the
// signature and spends the nonce once (functions/bankcheck), also when two starts race
// past this check. ok is false when an answer was written.
func (s *Server) precheckBankNonce(w http.ResponseWriter, r *http.Request, assertion, caseID string) (ok bool) {
	if assertion == "" {
		return true
	}
	tok, err := bankid.Parse(assertion)
	if err != nil { // Validate has refused it already; kept for a caller that did not
		writeError(w, http.StatusBadRequest, "invalid_request", "", []domain.FieldError{{Field: "bank_assertion", Reason: err.Error()}})
		return false
	}
	refuse := func(reason string) bool {
		writeError(w, http.StatusBadRequest, "invalid_proof", "the partner bank's assertion cannot be used", []domain.FieldError{{Field: "bank_assertion", Reason: reason}})
		return false
	}
	nonce := tok.Claims.Nonce
	var ch challenge
	found, err := store.Get(r.Context(), s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S("nonce#" + nonce)}, &ch)
	switch {
	case err != nil:
		s.internal(w, "read nonce", err)
		return false
	case !found || ch.Tenant != principal(r).Tenant:
		return refuse("its nonce is not a challenge issued to this API key's tenant: ask for one (POST /v1/identity-verifications/challenges)")
	case ch.ExpiresAt <= time.Now().Unix():
		return refuse("its challenge expired: ask for a new one and a new assertion")
	}
	var used struct {
		CaseID string `json:"case_id"`
	}
	found, err = store.Get(r.Context(), s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S("used#" + nonce)}, &used)
	switch {
	case err != nil:
		s.internal(w, "read nonce", err)
		return false
	case found && used.CaseID != caseID:
		return refuse("its challenge was already used: ask for a new one and a new assertion")
	}
	return true
}

// proveESignature checks, before an esignature verification starts, that the caller
// signed one of this tenant's unexpired, unused nonces with the certificate's key. A
// forged or replayed proof is refused and starts nothing; the nonce is spent only by a
// valid proof. Chain, validity and revocation are checked by the verification itself.
func (s *Server) proveESignature(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r, JSONBodyLimit)
		if !ok {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req CreateIdentityRequest
		if json.Unmarshal(body, &req) != nil || req.Method != contract.MethodESignature || len(req.Certificate) == 0 {
			next.ServeHTTP(w, r) // not an e-signature; the handler judges the rest
			return
		}
		refuse := func(field, reason string) {
			writeError(w, http.StatusBadRequest, "invalid_proof", "the e-signature proof of possession is not valid", []domain.FieldError{{Field: field, Reason: reason}})
		}
		cert, err := esign.Parse(req.Certificate)
		if err != nil {
			refuse("certificate", err.Error())
			return
		}
		var ch challenge
		found, err := store.Get(r.Context(), s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S("nonce#" + req.Nonce)}, &ch)
		switch {
		case err != nil:
			s.internal(w, "read nonce", err)
			return
		case req.Nonce == "" || !found || ch.Tenant != principal(r).Tenant:
			refuse("nonce", "not a challenge issued to this API key's tenant: ask for one (POST /v1/identity-verifications/challenges)")
			return
		case ch.ExpiresAt <= time.Now().Unix():
			refuse("nonce", "the challenge expired: ask for a new one")
			return
		}
		if err := checkSignature(cert, []byte(req.Nonce), req.Signature); err != nil {
			refuse("signature", "does not verify with the certificate's public key over the nonce")
			return
		}
		spent, err := store.PutNew(r.Context(), s.DB, s.Idempotency, "key", challenge{Key: "used#" + req.Nonce, Tenant: ch.Tenant, ExpiresAt: ch.ExpiresAt})
		if err != nil {
			s.internal(w, "spend nonce", err)
			return
		}
		if !spent {
			refuse("nonce", "this challenge was already used: ask for a new one")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkSignature verifies a SHA-256 signature by the certificate's key.
func checkSignature(cert *x509.Certificate, msg, sig []byte) error {
	alg := x509.SHA256WithRSA
	if cert.PublicKeyAlgorithm == x509.ECDSA {
		alg = x509.ECDSAWithSHA256
	}
	return cert.CheckSignature(alg, msg, sig)
}
