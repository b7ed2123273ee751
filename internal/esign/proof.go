package esign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// The proof of possession: a certificate is public, so an e-signature submission must
// carry a signature by the certificate's key over a fresh challenge nonce. The Verifier
// is the one place that judges it; what it accepts is a Proven, which nothing else can
// make (its fields are unexported), and an e-signature submission reaches a workflow only
// as a Proven's certificate and proof. The esign check verifies the proof again.

// Challenge is the record of an issued nonce ("nonce#<n>") and of its use ("used#<n>",
// with the case that spent it) in the API's challenge table (api_idempotency).
type Challenge struct {
	Key       string `json:"key"`
	Tenant    string `json:"tenant"`
	ExpiresAt int64  `json:"expires_at"`
	CaseID    string `json:"case_id,omitempty"`
	// CertSHA256 names the certificate the nonce was spent with (a case's own retry
	// presents the same one).
	CertSHA256 string `json:"cert_sha256,omitempty"`
}

// Claim is what a submission presents: the certificate, the nonce and the signature,
// for a case of a tenant, about the taxpayer with this INN ("" when the door does not
// name one).
type Claim struct {
	Tenant, CaseID, INN string
	Certificate         []byte
	Nonce               string
	Signature           []byte
}

// Proven is a certificate with its proof of possession, as the Verifier accepted it.
// The zero value carries nothing: only Verifier.Prove fills one.
type Proven struct {
	certificate []byte
	proof       contract.ESignProof
}

// Certificate is the proven certificate (PEM or DER, as submitted).
func (p Proven) Certificate() []byte { return bytes.Clone(p.certificate) }

// Proof is the proof for the workflow's submission; nil for the zero Proven.
func (p Proven) Proof() *contract.ESignProof {
	if p.proof.Nonce == "" {
		return nil
	}
	pr := p.proof
	pr.Signature = bytes.Clone(pr.Signature)
	return &pr
}

// ProofError is a submission the Verifier refuses; Field names the part at fault
// (certificate, nonce, signature).
type ProofError struct{ Field, Reason string }

func (e *ProofError) Error() string { return e.Field + ": " + e.Reason }

// Verifier judges proofs of possession against the challenge table and the registry.
type Verifier struct {
	DB        store.DB
	Nonces    string // the challenge table (api_idempotency)
	Taxpayers string // the registry
	Now       func() time.Time
}

// Prove accepts a claim or refuses it (*ProofError; any other error is a store that did
// not answer: nothing is judged). Accepted means: a readable certificate whose key may
// sign, naming the INN and SNILS the registry holds for the claim's INN; a nonce issued to
// the claim's tenant and not expired; a signature over it by the certificate's key; and
// the nonce spent for the claim's case, last, so that a refused claim spends nothing. A
// retry of the same case with the same certificate finds its own spend and is accepted.
// Chain, validity and revocation are judged by the esign check of the verification.
func (v Verifier) Prove(ctx context.Context, c Claim) (Proven, error) {
	refuse := func(field, reason string) (Proven, error) {
		return Proven{}, &ProofError{Field: field, Reason: reason}
	}
	if c.Tenant == "" || c.CaseID == "" {
		return Proven{}, errors.New("prove: a claim needs its tenant and case")
	}
	cert, err := Parse(c.Certificate)
	if err != nil {
		return refuse("certificate", err.Error())
	}
	if err := SigningKey(cert); err != nil {
		return refuse("certificate", err.Error())
	}
	// The binding to the registry, when the door names the taxpayer (a re-submission does
	// not: its case's taxpayer is bound by the esign check, which always reads the registry).
	if c.INN != "" {
		var tp contract.Taxpayer
		found, err := store.Get(ctx, v.DB, v.Taxpayers, map[string]types.AttributeValue{"inn": store.S(c.INN)}, &tp)
		switch {
		case err != nil:
			return Proven{}, fmt.Errorf("read registry: %w", err)
		case !found:
			return refuse("person.inn", "no taxpayer with this INN in the registry")
		}
		if err := Bind(cert, tp.INN, tp.SNILS); err != nil {
			return refuse("certificate", err.Error())
		}
	}
	if c.Nonce == "" || len(c.Nonce) > 200 {
		return refuse("nonce", "a challenge nonce is required: ask for one (POST /v1/identity-verifications/challenges) and sign it")
	}
	var ch Challenge
	found, err := store.Get(ctx, v.DB, v.Nonces, map[string]types.AttributeValue{"key": store.S("nonce#" + c.Nonce)}, &ch)
	now := v.now()
	switch {
	case err != nil:
		return Proven{}, fmt.Errorf("read nonce: %w", err)
	case !found || ch.Tenant != c.Tenant:
		return refuse("nonce", "not a challenge issued to this API key's tenant: ask for one (POST /v1/identity-verifications/challenges)")
	case ch.ExpiresAt <= now.Unix():
		return refuse("nonce", "the challenge expired: ask for a new one")
	}
	if len(c.Signature) == 0 || CheckPossession(cert, []byte(c.Nonce), c.Signature) != nil {
		return refuse("signature", "does not verify with the certificate's public key over the nonce")
	}
	certSum := sha256Hex(cert.Raw)
	used := Challenge{Key: "used#" + c.Nonce, Tenant: ch.Tenant, ExpiresAt: ch.ExpiresAt, CaseID: c.CaseID, CertSHA256: certSum}
	spent, err := store.PutNew(ctx, v.DB, v.Nonces, "key", used)
	if err != nil {
		return Proven{}, fmt.Errorf("spend nonce: %w", err)
	}
	if !spent {
		var prior Challenge
		if _, err := store.Get(ctx, v.DB, v.Nonces, map[string]types.AttributeValue{"key": store.S("used#" + c.Nonce)}, &prior); err != nil {
			return Proven{}, fmt.Errorf("read spent nonce: %w", err)
		}
		if prior.CaseID != c.CaseID || prior.CertSHA256 != certSum || prior.Tenant != c.Tenant {
			return refuse("nonce", "this challenge was already used: ask for a new one")
		}
	}
	return Proven{certificate: bytes.Clone(c.Certificate),
		proof: contract.ESignProof{Nonce: c.Nonce, Signature: bytes.Clone(c.Signature), Tenant: c.Tenant, CaseID: c.CaseID}}, nil
}

func (v Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// SpentFor checks, for the esign check, that a proof's nonce was spent by the verifier
// for this case, with this certificate, by the proof's tenant: a proof the verifier did
// not produce has no such record. reason is empty when it was.
func SpentFor(ctx context.Context, db store.DB, nonces string, cert []byte, p contract.ESignProof, caseID string) (reason string, err error) {
	c, err := Parse(cert)
	if err != nil {
		return err.Error(), nil
	}
	var used Challenge
	found, err := store.Get(ctx, db, nonces, map[string]types.AttributeValue{"key": store.S("used#" + p.Nonce)}, &used)
	switch {
	case err != nil:
		return "", fmt.Errorf("read spent nonce: %w", err)
	case !found || used.CaseID != caseID || p.CaseID != caseID || used.Tenant != p.Tenant || used.CertSHA256 != sha256Hex(c.Raw):
		return "the proof of possession was not accepted for this case: sign a new challenge", nil
	}
	return "", nil
}
