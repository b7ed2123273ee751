package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
)

// Scopes an API key may hold.
const (
	ScopeRefundsRead        = "refunds:read"        // integrators, reviewers, operators
	ScopeRefundsWrite       = "refunds:write"       // integrators: create, upload, withdraw
	ScopeRefundsDecide      = "refunds:decide"      // reviewers
	ScopeOperate            = "operate"             // operators: retry a failed payout
	ScopeIdentityRead       = "identity:read"       // integrators, operators
	ScopeIdentityWrite      = "identity:write"      // integrators: start, upload, re-submit
	ScopeIdentityReview     = "identity:review"     // operators: approve or reject
	ScopeConsent            = "consent:write"       // integrators: record consent and its revocation
	ScopeAccountEvents      = "accounts:events"     // the authentication system
	ScopeAccountRead        = "accounts:read"       // integrators, specialists
	ScopeAccountUnblock     = "accounts:unblock"    // integrators, for the taxpayer
	ScopeAccountSpecialist  = "accounts:specialist" // specialists
	ScopeDeclarationsRead   = "declarations:read"   // integrators, inspectors
	ScopeDeclarationsWrite  = "declarations:write"  // integrators: submit, correct, attach, appeal
	ScopeDeclarationsReview = "declarations:review" // inspectors
	ScopeTasksRead          = "tasks:read"          // staff: the task list
	ScopeRequisites         = "requisites:verify"   // back office: the verdict on a change of bank requisites
)

// Scopes lists every scope.
var Scopes = []string{ScopeRefundsRead, ScopeRefundsWrite, ScopeRefundsDecide, ScopeOperate,
	ScopeIdentityRead, ScopeIdentityWrite, ScopeIdentityReview, ScopeConsent,
	ScopeAccountEvents, ScopeAccountRead, ScopeAccountUnblock, ScopeAccountSpecialist,
	ScopeDeclarationsRead, ScopeDeclarationsWrite, ScopeDeclarationsReview, ScopeTasksRead, ScopeRequisites}

// Principal is who called: an integrator, a reviewer, an operator.
type Principal struct {
	ID     string   `json:"principal"`
	Scopes []string `json:"scopes"`
}

// Can tells whether the principal holds a scope.
func (p Principal) Can(scope string) bool { return slices.Contains(p.Scopes, scope) }

// KeyStore finds the principal of an API key by the key's hash.
type KeyStore interface {
	Lookup(ctx context.Context, keyHash string) (Principal, bool, error)
}

// HashKey is how keys are stored: only the SHA-256 of the key, never the key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey makes a random API key with a recognisable prefix.
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tfk_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// DynamoKeys is the key store in DynamoDB (table "apikeys", key key_hash).
type DynamoKeys struct {
	DB    store.DB
	Table string
}

type keyRecord struct {
	KeyHash string `json:"key_hash"`
	Principal
}

// Lookup finds a key.
func (d DynamoKeys) Lookup(ctx context.Context, keyHash string) (Principal, bool, error) {
	var rec keyRecord
	found, err := store.Get(ctx, d.DB, d.Table, map[string]types.AttributeValue{"key_hash": store.S(keyHash)}, &rec)
	return rec.Principal, found, err
}

// Create stores a new key for a principal and returns the key (shown once).
func (d DynamoKeys) Create(ctx context.Context, p Principal) (string, error) {
	for _, s := range p.Scopes {
		if !slices.Contains(Scopes, s) {
			return "", fmt.Errorf("scope %q: want one of %s", s, strings.Join(Scopes, ", "))
		}
	}
	if p.ID == "" {
		return "", fmt.Errorf("principal: must not be empty")
	}
	key, err := NewKey()
	if err != nil {
		return "", err
	}
	if _, err := store.PutNew(ctx, d.DB, d.Table, "key_hash", keyRecord{KeyHash: HashKey(key), Principal: p}); err != nil {
		return "", err
	}
	return key, nil
}

// MemoryKeys is a key store for tests and for one-off local runs.
type MemoryKeys struct {
	mu   sync.Mutex
	keys map[string]Principal
}

// Add registers a key.
func (m *MemoryKeys) Add(key string, p Principal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]Principal{}
	}
	m.keys[HashKey(key)] = p
}

// Lookup finds a key.
func (m *MemoryKeys) Lookup(_ context.Context, h string) (Principal, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.keys[h]
	return p, ok, nil
}

type principalKey struct{}

// authenticate resolves the caller from "Authorization: Bearer <key>" (or X-API-Key).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if key == "" || key == r.Header.Get("Authorization") {
			key = r.Header.Get("X-API-Key")
		}
		if key == "" {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "send an API key: Authorization: Bearer <key>", nil)
			return
		}
		p, ok, err := s.Keys.Lookup(r.Context(), HashKey(key))
		if err != nil {
			s.Log.Error().Err(err).Msg("key lookup failed")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "authentication is unavailable; retry later", nil)
			return
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "unknown API key", nil)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principal(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// require wraps a handler with a scope check.
func require(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !principal(r).Can(scope) {
			writeError(w, http.StatusForbidden, "forbidden", "this API key lacks the scope "+scope, nil)
			return
		}
		h(w, r)
	}
}
