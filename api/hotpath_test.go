package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// countingDB counts the round trips made to the store.
type countingDB struct {
	store.DB
	reads, writes atomic.Int64
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads.Add(1)
	return c.DB.GetItem(ctx, in, o...)
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.reads.Add(1)
	return c.DB.Query(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.writes.Add(1)
	return c.DB.PutItem(ctx, in, o...)
}

func (c *countingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.writes.Add(1)
	return c.DB.TransactWriteItems(ctx, in, o...)
}

func (c *countingDB) total() int64 { return c.reads.Load() + c.writes.Load() }

func claimServer(t *testing.T) (*Server, *countingDB) {
	t.Helper()
	fake := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"},
		"taxpayers": {PK: "inn"}, "ledger": {PK: "inn", SK: "entry_id"}})
	ctx := context.Background()
	for _, item := range []any{
		contract.Taxpayer{INN: "500100732259", AccountState: "active", Bank: &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}},
		contract.LedgerEntry{INN: "500100732259", EntryID: "2025#ndfl#1", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 100_000},
	} {
		table, key := "taxpayers", "inn"
		if _, ok := item.(contract.LedgerEntry); ok {
			table, key = "ledger", "entry_id"
		}
		if created, err := store.PutNew(ctx, fake, table, key, item); err != nil || !created {
			t.Fatal(created, err)
		}
	}
	db := &countingDB{DB: fake}
	s, _ := newTestServer()
	s.DB, s.Taxpayers, s.Ledger = db, "taxpayers", "ledger"
	return s, db
}

// A claim's facts, once found, are not read again; a refusal is never kept; requisites
// are always read fresh.
func TestClaimChecksReadOnceThenFromCache(t *testing.T) {
	s, db := claimServer(t)
	ctx := context.Background()
	claim := CreateRefundRequest{INN: "500100732259", Period: 2025, Amount: 500, Reason: "overpaid"}
	if v := s.checkRefundClaim(ctx, claim); v.status != 0 || db.reads.Load() != 2 {
		t.Fatalf("first claim: %+v after %d reads (want accepted after the registry and the ledger)", v, db.reads.Load())
	}
	if v := s.checkRefundClaim(ctx, claim); v.status != 0 || db.reads.Load() != 2 {
		t.Fatalf("second claim: %+v, %d reads in all (want none more)", v, db.reads.Load())
	}
	other := claim
	other.Period = 2024 // no payment that year
	for i := range 2 {
		if v := s.checkRefundClaim(ctx, other); v.status != http.StatusUnprocessableEntity || v.code != "no_payments_in_period" {
			t.Fatalf("claim %d for an unpaid period: %+v", i, v)
		}
	}
	if db.reads.Load() != 6 {
		t.Fatalf("a refused claim's facts were cached: %d reads", db.reads.Load())
	}
	withBank := claim
	withBank.BIK, withBank.Account = "044525225", "40817810938160925983"
	if v := s.checkRefundClaim(ctx, withBank); v.status != http.StatusConflict || v.code != "requisites_mismatch" || db.reads.Load() != 7 {
		t.Fatalf("other requisites: %+v after %d reads (want 409 after one fresh registry read)", v, db.reads.Load())
	}
}

// On the warm path a create makes one round trip: the start of its case, nothing in front
// of it and nothing after it (no store read or write, no other Temporal call); a retry
// right after the answer is replayed from the case.
func TestCreatePathMakesOneRoundTrip(t *testing.T) {
	s, h, tmp := createServer(t)
	db := &countingDB{DB: s.DB}
	s.DB = db
	// Warm the caches: the key's principal and the claim's facts.
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "warm"); rec.Code != http.StatusCreated {
		t.Fatal(rec.Code, rec.Body)
	}
	var before, atStart int64
	tmp.onStart = func() { atStart = db.total() }
	before = db.total()
	attempts, describes := tmp.attempts.Load(), tmp.describes.Load()
	first := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "hot-1")
	if first.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", first.Code, first.Body)
	}
	if n, all := atStart-before, db.total()-before; n != 0 || all != 0 {
		t.Fatalf("%d store round trips before the start and %d in all, want none", n, all)
	}
	if a, d := tmp.attempts.Load()-attempts, tmp.describes.Load()-describes; a != 1 || d != 0 {
		t.Fatalf("%d starts and %d describes for a new case, want one start", a, d)
	}
	again := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "hot-1")
	if again.Code != http.StatusCreated || again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry right after the answer: %d %s (first %s)", again.Code, again.Body, first.Body)
	}
}

func TestTTLCacheExpiresAndStaysBounded(t *testing.T) {
	c := newTTLCache[int](3, time.Minute)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }
	c.put("a", 1, time.Time{})
	c.put("b", 2, now.Add(10*time.Second))
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("a: %v %v", v, ok)
	}
	now = now.Add(11 * time.Second)
	if _, ok := c.get("b"); ok {
		t.Fatal("b outlived its own bound")
	}
	for i, k := range []string{"c", "d", "e", "f"} {
		c.put(k, i, time.Time{})
	}
	if len(c.m) > 3 {
		t.Fatalf("%d entries in a cache of 3", len(c.m))
	}
	if _, ok := c.get("f"); !ok {
		t.Fatal("the newest entry was evicted")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := c.get("f"); ok {
		t.Fatal("an entry outlived the TTL")
	}
	c.drop("f")
	if _, ok := c.m["f"]; ok {
		t.Fatal("drop kept the entry")
	}
}
