package eventrelay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// world is a set of cases, each owned by a tenant or by none (an account), whose
// transitions commit events in seq order the way record-transition writes them.
type world struct {
	db     *memDB
	tenant map[string]string // case → owner ("" none)
	next   map[string]int64  // case → seq of its next transition
	cases  []string
	clock  atomic.Int64
}

func newWorld(t *testing.T, db *memDB, owners map[string]string) *world {
	t.Helper()
	w := &world{db: db, tenant: owners, next: map[string]int64{}}
	for c, tenant := range owners {
		w.cases = append(w.cases, c)
		w.next[c] = 1
		if tenant != "" {
			av, err := store.Marshal(tasks.Owner{CaseID: c, Tenant: tenant, CreatedBy: tenant + "/integrator"})
			if err != nil {
				t.Fatal(err)
			}
			db.put("owners", av)
		}
	}
	sortStrings(w.cases)
	return w
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// commit writes a case's next transition's event (pending), as the step's transaction does.
func (w *world) commit(t *testing.T, c string) {
	t.Helper()
	seq := w.next[c]
	w.next[c]++
	at := t0.Add(time.Duration(w.clock.Add(1)) * time.Millisecond)
	status := fmt.Sprintf("s%d", seq)
	av, err := store.Marshal(events.Item{Event: events.Event{ID: events.ID(c, seq), Type: events.Type("refund", status), CaseID: c,
		Process: "refund", Status: status, StatusLabel: "label " + status, Seq: seq, OccurredAt: at},
		State: events.StatePending, ExpiresAt: at.Add(events.Keep).Unix(), At: events.IndexTime(at)})
	if err != nil {
		t.Fatal(err)
	}
	w.db.mu.Lock()
	w.db.put("events", av)
	w.db.mu.Unlock()
}

func (w *world) handler() Handler {
	return Handler{DB: w.db, Events: "events", Feed: "feed", Owners: "owners", Poll: time.Millisecond,
		Now: func() time.Time { return t0.Add(time.Hour) }}
}

// check asserts the relay's promises once everything committed has been relayed: every
// event of a tenant's case is in that tenant's feed exactly once and in no other; feeds
// are numbered 1..n without gaps and the counter says n; a case's entries are in seq
// order; an event of a case without a tenant is relayed to no feed.
func (w *world) check(t *testing.T) {
	t.Helper()
	w.db.mu.Lock()
	defer w.db.mu.Unlock()
	for _, it := range w.db.items["events"] {
		var e events.Item
		if err := store.Unmarshal(it, &e); err != nil {
			t.Fatal(err)
		}
		if e.State != events.StateRelayed || e.Tenant != w.tenant[e.CaseID] || e.At != "" {
			t.Fatalf("event %s: state %q tenant %q (owner %q) at %q", e.ID, e.State, e.Tenant, w.tenant[e.CaseID], e.At)
		}
	}
	feeds := map[string][]events.FeedEntry{}
	counters := map[string]int64{}
	for _, it := range w.db.items["feed"] {
		var f events.FeedEntry
		if err := store.Unmarshal(it, &f); err != nil {
			t.Fatal(err)
		}
		if f.Pos == 0 {
			counters[f.Tenant] = num64(it[events.Counter])
			if _, ok := it["expires_at"]; ok {
				t.Fatalf("tenant %s: the counter expires (positions would be reused)", f.Tenant)
			}
			continue
		}
		feeds[f.Tenant] = append(feeds[f.Tenant], f)
	}
	seen := map[string]bool{}
	for tenant, entries := range feeds {
		if tenant == "" {
			t.Fatalf("a feed of no tenant: %d entries", len(entries))
		}
		byPos := make([]events.FeedEntry, len(entries)+1)
		for _, f := range entries {
			if f.Pos < 1 || f.Pos > int64(len(entries)) || byPos[f.Pos].ID != "" {
				t.Fatalf("tenant %s: position %d of %d entries (gap or duplicate)", tenant, f.Pos, len(entries))
			}
			byPos[f.Pos] = f
		}
		if counters[tenant] != int64(len(entries)) {
			t.Fatalf("tenant %s: counter %d, %d entries", tenant, counters[tenant], len(entries))
		}
		last := map[string]int64{}
		for _, f := range byPos[1:] {
			if seen[f.ID] {
				t.Fatalf("event %s twice in the feeds", f.ID)
			}
			seen[f.ID] = true
			if w.tenant[f.CaseID] != tenant {
				t.Fatalf("event %s of tenant %q's case in tenant %s's feed", f.ID, w.tenant[f.CaseID], tenant)
			}
			if f.Seq != last[f.CaseID]+1 {
				t.Fatalf("tenant %s, pos %d: %s after seq %d of its case", tenant, f.Pos, f.ID, last[f.CaseID])
			}
			last[f.CaseID] = f.Seq
		}
	}
	for _, c := range w.cases {
		if w.tenant[c] == "" {
			continue
		}
		for seq := int64(1); seq < w.next[c]; seq++ {
			if !seen[events.ID(c, seq)] {
				t.Fatalf("event %s is in no feed", events.ID(c, seq))
			}
		}
	}
}

// drain relays until nothing is pending (the index fresh at last).
func (w *world) drain(t *testing.T, h Handler) {
	t.Helper()
	w.db.rng = nil
	for i := 0; i < 100; i++ {
		res, err := h.Relay(context.Background(), events.RelayInput{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Relayed+res.NoTenant == 0 && res.Conflicts == 0 {
			return
		}
	}
	t.Fatal("the relay never ran out of pending events")
}

func owners(n int) map[string]string {
	out := map[string]string{}
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 3:
			out[fmt.Sprintf("account-%02d", i)] = "" // an account: no tenant
		default:
			out[fmt.Sprintf("refund-%02d", i)] = []string{"bank-a", "bank-b", "bank-c"}[i%3]
		}
	}
	return out
}

// Random interleavings, from a seed, of commits and relays over a lagging index, with a
// second relay that runs between another relay's reads and its transaction (so relays
// lose races): every event once, in its case's order, in its tenant's feed only, feeds
// without gaps.
func TestRelayInterleavingsKeepOrderAndOnce(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			db := newMemDB(rng, 0.5)
			w := newWorld(t, db, owners(9))
			a, b := w.handler(), w.handler()
			var nested atomic.Bool
			conflicts := 0
			db.before = func() {
				// Another relay slips in: between this relay's reads and its transaction.
				if rng.Float64() < 0.3 && nested.CompareAndSwap(false, true) {
					defer nested.Store(false)
					res, err := b.Relay(context.Background(), events.RelayInput{Limit: 1 + rng.IntN(5)})
					if err != nil {
						t.Error(err)
					}
					conflicts += res.Conflicts
				}
			}
			for step := 0; step < 300; step++ {
				if rng.Float64() < 0.6 {
					w.commit(t, w.cases[rng.IntN(len(w.cases))])
					continue
				}
				res, err := a.Relay(context.Background(), events.RelayInput{Limit: 1 + rng.IntN(8)})
				if err != nil {
					t.Fatal(err)
				}
				conflicts += res.Conflicts
			}
			db.before = nil
			w.drain(t, a)
			w.check(t)
			if seed == 1 && conflicts == 0 {
				t.Error("no relay ever lost a race: the interleaving does not test what it should")
			}
		})
	}
}

// Two relays at once (real goroutines, under -race) while cases commit.
func TestRelaysRacing(t *testing.T) {
	db := newMemDB(rand.New(rand.NewPCG(3, 3)), 0.3)
	var mu sync.Mutex // the fake's rng is not safe for concurrent use
	db.rng = nil
	w := newWorld(t, db, owners(12))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := w.handler()
			h.Now = time.Now
			for ctx.Err() == nil {
				if _, err := h.Relay(ctx, events.RelayInput{Limit: 5}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 500; i++ {
		mu.Lock()
		c := w.cases[rng.IntN(len(w.cases))]
		mu.Unlock()
		w.commit(t, c)
	}
	cancel()
	wg.Wait()
	w.drain(t, w.handler())
	w.check(t)
}

// An event whose case has no tenant is relayed to no feed, marked relayed with tenant "".
func TestEventWithoutTenantGoesToNoFeed(t *testing.T) {
	db := newMemDB(nil, 0)
	w := newWorld(t, db, map[string]string{"account-x": "", "refund-1": "bank-a"})
	w.commit(t, "account-x")
	w.commit(t, "refund-1")
	res, err := w.handler().Relay(context.Background(), events.RelayInput{})
	if err != nil || res.Relayed != 1 || res.NoTenant != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	w.check(t)
}

// A long case (more events than a transaction holds) is relayed in order over several
// transactions.
func TestLongCaseOverSeveralTransactions(t *testing.T) {
	db := newMemDB(nil, 0)
	w := newWorld(t, db, map[string]string{"refund-1": "bank-a", "refund-2": "bank-a"})
	for i := 0; i < 130; i++ {
		w.commit(t, "refund-1")
		if i%2 == 0 {
			w.commit(t, "refund-2")
		}
	}
	res, err := w.handler().Relay(context.Background(), events.RelayInput{Limit: 1000})
	if err != nil || res.Relayed != 195 {
		t.Fatalf("%+v %v", res, err)
	}
	if db.txs < 4 {
		t.Fatalf("%d transactions for 195 events", db.txs)
	}
	w.check(t)
}

// Idle, the relay waits for new events and returns once it relayed one.
func TestRelayWaitsForNewEvents(t *testing.T) {
	db := newMemDB(nil, 0)
	w := newWorld(t, db, map[string]string{"refund-1": "bank-a"})
	h := w.handler()
	h.Now = time.Now
	done := make(chan events.RelayResult, 1)
	go func() {
		res, err := h.Relay(context.Background(), events.RelayInput{WaitMillis: 120_000})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(20 * time.Millisecond)
	w.commit(t, "refund-1")
	select {
	case res := <-done:
		if res.Relayed != 1 || res.Passes < 2 {
			t.Fatalf("%+v", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not return after relaying what came while it waited")
	}
	w.check(t)
	// Nothing comes: it returns when the wait runs out.
	res, err := h.Relay(context.Background(), events.RelayInput{WaitMillis: 30})
	if err != nil || res.Relayed != 0 || res.Passes < 2 {
		t.Fatalf("idle: %+v %v", res, err)
	}
}

func TestRelayRefusesBadInput(t *testing.T) {
	h := newWorld(t, newMemDB(nil, 0), nil).handler()
	for _, in := range []events.RelayInput{{WaitMillis: -1}, {WaitMillis: 10 * 60 * 1000}, {Limit: -1}, {Limit: 5000}} {
		_, err := h.Relay(context.Background(), in)
		if fe, ok := err.(*fnerr.Error); !ok || fe.Type != fnerr.TypeInvalidInput {
			t.Errorf("%+v: %v", in, err)
		}
	}
}
