package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// benchSweep loads n obligations due on one day and times the reminder sweep over them,
// through the Lambda host, on the configured stack.
func benchSweep(ctx context.Context, a *app, c client.Client, n int) error {
	day := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(time.Now().Unix()%300)) // a day of its own
	due := day.AddDate(0, 0, 7)
	table := a.cfg.Name(reminders.Table)
	inn := domain.CompleteINN12("7700000000")
	start := time.Now()
	var batches [][]types.WriteRequest
	batch := []types.WriteRequest{}
	for i := 0; i < n; i++ {
		item, _ := store.Marshal(contract.Obligation{ObligationID: "bench-" + uuid.NewString(), INN: inn, Tax: "property", Amount: 100_000,
			DueDate: due.Format(time.DateOnly), DueMonth: due.Format("2006-01")})
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(batch) == 25 || i == n-1 {
			batches = append(batches, batch)
			batch = []types.WriteRequest{}
		}
	}
	if err := loadBatches(ctx, a.clients.DynamoDB, table, batches, 8, loaderBackOff); err != nil {
		return fmt.Errorf("load obligations: %w", err)
	}
	loaded := time.Since(start)
	queue, stop, err := benchWorker(a, c, a.invoker())
	if err != nil {
		return err
	}
	defer stop()
	t0 := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-sweep-" + uuid.NewString(), TaskQueue: queue}, workflows.Sweep,
		workflows.SweepWorkflowInput{Job: workflows.JobReminders, Date: day.Format(time.DateOnly), LeadDays: []int{7}, PageSize: 1000, PagesPerRun: 20})
	if err != nil {
		return err
	}
	var res contract.SweepResult
	if err := run.Get(ctx, &res); err != nil {
		return err
	}
	took := time.Since(t0)
	fmt.Printf("\nreminder sweep of %d obligations (loaded in %s): %s, %.0f obligations/s; sent %d, duplicates %d (invoker %s)\n",
		n, loaded.Round(time.Second), took.Round(time.Millisecond), float64(res.Processed)/took.Seconds(), res.Sent, res.Duplicates, a.cfg.Invoker)
	return nil
}

// batchWriter is the part of the DynamoDB client the loader uses.
type batchWriter interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// loaderBackOff is how a loader waits between attempts at one batch: exponential with
// jitter from 50 ms, at most 5 s apart, and it gives up after a minute, so a store that
// keeps refusing fails the load instead of spinning on it (also after 20 tries).
func loaderBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	return b
}

// loadBatches writes batches of at most 25 items with `workers` loaders at once. The
// first loader to fail cancels the others and the load returns its error (an errgroup,
// not a channel that a failed loader stops draining); items the store leaves
// unprocessed (throttling) are retried with a backoff, not at once in a loop.
func loadBatches(ctx context.Context, db batchWriter, table string, batches [][]types.WriteRequest, workers int, newBackOff func() backoff.BackOff) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, b := range batches {
		g.Go(func() error {
			items := map[string][]types.WriteRequest{table: b}
			_, err := backoff.Retry(ctx, func() (struct{}, error) {
				out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: items})
				if err != nil {
					return struct{}{}, fmt.Errorf("batch write: %w", err)
				}
				if len(out.UnprocessedItems) > 0 {
					items = out.UnprocessedItems
					return struct{}{}, fmt.Errorf("%d items left unprocessed", len(items[table]))
				}
				return struct{}{}, nil
			}, backoff.WithBackOff(newBackOff()), backoff.WithMaxElapsedTime(time.Minute), backoff.WithMaxTries(20))
			return err
		})
	}
	return g.Wait()
}
