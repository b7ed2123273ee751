// Package bankcheck verifies a partner bank's signed identity assertion (method "bank")
// against the partner banks' public keys kept in the trust anchors' bucket
// (internal/trust: bank/keys.json, next to the e-signature roots; no function may write it), and spends the assertion's challenge nonce: one nonce, one case.
package bankcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/trust"
)

// KeySetKey is where the partner banks' key set is kept in the trust anchors' bucket.
const KeySetKey = trust.BankKeysKey

// NonceTable is the logical table of the API's challenges (api.IdempotencyTable): the API
// writes "nonce#<n>" when it issues one; a use writes "used#<n>", once.
const NonceTable = "api_idempotency"

// Handler verifies assertions. The key set is cached for a few minutes per instance.
type Handler struct {
	S3     document.S3
	Bucket string // the deployed trust.Bucket
	DB     store.DB
	Nonces string // the deployed NonceTable

	mu      sync.Mutex
	keys    bankid.KeySet
	fetched time.Time
}

const keysTTL = 5 * time.Minute

// challenge is the API's record of an issued nonce; spent adds who used it.
type challenge struct {
	Key       string `json:"key"`
	Tenant    string `json:"tenant"`
	ExpiresAt int64  `json:"expires_at"`
	CaseID    string `json:"case_id,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
	JTI       string `json:"jti,omitempty"`
}

// errNoKeys: no key set is configured or it cannot be read as one; an operator decides.
var errNoKeys = errors.New("no partner bank keys")

// Check answers whether the assertion identifies the taxpayer for this case.
func (h *Handler) Check(ctx context.Context, in contract.BankCheckInput) (contract.BankCheckResult, error) {
	switch {
	case in.Assertion == "":
		return contract.BankCheckResult{}, fnerr.Invalid("assertion", "must be the partner bank's signed assertion (compact JWS)")
	case in.CaseID == "":
		return contract.BankCheckResult{}, fnerr.Invalid("case_id", "must name the case the nonce is spent for")
	case in.INN == "":
		return contract.BankCheckResult{}, fnerr.Invalid("inn", "must be set")
	case in.At.IsZero():
		return contract.BankCheckResult{}, fnerr.Invalid("at", "must be set")
	}
	refused := func(reason string) (contract.BankCheckResult, error) {
		return contract.BankCheckResult{Valid: false, Reason: reason}, nil
	}
	tok, err := bankid.Parse(in.Assertion)
	if err != nil {
		return refused(err.Error())
	}
	keys, err := h.load(ctx)
	if errors.Is(err, errNoKeys) {
		return contract.BankCheckResult{Inconclusive: true, Reason: "the partner bank's assertion could not be checked (" + err.Error() + "): an operator reviews it"}, nil
	} else if err != nil {
		return contract.BankCheckResult{}, err // transient: the activity retries
	}
	issuer, err := bankid.Verify(tok, keys, in.INN, in.At)
	if bankid.IsRefusal(err) {
		return refused(err.Error())
	} else if err != nil {
		return contract.BankCheckResult{}, err
	}
	// The nonce last: only an assertion that verifies spends it.
	if reason, err := h.spend(ctx, tok, issuer, in); err != nil {
		return contract.BankCheckResult{}, err
	} else if reason != "" {
		return refused(reason)
	}
	return contract.BankCheckResult{Valid: true, Issuer: issuer}, nil
}

// spend marks the assertion's nonce used by this case. A retry of the same case finds its
// own mark and passes; another case is refused (a replay). reason is empty when spent.
func (h *Handler) spend(ctx context.Context, tok *bankid.Token, issuer string, in contract.BankCheckInput) (reason string, err error) {
	nonce := tok.Claims.Nonce
	var ch challenge
	found, err := store.Get(ctx, h.DB, h.Nonces, map[string]types.AttributeValue{"key": store.S("nonce#" + nonce)}, &ch)
	switch {
	case err != nil:
		return "", fmt.Errorf("read challenge: %w", err)
	case !found:
		return "the assertion's nonce is not a challenge taxflow issued (or it was issued long ago)", nil
	case ch.ExpiresAt <= in.At.Unix():
		return "the assertion's challenge nonce had expired when it was presented: ask for a new challenge", nil
	}
	used := challenge{Key: "used#" + nonce, Tenant: ch.Tenant, ExpiresAt: ch.ExpiresAt, CaseID: in.CaseID, Issuer: issuer, JTI: tok.Claims.ID}
	created, err := store.PutNew(ctx, h.DB, h.Nonces, "key", used)
	if err != nil {
		return "", fmt.Errorf("spend challenge: %w", err)
	}
	if created {
		return "", nil
	}
	var prior challenge
	if _, err := store.Get(ctx, h.DB, h.Nonces, map[string]types.AttributeValue{"key": store.S("used#" + nonce)}, &prior); err != nil {
		return "", fmt.Errorf("read spent challenge: %w", err)
	}
	if prior.CaseID == in.CaseID && prior.JTI == tok.Claims.ID {
		return "", nil // this case's own retry
	}
	return "the assertion's nonce was already used (a replayed assertion)", nil
}

func (h *Handler) load(ctx context.Context) (bankid.KeySet, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys != nil && time.Since(h.fetched) < keysTTL {
		return h.keys, nil
	}
	b, err := h.get(ctx, KeySetKey)
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", h.Bucket, KeySetKey, err)
	}
	if b == nil {
		return nil, fmt.Errorf("%w: s3://%s/%s does not exist", errNoKeys, h.Bucket, KeySetKey)
	}
	ks, err := bankid.ParseKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("%w: s3://%s/%s: %v", errNoKeys, h.Bucket, KeySetKey, err)
	}
	h.keys, h.fetched = ks, time.Now()
	return ks, nil
}

// get reads an object; nil, nil when it does not exist.
func (h *Handler) get(ctx context.Context, key string) ([]byte, error) {
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &key})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = obj.Body.Close() }() // a reader: what was read is all that is needed
	return io.ReadAll(io.LimitReader(obj.Body, 1<<20))
}
