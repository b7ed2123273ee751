//go:build integration

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/store"
)

// gaugeProcesses are the worker's processes (cmd/taxflow Processes) as far as this test
// moves cases: refunds and identity checks, open and closed statuses.
var gaugeProcesses = []metrics.Process{
	{Name: "refund", Open: []string{"received", "awaiting_info", "in_review", "approved", "payout_failed"},
		Reserved: []string{"approved", "payout_failed"}, Paid: "paid"},
	{Name: "identity", Open: []string{"received", "checking", "needs_documents", "manual_review"}},
}

var gaugeStatuses = map[string][]string{
	"refund":   {"received", "awaiting_info", "in_review", "approved", "payout_failed", "paid", "rejected", "withdrawn"},
	"identity": {"received", "checking", "needs_documents", "manual_review", "verified", "rejected"},
}

// TestBusinessGaugesExactAtScale moves N cases (TAXFLOW_GAUGES_CASES, 2,000 by default;
// 100000 for the season's check) through random statuses, deadlines and amounts on the
// stack's DynamoDB, steps retried and sent twice, some through the deployed
// record-transition function, concurrently; then the business gauges must equal a full
// count of the case projections, and a rebuild of the counters must change nothing.
// TAXFLOW_GAUGES_SEED replays a run.
func TestBusinessGaugesExactAtScale(t *testing.T) {
	ctx := context.Background()
	n := 2000
	if s := os.Getenv("TAXFLOW_GAUGES_CASES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("TAXFLOW_GAUGES_CASES=%q: a number of cases", s)
		}
		n = v
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TAXFLOW_GAUGES_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("%d cases, seed %d (TAXFLOW_GAUGES_SEED)", n, seed)
	db := shared.clients.DynamoDB
	casesTable, countsTable := shared.cfg.Name(cases.Table), shared.cfg.Name(transition.CountsTable)
	h := transition.Handler{DB: db, Journal: shared.cfg.Name(audit.Table), Cases: casesTable,
		Outbox: shared.cfg.Name(notify.Table), Counts: countsTable}
	// The stack may hold cases written before (other tests): count them once.
	if res, err := metrics.RebuildCounts(ctx, db, casesTable, countsTable, 5); err != nil || len(res.Busy) > 0 {
		t.Fatalf("baseline rebuild: %+v %v", res, err)
	}

	now := time.Now().UTC()
	run := uuid.NewString()[:8]
	start := time.Now()
	var steps, duplicates, viaFunction sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if err := moveCase(ctx, t, h, rand.New(rand.NewPCG(seed, uint64(i))), fmt.Sprintf("gauges-%s-%d", run, i), i, now,
					&steps, &duplicates, &viaFunction); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := func(m *sync.Map) (s int) {
		m.Range(func(_, v any) bool { s += v.(int); return true })
		return s
	}
	t.Logf("moved %d cases: %d steps (%d sent twice, %d through the deployed function) in %s",
		n, total(&steps), total(&duplicates), total(&viaFunction), time.Since(start).Round(time.Millisecond))

	m := metrics.New(nil, nil)
	b := &metrics.Business{DB: db, Table: casesTable, Index: "by_status", Counts: countsTable, Processes: gaugeProcesses,
		Calendar: calendar.Shared(), Now: func() time.Time { return now }}
	b.Register(m)
	began := time.Now()
	if err := b.Update(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("gauges computed in %s", time.Since(began).Round(time.Millisecond))
	got := gathered(t, m)
	want := fullCount(t, casesTable, now)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, full count %v", k, got[k], v)
		}
	}
	t.Logf("full count: %v", want)

	res, err := metrics.RebuildCounts(ctx, db, casesTable, countsTable, 5)
	if err != nil || len(res.Busy) > 0 {
		t.Fatalf("rebuild: %+v %v", res, err)
	}
	if err := b.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if again := gathered(t, m); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Errorf("the rebuild changed the gauges:\nbefore %v\nafter  %v", got, again)
	}
}

// moveCase writes a case's steps: 1 to 5 status changes (some keep the status and change
// the amount), each sent twice at random, every 50th case through the deployed function.
func moveCase(ctx context.Context, t *testing.T, h transition.Handler, rng *rand.Rand, id string, i int, now time.Time,
	steps, duplicates, viaFunction *sync.Map) error {
	process := []string{"refund", "identity"}[i%2]
	statuses := gaugeStatuses[process]
	k := 1 + rng.IntN(5)
	var last string
	for seq := int64(1); seq <= int64(k); seq++ {
		status := statuses[rng.IntN(len(statuses))]
		if seq == 1 {
			status = "received"
		} else if rng.IntN(4) == 0 {
			status = last
		}
		rec := &contract.CaseRecord{Process: process, Status: status, Label: status, Version: seq,
			UpdatedAt: now.Add(-time.Duration(rng.IntN(72)) * time.Hour)}
		if rng.IntN(4) > 0 { // a deadline from 10 days ago to 20 days ahead
			rec.Deadline = now.Add(time.Duration(rng.IntN(30*24)-10*24) * time.Hour)
		}
		if status == "approved" || status == "payout_failed" || status == "paid" {
			rec.Amounts = map[string]int64{"approved": int64(1+rng.IntN(1000)) * 100, "paid": int64(rng.IntN(2)) * 100}
		}
		in := contract.RecordInput{CaseID: id, Seq: seq, Case: rec,
			Entries: []contract.AuditEntry{{At: rec.UpdatedAt, Actor: "system", Action: "status_changed", From: last, To: status}}}
		sends := 1 + rng.IntN(2)
		for s := range sends {
			if i%50 == 0 {
				if _, typ := invokeRecord(t, in); typ != "" {
					return fmt.Errorf("%s step %d through the function: %s", id, seq, typ)
				}
				viaFunction.Store(fmt.Sprint(id, seq, s), 1)
				continue
			}
			res, err := h.Record(ctx, in)
			if err != nil {
				return fmt.Errorf("%s step %d: %w", id, seq, err)
			}
			if s > 0 && !res.Duplicate {
				return fmt.Errorf("%s step %d sent again was not a duplicate", id, seq)
			}
		}
		steps.Store(fmt.Sprint(id, seq), 1)
		if sends > 1 {
			duplicates.Store(fmt.Sprint(id, seq), 1)
		}
		last = status
	}
	return nil
}

// fullCount computes the business gauges from a full consistent scan of the projections.
func fullCount(t *testing.T, table string, now time.Time) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	nearBy := calendar.Shared().AddWorkingDays(now, metrics.NearWorkingDays)
	m := now.In(calendar.Moscow)
	midnight := time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, calendar.Moscow)
	for _, p := range gaugeProcesses {
		for _, s := range p.Open {
			out[fmt.Sprintf(`%s{process=%q,status=%q}`, metrics.CasesOpen, p.Name, s)] = 0
		}
		out[fmt.Sprintf(`%s{process=%q}`, metrics.CasesDeadlineNear, p.Name)] = 0
		out[fmt.Sprintf(`%s{process=%q}`, metrics.CasesOverdue, p.Name)] = 0
	}
	out[metrics.ReservedKopecks], out[metrics.PayoutsToday], out[metrics.PaidTodayKopecks] = 0, 0, 0
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	for {
		page, err := shared.clients.DynamoDB.Scan(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		var recs []contract.CaseRecord
		if err := store.UnmarshalList(page.Items, &recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			for _, p := range gaugeProcesses {
				if p.Name != r.Process {
					continue
				}
				if p.Paid == r.Status && !r.UpdatedAt.Before(midnight) {
					out[metrics.PayoutsToday]++
					out[metrics.PaidTodayKopecks] += float64(r.Amounts["paid"])
				}
				if !contains(p.Open, r.Status) {
					continue
				}
				out[fmt.Sprintf(`%s{process=%q,status=%q}`, metrics.CasesOpen, p.Name, r.Status)]++
				if contains(p.Reserved, r.Status) {
					out[metrics.ReservedKopecks] += float64(r.Amounts["approved"])
				}
				switch {
				case r.Deadline.IsZero():
				case r.Deadline.Before(now):
					out[fmt.Sprintf(`%s{process=%q}`, metrics.CasesOverdue, p.Name)]++
				case r.Deadline.Before(nearBy):
					out[fmt.Sprintf(`%s{process=%q}`, metrics.CasesDeadlineNear, p.Name)]++
				}
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// gathered is the business gauges of a registry as "name{labels}" → value.
func gathered(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		switch f.GetName() {
		case metrics.CasesOpen, metrics.CasesDeadlineNear, metrics.CasesOverdue, metrics.ReservedKopecks, metrics.PayoutsToday, metrics.PaidTodayKopecks:
		default:
			continue
		}
		for _, s := range f.GetMetric() {
			key := f.GetName()
			if len(s.GetLabel()) > 0 {
				key += "{"
				for i, l := range s.GetLabel() {
					if i > 0 {
						key += ","
					}
					key += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				}
				key += "}"
			}
			out[key] = s.GetGauge().GetValue()
		}
	}
	return out
}
