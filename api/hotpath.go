package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The create path (POST /v1/refunds and the other creates) makes one round trip when its
// caches are warm: the start of its case, which is also its idempotency check (create.go).
// What it reads besides comes from two small caches, each safe for a reason of its own:
//
//   - a principal found for a key hash (keyCache) is used only by the create routes, for
//     at most CreateKeyRevocationBound: a revoked or expired key is refused by every
//     create once that bound has passed since it was last read, and by every read at once
//     (reads do not use the cache);
//   - a claim's facts "the taxpayer is registered and paid in this period" (factCache) are
//     kept once seen: the registry and the ledger of payments only grow, and the refund
//     workflow checks the overpayment again in its first step, so the API's check is a
//     fast refusal, not the guard of the money (the ledger's conditional writes are).
//
// A miss costs the lookup before the start.

// CreateKeyRevocationBound is how long after its revocation (or expiry) an API key may
// still create a case: the create routes reuse a key's principal for this long before
// reading the key again. Reads, and every other route, read the key on each request.
const CreateKeyRevocationBound = 5 * time.Second

// keyCacheTTL bounds how long a key's principal is reused before it is read again (and its
// last use noted, to the minute, as the key list shows it).
const keyCacheTTL = CreateKeyRevocationBound

// factCacheTTL bounds how long a claim's facts are reused; factCacheSize how many are kept.
const (
	factCacheTTL  = 10 * time.Minute
	factCacheSize = 100_000
	keyCacheSize  = 10_000
)

// ttlCache is a bounded map whose entries expire. When full, an insert first drops the
// expired entries and then, if need be, arbitrary ones: a miss only costs a lookup.
type ttlCache[V any] struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	m   map[string]ttlEntry[V]
	now func() time.Time
}

type ttlEntry[V any] struct {
	v   V
	exp time.Time
}

func newTTLCache[V any](max int, ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{max: max, ttl: ttl, m: map[string]ttlEntry[V]{}, now: time.Now}
}

func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put keeps v until the cache's TTL or until, whichever is sooner (zero: no bound).
func (c *ttlCache[V]) put(k string, v V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	exp := now.Add(c.ttl)
	if !until.IsZero() && until.Before(exp) {
		exp = until
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for key, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, key)
			}
		}
		for key := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, key)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, exp: exp}
}

func (c *ttlCache[V]) drop(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
}

// hotPath holds the create path's caches.
type hotPath struct {
	once  sync.Once
	keys  *ttlCache[cachedKey]
	facts *ttlCache[struct{}]
	// pinnedUntil: this process's case-id key was found to be the recorded one, and is
	// taken to be until then (unix ns; caseidpin.go); pinLogged: when a refusal was last
	// logged.
	pinnedUntil, pinLogged atomic.Int64
}

// cachedKey is a key's principal as last read.
type cachedKey struct{ p Principal }

func (s *Server) hot() *hotPath {
	s.hotState.once.Do(func() {
		s.hotState.keys = newTTLCache[cachedKey](keyCacheSize, keyCacheTTL)
		s.hotState.facts = newTTLCache[struct{}](factCacheSize, factCacheTTL)
	})
	return &s.hotState
}

// precheck is work a create handler needs that the create middleware starts as soon as
// the request is decoded; the handler takes the result with awaitPrecheck before it
// starts the case (a refused claim starts nothing). A handler called without the
// middleware (unit tests) runs it itself.
type precheck struct {
	done chan struct{}
	res  any
}

type precheckCtx struct{}

// prechecks are, per create route, the checks to start early from the decoded request.
var prechecks = map[string]func(s *Server, ctx context.Context, req any) any{
	"POST /v1/refunds": (*Server).refundPrecheck,
}

func (s *Server) startPrecheck(ctx context.Context, op string, req any) *precheck {
	f, ok := prechecks[op]
	if !ok || req == nil {
		return nil
	}
	p := &precheck{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.res = f(s, ctx, req)
	}()
	return p
}

// awaitPrecheck returns what the middleware's precheck found, or nil when none ran.
func awaitPrecheck(ctx context.Context) any {
	p, ok := ctx.Value(precheckCtx{}).(*precheck)
	if !ok || p == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.res
	case <-ctx.Done():
		return nil
	}
}
