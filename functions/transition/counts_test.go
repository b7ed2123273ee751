package transition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func countedDB() *storetest.DB {
	return storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"},
		"t-outbox": {PK: "notification_id"}, "t-counts": {PK: CountKey}})
}

func counted(db store.DB) Handler {
	return Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox", Counts: "t-counts"}
}

// tally is n and the approved sum per (process, status): from the counters (summed over
// shards), and from a full count of the projections.
type tally map[[2]string][2]int64

func fromCounters(t *testing.T, db *storetest.DB) tally {
	t.Helper()
	out := tally{}
	for _, it := range db.Items("t-counts") {
		p, s, _, ok := ParseCounterKey(attr(it, CountKey))
		if !ok {
			t.Fatalf("counter key %q", attr(it, CountKey))
		}
		var c struct {
			N        int64 `json:"n"`
			Approved int64 `json:"approved"`
		}
		if err := store.Unmarshal(it, &c); err != nil {
			t.Fatal(err)
		}
		v := out[[2]string{p, s}]
		out[[2]string{p, s}] = [2]int64{v[0] + c.N, v[1] + c.Approved}
	}
	for k, v := range out {
		if v == [2]int64{} {
			delete(out, k)
		}
	}
	return out
}

func fromProjections(t *testing.T, db *storetest.DB) tally {
	t.Helper()
	out := tally{}
	for _, it := range db.Items("t-cases") {
		var r contract.CaseRecord
		if err := store.Unmarshal(it, &r); err != nil {
			t.Fatal(err)
		}
		v := out[[2]string{r.Process, r.Status}]
		out[[2]string{r.Process, r.Status}] = [2]int64{v[0] + 1, v[1] + r.Amounts["approved"]}
	}
	return out
}

var statuses = []string{"received", "awaiting_info", "in_review", "approved", "payout_failed", "paid", "rejected"}

// Random sequences of steps — status changes, steps that keep the status and change the
// amount or nothing, steps riding in another transaction (Prepare + Puts), retries of
// written steps, duplicates sent again much later, a step prepared before the one it
// follows was written — keep the counters equal to a full count of the projections.
// Reproducible: TAXFLOW_COUNTS_SEED=<n> replays a run.
func TestCountersMatchAFullCount(t *testing.T) {
	seed := uint64(20261122)
	if s := os.Getenv("TAXFLOW_COUNTS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx := context.Background()
	db := countedDB()
	h := counted(db)
	type kase struct {
		id, process string
		seq         int64
		written     []contract.RecordInput
	}
	var all []*kase
	for i := range 60 {
		all = append(all, &kase{id: fmt.Sprintf("case-%d", i), process: []string{"refund", "identity"}[i%2]})
	}
	next := func(c *kase) contract.RecordInput {
		status := statuses[rng.IntN(len(statuses))]
		amounts := map[string]int64{"claimed": 100}
		if c.seq > 0 && rng.IntN(3) == 0 { // keep the status of the last step written
			status = c.written[len(c.written)-1].Case.Status
		}
		if rng.IntN(2) == 0 {
			amounts["approved"] = int64(rng.IntN(5)) * 1000
		}
		return contract.RecordInput{CaseID: c.id, Seq: c.seq + 1,
			Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "status_changed", To: status}},
			Case:    &contract.CaseRecord{Process: c.process, Status: status, Version: c.seq + 1, UpdatedAt: at, Amounts: amounts}}
	}
	for op := range 3000 {
		c := all[rng.IntN(len(all))]
		switch r := rng.IntN(10); {
		case r < 5: // a step through Record, sometimes retried at once
			in := next(c)
			for range 1 + rng.IntN(2) {
				if _, err := h.Record(ctx, in); err != nil {
					t.Fatalf("op %d: %v", op, err)
				}
			}
			c.seq++
			c.written = append(c.written, in)
		case r < 7: // a step riding in another operation's transaction
			in := next(c)
			s, err := h.Prepare(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: s.Puts()}); err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
			c.seq++
			c.written = append(c.written, in)
		case r < 9: // an old step sent again: a duplicate, through either path
			if len(c.written) == 0 {
				continue
			}
			in := c.written[rng.IntN(len(c.written))]
			if rng.IntN(2) == 0 {
				if res, err := h.Record(ctx, in); err != nil || !res.Duplicate {
					t.Fatalf("op %d: replay of %s: %+v %v", op, contract.RecordKey(in.CaseID, in.Seq), res, err)
				}
				continue
			}
			s, err := h.Prepare(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: s.Puts()}); err == nil {
				t.Fatalf("op %d: a written step was written again", op)
			}
		default: // a step prepared before the step it follows is written (a late attempt)
			first := next(c)
			second := first
			second.Seq, second.Case = first.Seq+1, &contract.CaseRecord{Process: c.process, Status: statuses[rng.IntN(len(statuses))],
				Version: first.Seq + 1, UpdatedAt: at}
			early, err := h.Prepare(ctx, second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.Record(ctx, first); err != nil {
				t.Fatal(err)
			}
			_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: early.Puts()})
			if err == nil {
				t.Fatalf("op %d: a step prepared without its prior status was written", op)
			}
			c.seq++
			c.written = append(c.written, first)
			if rng.IntN(2) == 0 { // its retry goes through
				if _, err := h.Record(ctx, second); err != nil {
					t.Fatal(err)
				}
				c.seq++
				c.written = append(c.written, second)
			}
		}
		if op%250 == 0 || op == 2999 {
			if got, want := fromCounters(t, db), fromProjections(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("op %d (seed %d): counters %v, full count %v", op, seed, got, want)
			}
		}
	}
}

// A step whose predecessor was not at version seq-1 when it was prepared never writes:
// its transaction is cancelled, and Record answers a retryable error (not a Conflict)
// when the projection reached version seq-1 meanwhile.
func TestStepPreparedBeforeItsPriorIsRetried(t *testing.T) {
	ctx := context.Background()
	db := countedDB()
	h := counted(db)
	if _, err := h.Record(ctx, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	early, err := h.Prepare(ctx, step(3, "in_review", "approved"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Record(ctx, step(2, "received", "in_review")); err != nil {
		t.Fatal(err)
	}
	_, err = db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: early.Puts()})
	tce := cancelled(t, err)
	res, mine, err := early.Explain(ctx, tce, 0)
	if !mine || err == nil || isType(err, "Conflict") || isType(err, "KeyReused") || res.Duplicate {
		t.Fatalf("want a retryable error, got %+v %v %v", res, mine, err)
	}
	if _, err := h.Record(ctx, step(3, "in_review", "approved")); err != nil {
		t.Fatal(err)
	}
	if got := fromCounters(t, db); fmt.Sprint(got) != "map[[refund approved]:[1 0]]" {
		t.Fatalf("counters %v", got)
	}
	// the counter moved in the case's shard only
	for _, it := range db.Items("t-counts") {
		if _, _, shard, _ := ParseCounterKey(attr(it, CountKey)); shard != Shard(caseID) {
			t.Fatalf("counter in shard %d, the case's is %d", shard, Shard(caseID))
		}
	}
}

func cancelled(t *testing.T, err error) []types.CancellationReason {
	t.Helper()
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("want a cancelled transaction, got %v", err)
	}
	return tce.CancellationReasons
}
