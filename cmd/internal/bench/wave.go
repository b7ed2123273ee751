package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// The timer wave (bench --wave N): N refunds claimed on one day fall due at one instant —
// a refund's term ends at 24:00 Moscow time of its last day (art. 6.1 p.8), so a day's
// claims are a wave of deadlines a month later. The bench puts N refunds in review whose
// term ends at one instant T a few minutes ahead (policy deadline_at, which only a run
// started directly can set) and measures how the worker takes the wave: when each case's
// escalation was recorded, and that each was escalated exactly once.

// waveLoadPerSecond is the first guess of the load rate, corrected by the pilot.
const (
	wavePilot   = 20
	waveMargin  = 30 * time.Second
	waveTimeout = 30 * time.Minute
)

func benchWave(ctx context.Context, a *app, c client.Client, n int) error {
	if n < 1 || n > 200_000 {
		return fmt.Errorf("bench: --wave %d: between 1 and 200000 cases", n)
	}
	if err := a.cfg.RequireSubjectKey(); err != nil {
		return err
	}
	inv := &invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}
	queue, stop, err := benchWorker(a, c, inv)
	if err != nil {
		return err
	}
	defer stop()
	start := func(in workflows.RefundWorkflowInput, at time.Time) error {
		in.Policy.AutoApproveMax = 0 // every case waits for a reviewer
		in.Policy.ReminderBefore = 0 // the wave is the escalations only
		in.Policy.DeadlineAt = &at
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.CaseID, TaskQueue: queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("refund"), workflows.SearchStatus.ValueSet(workflows.RefundReceived),
				workflows.SearchSubject.ValueSet(a.cfg.Subject.Value(in.INN)))}, workflows.Refund, in)
		return err
	}
	load := func(inputs []workflows.RefundWorkflowInput, at time.Time) error {
		sem := make(chan struct{}, 32)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for _, in := range inputs {
			wg.Add(1)
			sem <- struct{}{}
			go func(in workflows.RefundWorkflowInput) {
				defer func() { <-sem; wg.Done() }()
				if err := start(in, at); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}(in)
		}
		wg.Wait()
		return first
	}
	inReview := func(want int) error {
		q := fmt.Sprintf("TaskQueue = '%s' AND %s = '%s'", queue, workflows.SearchStatus.GetName(), workflows.RefundInReview)
		deadline := time.Now().Add(waveTimeout)
		for {
			r, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
			if err != nil {
				return fmt.Errorf("count the cases in review: %w", err)
			}
			if int(r.GetCount()) >= want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d cases in review after %s", r.GetCount(), want, waveTimeout)
			}
			time.Sleep(time.Second)
		}
	}

	// The pilot: the load rate of this machine, so that T falls after the whole load.
	pilot, err := prepare(ctx, a, wavePilot)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	t0 := time.Now()
	if err := load(pilot, t0.Add(24*time.Hour)); err != nil {
		return err
	}
	if err := inReview(wavePilot); err != nil {
		return err
	}
	rate := float64(wavePilot) / time.Since(t0).Seconds()
	inputs, err := prepare(ctx, a, n)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	at := time.Now().Add(time.Duration(1.5*float64(n)/rate*float64(time.Second)) + waveMargin).Truncate(time.Second)
	fmt.Printf("wave: %d refunds due at %s (pilot: %.1f cases/s into review; the load is given 1.5× that plus %s)\n",
		n, at.Format(time.RFC3339), rate, waveMargin)
	t1 := time.Now()
	if err := load(inputs, at); err != nil {
		return err
	}
	if err := inReview(wavePilot + n); err != nil {
		return err
	}
	loaded := time.Since(t1)
	fmt.Printf("load: %d cases in review in %s (%.1f cases/s)\n", n, loaded.Round(100*time.Millisecond), float64(n)/loaded.Seconds())
	if time.Until(at) < time.Second {
		return fmt.Errorf("the load ended %s after the wave's instant: rerun with fewer cases", -time.Until(at))
	}

	// The wave: poll the projections until every case's escalation is recorded.
	ids := make([]string, len(inputs))
	for i, in := range inputs {
		ids[i] = in.CaseID
	}
	time.Sleep(time.Until(at))
	seen := map[string]time.Time{}     // case → when the bench first saw it escalated
	recorded := map[string]time.Time{} // case → the escalation step's time (the workflow's clock)
	for len(seen) < n {
		if time.Since(at) > waveTimeout {
			return fmt.Errorf("%d of %d cases escalated %s after the wave's instant", len(seen), n, waveTimeout)
		}
		recs, err := readProjections(ctx, a, ids, seen)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, r := range recs {
			if r.Escalated {
				seen[r.CaseID], recorded[r.CaseID] = now, r.UpdatedAt
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	var lags, observed []time.Duration
	var last time.Time
	for id := range seen {
		lags = append(lags, recorded[id].Sub(at))
		observed = append(observed, seen[id].Sub(at))
		if seen[id].After(last) {
			last = seen[id]
		}
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	sort.Slice(observed, func(i, j int) bool { return observed[i] < observed[j] })
	wave := last.Sub(at)
	fmt.Printf("wave: all %d escalated within %s of the instant (seen by polling every 0.5 s; %.0f escalations/s)\n", n, wave.Round(100*time.Millisecond), float64(n)/wave.Seconds())
	fmt.Printf("  escalation step's time after the instant (the timer's task, the workflow's clock): p50 %s, p99 %s, max %s\n",
		pct(lags, 0.50).Round(time.Millisecond), pct(lags, 0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	fmt.Printf("  seen recorded after the instant: p50 %s, p99 %s\n", pct(observed, 0.50).Round(time.Millisecond), pct(observed, 0.99).Round(time.Millisecond))

	// Once each: the journal of every case holds one deadline_passed entry.
	twice, none := 0, 0
	for _, id := range ids {
		var entries []contract.AuditEntry
		if err := store.QueryAll(ctx, a.clients.DynamoDB, a.cfg.Name(audit.Table), "case_id", id, &entries); err != nil {
			return fmt.Errorf("read a journal: %w", err)
		}
		k := 0
		for _, e := range entries {
			if e.Action == "deadline_passed" {
				k++
			}
		}
		switch {
		case k == 0:
			none++
		case k > 1:
			twice++
		}
	}
	if twice > 0 || none > 0 {
		return fmt.Errorf("escalations in the journals: %d cases without one, %d with more than one", none, twice)
	}
	fmt.Printf("  every case escalated once (one deadline_passed entry in each of the %d journals)\n", n)
	return nil
}

// readProjections reads the projections of the cases not yet seen escalated.
func readProjections(ctx context.Context, a *app, ids []string, skip map[string]time.Time) ([]contract.CaseRecord, error) {
	table := a.cfg.Name(cases.Table)
	var out []contract.CaseRecord
	var batch []map[string]types.AttributeValue
	flush := func() error {
		for len(batch) > 0 {
			res, err := a.clients.DynamoDB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				table: {Keys: batch, ProjectionExpression: aws.String("case_id, escalated, updated_at")}}})
			if err != nil {
				return fmt.Errorf("read projections: %w", err)
			}
			for _, it := range res.Responses[table] {
				var r contract.CaseRecord
				if err := store.Unmarshal(it, &r); err != nil {
					return err
				}
				out = append(out, r)
			}
			batch = res.UnprocessedKeys[table].Keys
		}
		return nil
	}
	for _, id := range ids {
		if _, ok := skip[id]; ok {
			continue
		}
		batch = append(batch, map[string]types.AttributeValue{"case_id": store.S(id)})
		if len(batch) == 100 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return out, flush()
}
