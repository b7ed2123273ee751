package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

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
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	batches := make(chan []types.WriteRequest)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				items := map[string][]types.WriteRequest{table: b}
				for len(items) > 0 {
					out, err := a.clients.DynamoDB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: items})
					if err != nil {
						errs <- err
						return
					}
					items = out.UnprocessedItems
				}
			}
		}()
	}
	batch := []types.WriteRequest{}
	for i := 0; i < n; i++ {
		item, _ := store.Marshal(contract.Obligation{ObligationID: "bench-" + uuid.NewString(), INN: inn, Tax: "property", Amount: 100_000,
			DueDate: due.Format(time.DateOnly), DueMonth: due.Format("2006-01")})
		batch = append(batch, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(batch) == 25 || i == n-1 {
			batches <- batch
			batch = []types.WriteRequest{}
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("load obligations: %w", err)
	default:
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
