package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
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
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/workflows"
)

// The timer wave (bench --wave N): N refunds claimed on one day fall due at one instant —
// a refund's term ends at 24:00 Moscow time of its last day (art. 6.1 p.8), so a day's
// claims are a wave of deadlines a month later. The bench puts N refunds in review whose
// term ends at one instant T a few minutes ahead (policy deadline_at, which only a run
// started directly can set) and measures how the worker takes the wave: when each case's
// escalation was recorded, and that each was escalated exactly once.

const (
	waveMargin  = 30 * time.Second
	waveTimeout = 30 * time.Minute // at least; scaled with N (waveTimeouts)
)

// wavePilotOf is the pilot's size: 1 % of the wave (20-1,000), enough to see the load's
// steady rate rather than its first seconds.
func wavePilotOf(n int) int { return min(max(n/100, 20), 1000) }

// waveTimeouts are the waits of a wave of n cases loaded at rate cases/s: the load gets
// three times what the pilot predicts, the wave a second for every 20 cases; neither
// less than waveTimeout.
func waveTimeouts(n int, rate float64) (load, wave time.Duration) {
	load = time.Duration(3 * float64(n) / rate * float64(time.Second))
	wave = time.Duration(n/20) * time.Second
	return max(load, waveTimeout), max(wave, waveTimeout)
}

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
	inReview := func(want int, timeout time.Duration) error {
		q := fmt.Sprintf("TaskQueue = '%s' AND %s = '%s'", queue, workflows.SearchStatus.GetName(), workflows.RefundInReview)
		deadline := time.Now().Add(timeout)
		for {
			r, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
			if err != nil {
				return fmt.Errorf("count the cases in review: %w", err)
			}
			if int(r.GetCount()) >= want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d cases in review after %s", r.GetCount(), want, timeout)
			}
			time.Sleep(time.Second)
		}
	}

	// The pilot: the load rate of this machine, so that T falls after the whole load.
	wavePilot := wavePilotOf(n)
	pilot, err := prepare(ctx, a, wavePilot)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	t0 := time.Now()
	if err := load(pilot, t0.Add(24*time.Hour)); err != nil {
		return err
	}
	if err := inReview(wavePilot, waveTimeout); err != nil {
		return err
	}
	rate := float64(wavePilot) / time.Since(t0).Seconds()
	loadTimeout, waveWait := waveTimeouts(n, rate)
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
	if err := inReview(wavePilot+n, loadTimeout); err != nil {
		return err
	}
	loaded := time.Since(t1)
	fmt.Printf("load: %d cases in review in %s (%.1f cases/s)\n", n, loaded.Round(100*time.Millisecond), float64(n)/loaded.Seconds())
	if time.Until(at) < time.Second {
		return fmt.Errorf("the load ended %s after the wave's instant: rerun with fewer cases", -time.Until(at))
	}

	// The wave: count the escalated refunds in the reviewers' escalated tasks (a key
	// condition on a sparse index; the pilot's cases fall due a day later) until the
	// wave's are all there, over what the table held before; then read each case's
	// escalation time once.
	ids := make([]string, len(inputs))
	for i, in := range inputs {
		ids[i] = in.CaseID
	}
	before, err := countEscalated(ctx, a)
	if err != nil {
		return err
	}
	time.Sleep(time.Until(at))
	var wave time.Duration
	for {
		k, err := countEscalated(ctx, a)
		if err != nil {
			return err
		}
		if k -= before; k >= n {
			wave = time.Since(at)
			break
		}
		if time.Since(at) > waveWait {
			return fmt.Errorf("%d of %d cases escalated %s after the wave's instant", k, n, waveWait)
		}
		time.Sleep(time.Second)
	}
	recs, err := readProjections(ctx, a, ids)
	if err != nil {
		return err
	}
	var lags []time.Duration
	for _, r := range recs {
		if !r.Escalated {
			return fmt.Errorf("case %s is counted escalated but its projection says not", r.CaseID)
		}
		lags = append(lags, r.UpdatedAt.Sub(at))
	}
	if len(lags) != n {
		return fmt.Errorf("%d projections read for %d cases", len(lags), n)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	fmt.Printf("wave: all %d escalated within %s of the instant (counted every second; %.0f escalations/s)\n", n, wave.Round(100*time.Millisecond), float64(n)/wave.Seconds())
	fmt.Printf("  escalation step's time after the instant (the timer's task, the workflow's clock): p50 %s, p99 %s, max %s\n",
		pct(lags, 0.50).Round(time.Millisecond), pct(lags, 0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))

	// Once each: the journal of every case holds one deadline_passed entry (read by 16
	// at a time: a journal is a Query, and there are N of them).
	var twice, none atomic.Int64
	var readErr error
	var errOnce sync.Once
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				var entries []contract.AuditEntry
				if err := store.QueryAll(ctx, a.clients.DynamoDB, a.cfg.Name(audit.Table), "case_id", ids[i], &entries); err != nil {
					errOnce.Do(func() { readErr = fmt.Errorf("read a journal: %w", err) })
					return
				}
				k := 0
				for _, e := range entries {
					if e.Action == "deadline_passed" {
						k++
					}
				}
				switch {
				case k == 0:
					none.Add(1)
				case k > 1:
					twice.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if twice.Load() > 0 || none.Load() > 0 {
		return fmt.Errorf("escalations in the journals: %d cases without one, %d with more than one", none.Load(), twice.Load())
	}
	fmt.Printf("  every case escalated once (one deadline_passed entry in each of the %d journals)\n", n)
	return nil
}

// countEscalated counts the reviewers' escalated refund tasks (every tenant's: the wave's
// cases are started without an owner), following the index's pages.
func countEscalated(ctx context.Context, a *app) (int, error) {
	in := &dynamodb.QueryInput{TableName: aws.String(a.cfg.Name(cases.Table)), IndexName: aws.String(tasks.EscalatedIndex),
		KeyConditionExpression:    aws.String("#p = :p"),
		ExpressionAttributeNames:  map[string]string{"#p": tasks.AttrEscRole},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(tasks.Queue("reviewer", "refund"))},
		Select:                    types.SelectCount}
	k := 0
	for {
		res, err := a.clients.DynamoDB.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("count the escalated tasks: %w", err)
		}
		k += int(res.Count)
		if len(res.LastEvaluatedKey) == 0 {
			return k, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// readProjections reads the escalation and time of each case's projection.
func readProjections(ctx context.Context, a *app, ids []string) ([]contract.CaseRecord, error) {
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
		batch = append(batch, map[string]types.AttributeValue{"case_id": store.S(id)})
		if len(batch) == 100 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return out, flush()
}
