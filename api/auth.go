package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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
	ScopeBatchesRead        = "batches:read"        // integrators: a batch file's progress and report
	ScopeBatchesWrite       = "batches:write"       // integrators: upload a batch file to their inbox
	ScopeEventsRead         = "events:read"         // integrators: their tenant's events feed
	ScopeWebhooksRead       = "webhooks:read"       // integrators: their webhook endpoints and deliveries
	ScopeWebhooksWrite      = "webhooks:write"      // integrators: register, delete, rotate, enable, retry
)

// Scopes lists every scope.
var Scopes = []string{ScopeRefundsRead, ScopeRefundsWrite, ScopeRefundsDecide, ScopeOperate,
	ScopeIdentityRead, ScopeIdentityWrite, ScopeIdentityReview, ScopeConsent,
	ScopeAccountEvents, ScopeAccountRead, ScopeAccountUnblock, ScopeAccountSpecialist,
	ScopeDeclarationsRead, ScopeDeclarationsWrite, ScopeDeclarationsReview, ScopeTasksRead, ScopeRequisites,
	ScopeBatchesRead, ScopeBatchesWrite, ScopeEventsRead, ScopeWebhooksRead, ScopeWebhooksWrite}

// Principal is who called: the key's tenant (an integrator organisation, or the tax
// office for staff), its role, and the scopes the role grants.
type Principal struct {
	ID     string   `json:"principal"`
	Scopes []string `json:"scopes"`
	Tenant string   `json:"tenant"`
	Role   string   `json:"role"`
	KeyID  string   `json:"key_id,omitempty"`
	// BoundTo: a tax-office staff key that acts only on this tenant's cases ("": on all).
	BoundTo string `json:"bound_to,omitempty"`
	// Person is the member of staff who holds the key: their keys and console account are
	// one staff identity (StaffIdentity) for the separation of duties.
	Person string `json:"person,omitempty"`
}

// Can tells whether the principal holds a scope.
func (p Principal) Can(scope string) bool { return slices.Contains(p.Scopes, scope) }

// KeyStore finds the principal of an API key by the key's hash. An expired or revoked
// key is not found.
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

// keyFormat is what NewKey makes; anything else is refused before a lookup.
var keyFormat = regexp.MustCompile(`^tfk_[A-Za-z0-9_-]{43}$`)

// DefaultKeyTTL is how long a key lives when its creator names no expiry.
const DefaultKeyTTL = 90 * 24 * time.Hour

// DynamoKeys is the key store in DynamoDB (table "apikeys", key key_hash).
type DynamoKeys struct {
	DB    store.DB
	Table string
	Now   func() time.Time // nil: time.Now
}

// KeyInfo is what an operator sees of a key: never the key or its hash.
type KeyInfo struct {
	Principal
	CreatedAt  int64 `json:"created_at"`             // Unix seconds
	ExpiresAt  int64 `json:"expires_at"`             // Unix seconds
	RevokedAt  int64 `json:"revoked_at,omitempty"`   // Unix seconds; 0 while valid
	LastUsedAt int64 `json:"last_used_at,omitempty"` // Unix seconds, to the minute
}

type keyRecord struct {
	KeyHash string `json:"key_hash"`
	KeyInfo
}

func (d DynamoKeys) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Lookup finds a valid key and notes its use (at most once a minute per key).
func (d DynamoKeys) Lookup(ctx context.Context, keyHash string) (Principal, bool, error) {
	var rec keyRecord
	found, err := store.Get(ctx, d.DB, d.Table, map[string]types.AttributeValue{"key_hash": store.S(keyHash)}, &rec)
	if err != nil || !found {
		return Principal{}, false, err
	}
	now := d.now().Unix()
	if rec.RevokedAt != 0 || rec.ExpiresAt <= now || rec.Tenant == "" || rec.Role == "" {
		return Principal{}, false, nil
	}
	if now-rec.LastUsedAt >= 60 {
		// Best effort: a failed note must not refuse a valid caller.
		_, _ = store.SetFields(ctx, d.DB, d.Table, map[string]types.AttributeValue{"key_hash": store.S(keyHash)}, map[string]any{"last_used_at": now})
	}
	return rec.Principal, true, nil
}

// Create stores a new key for a principal, valid for DefaultKeyTTL, and returns the key
// (shown once). Tenant and Role are required; Scopes default to the role's.
func (d DynamoKeys) Create(ctx context.Context, p Principal) (string, error) {
	key, _, err := d.CreateKey(ctx, p, d.now().Add(DefaultKeyTTL))
	return key, err
}

// CreateKey stores a new key valid until expires; it returns the key (shown once) and
// its id (for list and revoke).
func (d DynamoKeys) CreateKey(ctx context.Context, p Principal, expires time.Time) (key, keyID string, err error) {
	p, err = ValidatePrincipal(p)
	if err != nil {
		return "", "", err
	}
	if !expires.After(d.now()) {
		return "", "", fmt.Errorf("expires: %s is not in the future", expires.Format(time.RFC3339))
	}
	if key, err = NewKey(); err != nil {
		return "", "", err
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return "", "", err
	}
	p.KeyID = "key_" + hex.EncodeToString(id)
	rec := keyRecord{KeyHash: HashKey(key), KeyInfo: KeyInfo{Principal: p, CreatedAt: d.now().Unix(), ExpiresAt: expires.Unix()}}
	if _, err := store.PutNew(ctx, d.DB, d.Table, "key_hash", rec); err != nil {
		return "", "", fmt.Errorf("store key: %w", err)
	}
	return key, p.KeyID, nil
}

// List returns the keys of a tenant ("" for every tenant), newest first.
func (d DynamoKeys) List(ctx context.Context, tenant string) ([]KeyInfo, error) {
	var out []KeyInfo
	var start map[string]types.AttributeValue
	for {
		page, err := d.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(d.Table), ExclusiveStartKey: start})
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", d.Table, err)
		}
		var recs []keyRecord
		if err := store.UnmarshalList(page.Items, &recs); err != nil {
			return nil, err
		}
		for _, r := range recs {
			if tenant == "" || r.Tenant == tenant {
				out = append(out, r.KeyInfo)
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return int(b.CreatedAt - a.CreatedAt) })
	return out, nil
}

// Revoke ends a key at once; it reports false when there is no key with this id.
func (d DynamoKeys) Revoke(ctx context.Context, keyID string) (bool, error) {
	var start map[string]types.AttributeValue
	for {
		page, err := d.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(d.Table), ExclusiveStartKey: start})
		if err != nil {
			return false, fmt.Errorf("scan %s: %w", d.Table, err)
		}
		var recs []keyRecord
		if err := store.UnmarshalList(page.Items, &recs); err != nil {
			return false, err
		}
		for _, r := range recs {
			if r.KeyID == keyID {
				return store.SetFields(ctx, d.DB, d.Table, map[string]types.AttributeValue{"key_hash": store.S(r.KeyHash)},
					map[string]any{"revoked_at": d.now().Unix()})
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return false, nil
		}
	}
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
func (s *Server) authenticate(next http.Handler) http.Handler { return s.authenticateWith(false, next) }

// authenticateWith resolves the caller; cached lets a create route reuse a principal
// read within CreateKeyRevocationBound (hotpath.go): a revoked key stops creating within
// that bound. Every other route reads the key each time, so a revocation holds at once.
func (s *Server) authenticateWith(cached bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if key == "" || key == r.Header.Get("Authorization") {
			key = r.Header.Get("X-API-Key")
		}
		if key == "" {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "send an API key: Authorization: Bearer <key>", nil)
			return
		}
		if !keyFormat.MatchString(key) && !testKeys(s.Keys) {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "malformed API key: want tfk_ and 43 characters", nil)
			return
		}
		hash := HashKey(key)
		var (
			p   Principal
			ok  bool
			err error
		)
		if cached {
			var c cachedKey
			c, ok = s.hot().keys.get(hash)
			p = c.p
		}
		if !ok {
			p, ok, err = s.Keys.Lookup(r.Context(), hash)
			if ok && cached {
				s.hot().keys.put(hash, cachedKey{p: p}, time.Time{})
			}
		}
		if err != nil {
			s.Log.Error().Err(err).Msg("key lookup failed")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "authentication is unavailable; retry later", nil)
			return
		}
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "unknown, expired or revoked API key", nil)
			return
		}
		if info, ok := r.Context().Value(logKey{}).(*logInfo); ok {
			info.principal = p
		}
		ctx := context.WithValue(r.Context(), principalKey{}, p)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func principal(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// testKeys lets the in-memory store (unit tests, one-off runs) use readable keys.
func testKeys(k KeyStore) bool { _, ok := k.(*MemoryKeys); return ok }
