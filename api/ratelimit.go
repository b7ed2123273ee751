package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
)

// Identity attempts are limited per taxpayer: guessing personal data against the
// registry one attempt at a time must be slow. The counters live in the idempotency
// table (one item per taxpayer and window, expiring with it), so every API instance
// shares them.
const (
	IdentityAttemptsPerWindow = 5
	IdentityAttemptWindow     = time.Hour
)

// identityLimited are the operations that try personal data against the registry: their
// handlers count an attempt (limitIdentity) and may answer 429.
var identityLimited = map[string]bool{
	"POST /v1/identity-verifications":               true,
	"POST /v1/identity-verifications/{id}/resubmit": true,
	"POST /v1/accounts/{inn}/unblock/identity":      true,
}

// limitIdentity counts an attempt against a taxpayer (subject: the keyed hash of the INN,
// or "case:<id>" for a verification's re-submission) and answers 429 with Retry-After over
// the limit. The handlers that try personal data against the registry call it with the
// request they decoded, before anything else reads the registry or spends a nonce: it is
// not middleware, so it judges exactly the request the handler acts on. ok is false when
// an answer was written; a subject it cannot count (none, or a store that does not
// answer) is refused, never let through.
func (s *Server) limitIdentity(w http.ResponseWriter, r *http.Request, subject string) (ok bool) {
	if subject == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "the request names no taxpayer", nil)
		return false
	}
	now := time.Now()
	window := now.Truncate(IdentityAttemptWindow)
	counter := "rate#identity#" + subject + "#" + strconv.FormatInt(window.Unix(), 10)
	n, err := s.countOnce(r, counter, window.Add(2*IdentityAttemptWindow))
	if err != nil {
		s.internal(w, "count identity attempt", err)
		return false
	}
	if n > IdentityAttemptsPerWindow {
		retry := int(window.Add(IdentityAttemptWindow).Sub(now).Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, http.StatusTooManyRequests, "too_many_attempts",
			fmt.Sprintf("at most %d identity attempts an hour for one taxpayer; retry after %d seconds", IdentityAttemptsPerWindow, retry), nil)
		return false
	}
	return true
}

// countOnce counts a request once: a create's retries (same Idempotency-Key, same
// request) are one attempt, also when they arrive at once, before any of them started the
// case the middleware would answer them from (create.go). A retry repeats the same
// personal data, so it tells a guesser nothing new; another body under the same key is
// another request and counts. The first request of a key and body leaves a mark (expiring
// with the counter); a request that finds the mark reads the counter instead of adding to
// it. Any other request (no create) counts each time.
func (s *Server) countOnce(r *http.Request, counter string, expires time.Time) (int, error) {
	cr := createOf(r.Context())
	if cr == nil {
		return s.countAttempt(r, counter, expires)
	}
	seen := attemptSeen{Key: "rate-seen#" + counter + "#" + cr.caseID + "#" + cr.memo.RequestSHA256, ExpiresAt: expires.Unix()}
	first, err := store.PutNew(r.Context(), s.DB, s.Idempotency, "key", seen)
	if err != nil {
		return 0, fmt.Errorf("mark attempt: %w", err)
	}
	if first {
		return s.countAttempt(r, counter, expires)
	}
	var c struct {
		Attempts int `json:"attempts"`
	}
	if _, err := store.Get(r.Context(), s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S(counter)}, &c); err != nil {
		return 0, fmt.Errorf("read attempts: %w", err)
	}
	return c.Attempts, nil
}

// attemptSeen marks a create request counted (countOnce).
type attemptSeen struct {
	Key       string `json:"key"`
	ExpiresAt int64  `json:"expires_at"`
}

// countAttempt adds one to a counter and returns its new value; the first attempt of a
// window also sets when the counter expires.
func (s *Server) countAttempt(r *http.Request, key string, expires time.Time) (int, error) {
	k := map[string]types.AttributeValue{"key": store.S(key)}
	out, err := s.DB.UpdateItem(r.Context(), &dynamodb.UpdateItemInput{TableName: aws.String(s.Idempotency), Key: k,
		UpdateExpression: aws.String("ADD attempts :one"), ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValues: types.ReturnValueUpdatedNew})
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	nv, _ := out.Attributes["attempts"].(*types.AttributeValueMemberN)
	if nv == nil {
		return 0, fmt.Errorf("count attempt: no count returned")
	}
	n, err := strconv.Atoi(nv.Value)
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", err)
	}
	if n == 1 {
		if _, err := store.SetFields(r.Context(), s.DB, s.Idempotency, k, map[string]any{"expires_at": expires.Unix()}); err != nil {
			return 0, err
		}
	}
	return n, nil
}
