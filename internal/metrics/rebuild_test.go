package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// stepDuringScan writes a step the first time the case projections are scanned: a step
// committed while a rebuild counts.
type stepDuringScan struct {
	*storetest.DB
	step func()
}

func (s *stepDuringScan) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := s.DB.Scan(ctx, in, o...)
	if *in.TableName == "cases" && s.step != nil {
		step := s.step
		s.step = nil
		step() // after the scan read the projections: the scan's count misses it
	}
	return out, err
}

func counterTotals(t *testing.T, db *storetest.DB) string {
	t.Helper()
	sum := map[string][2]int64{}
	for _, it := range db.Items("counts") {
		var c struct {
			Key      string `json:"counter"`
			N        int64  `json:"n"`
			Approved int64  `json:"approved"`
		}
		if err := store.Unmarshal(it, &c); err != nil {
			t.Fatal(err)
		}
		p, s, _, _ := transition.ParseCounterKey(c.Key)
		v := sum[p+"/"+s]
		sum[p+"/"+s] = [2]int64{v[0] + c.N, v[1] + c.Approved}
	}
	for k, v := range sum {
		if v == [2]int64{} {
			delete(sum, k)
		}
	}
	return fmt.Sprint(sum)
}

func projectionTotals(t *testing.T, db *storetest.DB) string {
	t.Helper()
	sum := map[string][2]int64{}
	for _, it := range db.Items("cases") {
		var r contract.CaseRecord
		if err := store.Unmarshal(it, &r); err != nil {
			t.Fatal(err)
		}
		v := sum[r.Process+"/"+r.Status]
		sum[r.Process+"/"+r.Status] = [2]int64{v[0] + 1, v[1] + r.Amounts["approved"]}
	}
	return fmt.Sprint(sum)
}

// The rebuild writes the counters a full count gives, again and again (idempotent), and
// a step committed while it scans is neither lost nor counted twice.
func TestRebuildCounts(t *testing.T) {
	ctx := context.Background()
	idx, h := newCases()
	db := idx.DB.(*storetest.DB)
	for i := range 300 {
		idx.put(t, h, contract.CaseRecord{CaseID: fmt.Sprintf("c-%d", i), Process: "refund", Status: []string{"received", "approved", "paid"}[i%3],
			Amounts: map[string]int64{"approved": int64(i)}})
	}
	// counters lost (data from before them) and some wrong
	for _, it := range db.Items("counts")[:3] {
		var c struct {
			Key string `json:"counter"`
		}
		_ = store.Unmarshal(it, &c)
		db.Replace("counts", transition.CountKey, map[string]any{"counter": c.Key, "n": 7, "updates": 1})
	}
	if counterTotals(t, db) == projectionTotals(t, db) {
		t.Fatal("the damaged counters already agree")
	}
	res, err := metrics.RebuildCounts(ctx, db, "cases", "counts", 3)
	if err != nil || len(res.Busy) != 0 || res.Cases != 300 {
		t.Fatalf("%+v %v", res, err)
	}
	if got, want := counterTotals(t, db), projectionTotals(t, db); got != want {
		t.Fatalf("counters %s, full count %s", got, want)
	}
	if _, err := metrics.RebuildCounts(ctx, db, "cases", "counts", 3); err != nil {
		t.Fatal(err)
	}
	if got, want := counterTotals(t, db), projectionTotals(t, db); got != want {
		t.Fatalf("second run: counters %s, full count %s", got, want)
	}

	// a step while the rebuild scans: c-0 received → approved, and a new case
	racing := &stepDuringScan{DB: db, step: func() {
		in := contract.RecordInput{CaseID: "c-0", Seq: 2, Case: &contract.CaseRecord{Process: "refund", Status: "approved",
			UpdatedAt: time.Now(), Amounts: map[string]int64{"approved": 500}}}
		if _, err := h.Record(ctx, in); err != nil {
			t.Fatal(err)
		}
		idx.put(t, h, contract.CaseRecord{CaseID: "new", Process: "refund", Status: "received"})
	}}
	res, err = metrics.RebuildCounts(ctx, racing, "cases", "counts", 3)
	if err != nil || len(res.Busy) != 0 || res.Passes != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if got, want := counterTotals(t, db), projectionTotals(t, db); got != want {
		t.Fatalf("after a racing step: counters %s, full count %s", got, want)
	}
}
