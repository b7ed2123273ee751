package api

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
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
func (s *Server) esignChallenge(c *call[none]) (reply, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return reply{}, unavailable("make nonce", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	expires := time.Now().Add(ChallengeTTL)
	if _, err := store.PutNew(c.ctx(), s.DB, s.Idempotency, "key", challenge{Key: "nonce#" + nonce, Tenant: c.who().Tenant, ExpiresAt: expires.Unix()}); err != nil {
		return reply{}, unavailable("store nonce", err)
	}
	return reply{status: http.StatusCreated, body: map[string]any{"nonce": nonce, "expires_at": expires.UTC().Format(time.RFC3339),
		"sign": "the nonce's ASCII bytes, with the certificate's private key (ECDSA or RSA with SHA-256); send nonce and signature with the verification",
		"bank": "or, for the bank method, give the nonce to the partner bank: its signed assertion carries it in the claim \"nonce\""}}, nil
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

// verifyESign judges an e-signature submission's proof of possession for a case of the
// caller's tenant (esign.Verifier: nonce issued to the tenant, unexpired, signed by the
// certificate's key, spent once for this case; the certificate bound to the registry's INN
// and SNILS when inn is known). What it accepts is the only way a certificate reaches a
// workflow (esignSubmission). ok is false when an answer was written: 400 naming the part
// at fault, or 500 when a store did not answer (nothing is let through on doubt).
func (s *Server) verifyESign(w http.ResponseWriter, r *http.Request, caseID, inn string, cert []byte, nonce string, sig []byte) (esign.Proven, bool) {
	v := esign.Verifier{DB: s.DB, Nonces: s.Idempotency, Taxpayers: s.Taxpayers}
	p, err := v.Prove(r.Context(), esign.Claim{Tenant: principal(r).Tenant, CaseID: caseID, INN: inn, Certificate: cert, Nonce: nonce, Signature: sig})
	var pe *esign.ProofError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, "invalid_proof", "the e-signature proof of possession is not valid", []domain.FieldError{{Field: pe.Field, Reason: pe.Reason}})
		return esign.Proven{}, false
	case err != nil:
		s.internal(w, "verify e-signature proof", err)
		return esign.Proven{}, false
	}
	return p, true
}

// esignSubmission is the only way an e-signature certificate enters a workflow's
// submission: with the proof the verifier produced for it.
func esignSubmission(sub workflows.IdentitySubmission, p esign.Proven) workflows.IdentitySubmission {
	sub.Certificate, sub.ESignProof = p.Certificate(), p.Proof()
	return sub
}

// takesProofNow answers 409 (with the status) when the case cannot take an e-signature
// submission now, before its proof is verified: the verifier spends the nonce, and a
// request the case would refuse must spend nothing. The case's own validator still
// decides (a change between this read and the update is refused there, rarely).
func takesProofNow(w http.ResponseWriter, status, want, what string) bool {
	if status == want {
		return true
	}
	writeProblem(w, Problem{Status: http.StatusConflict, Code: "conflict", CurrentStatus: status,
		Detail: what + ": the case does not wait for one now; the proof was not used (its challenge stays valid)"})
	return false
}
