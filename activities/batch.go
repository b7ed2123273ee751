package activities

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
)

// LineStarter starts or reaches the case of one valid batch line exactly as the HTTP API
// starts the same request (api.Server.StartBatchLine): the same registry checks, owner
// record, search attributes and workflow id rules. A line the rules refuse comes back
// as an error outcome; err is for failures worth a retry.
type LineStarter interface {
	StartBatchLine(ctx context.Context, tenant string, l batch.Line) (contract.BatchLineResult, error)
}

// BatchReadOptions: reading and splitting a 64 MiB file takes the function up to a few
// minutes (its timeout is 300 s).
var BatchReadOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 6 * time.Minute,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy:         retry(20),
}

// BatchChunkOptions: one chunk's lines, started 8 at a time; the heartbeat carries the
// results so far, so a worker killed mid-chunk resumes at the first line not done.
var BatchChunkOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Minute,
	HeartbeatTimeout:    20 * time.Second,
	RetryPolicy:         retry(0), // transient failures retry until the chunk is done
}

// BatchFinishOptions: the report of a large file is written in one call.
var BatchFinishOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 6 * time.Minute,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy:         retry(50),
}

// BatchLineConcurrency bounds the starts one chunk has in flight.
const BatchLineConcurrency = 8

// BatchRead parses the inbox object into stored chunks.
func (a *Activities) BatchRead(ctx context.Context, in contract.BatchInput) (contract.BatchReadResult, error) {
	in.Op = contract.BatchOpRead
	return call[contract.BatchReadResult](ctx, a.Invoker, contract.FnBatch, in)
}

// BatchFinish writes the report, moves the source and journals the counts.
func (a *Activities) BatchFinish(ctx context.Context, in contract.BatchInput) (contract.BatchFinishResult, error) {
	in.Op = contract.BatchOpFinish
	return call[contract.BatchFinishResult](ctx, a.Invoker, contract.FnBatch, in)
}

// BatchChunkInput names one stored chunk of a batch.
type BatchChunkInput struct {
	BatchID string `json:"batch_id"`
	Tenant  string `json:"tenant"`
	Chunk   int    `json:"chunk"`
}

// BatchChunk starts (or reaches) the case of every valid line of one chunk, stores the
// chunk's per-line results and returns its counts. Lines that repeat an earlier line of
// the file go after the others, so the first occurrence is the one that creates.
func (a *Activities) BatchChunk(ctx context.Context, in BatchChunkInput) (contract.BatchCounts, error) {
	if a.Lines == nil {
		return contract.BatchCounts{}, temporal.NewNonRetryableApplicationError(
			"this worker cannot start batch lines: it runs without TAXFLOW_SUBJECT_KEY", "Misconfigured", nil)
	}
	ctx = context.WithValue(ctx, ownHeartbeat{}, true)
	lines, err := call[[]batch.Line](ctx, a.Invoker, contract.FnBatch, contract.BatchInput{Op: contract.BatchOpChunk, BatchID: in.BatchID, Chunk: in.Chunk})
	if err != nil {
		return contract.BatchCounts{}, err
	}
	results := make([]contract.BatchLineResult, len(lines))
	if activity.HasHeartbeatDetails(ctx) {
		var prev []contract.BatchLineResult
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil && len(prev) == len(results) {
			copy(results, prev)
		}
	}
	var mu sync.Mutex
	snapshot := func() []contract.BatchLineResult {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(results)
	}
	stop := progressHeartbeat(ctx, snapshot)
	defer stop()
	run := func(only func(batch.Line) bool) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(BatchLineConcurrency)
		for i, l := range lines {
			mu.Lock()
			done := results[i].Outcome != ""
			mu.Unlock()
			if done || !only(l) {
				continue
			}
			g.Go(func() error {
				r := contract.BatchLineResult{Line: l.No, ExternalID: l.ExternalID, Kind: l.Kind}
				if !l.Valid() {
					r.Outcome, r.Error = contract.LineError, l.ErrorText()
				} else {
					started, err := a.Lines.StartBatchLine(gctx, in.Tenant, l)
					if err != nil {
						return fmt.Errorf("line %d: %w", l.No, err)
					}
					r.Outcome, r.CaseID, r.Error = started.Outcome, started.CaseID, started.Error
					if l.DuplicateOf != 0 && r.Outcome != contract.LineError {
						r.Outcome, r.Error = contract.LineDuplicate, fmt.Sprintf("repeats line %d", l.DuplicateOf)
					}
				}
				mu.Lock()
				results[i] = r
				mu.Unlock()
				return nil
			})
		}
		return g.Wait()
	}
	if err := run(func(l batch.Line) bool { return l.DuplicateOf == 0 }); err != nil {
		activity.RecordHeartbeat(ctx, snapshot())
		return contract.BatchCounts{}, err
	}
	if err := run(func(l batch.Line) bool { return l.DuplicateOf != 0 }); err != nil {
		activity.RecordHeartbeat(ctx, snapshot())
		return contract.BatchCounts{}, err
	}
	if _, err := call[struct{}](ctx, a.Invoker, contract.FnBatch, contract.BatchInput{Op: contract.BatchOpRecord, BatchID: in.BatchID,
		Chunk: in.Chunk, Results: results}); err != nil {
		return contract.BatchCounts{}, err
	}
	var counts contract.BatchCounts
	for _, r := range results {
		counts.Count(r)
	}
	return counts, nil
}

// progressHeartbeat records the results so far every heartbeatEvery until stopped.
func progressHeartbeat(ctx context.Context, snapshot func() []contract.BatchLineResult) (stop func()) {
	return heartbeatWith(ctx, func() []any { return []any{snapshot()} })
}
