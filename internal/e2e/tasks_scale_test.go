//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/infra"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// The task list's reads over TAXFLOW_TASKS_SCALE projections (skipped without it), in a
// table of their own, written as record-transition writes them: the latency of each read
// the API and the console make (p50 and max of 20, of 5 for the reads of a whole partition). A measurement, not a check.
func TestTaskListScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TAXFLOW_TASKS_SCALE"))
	if n <= 0 {
		t.Skip("set TAXFLOW_TASKS_SCALE=N to measure the task list over N open cases")
	}
	ctx := context.Background()
	opts := applyOptions(shared.cfg)
	opts.Prefix = "scale-" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	for _, tb := range infra.Declare().Tables {
		if tb.Name == cases.Table {
			if _, err := infra.Apply(ctx, shared.clients, infra.Declaration{Tables: []infra.Table{tb}}, opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	table := infra.Name(opts.Prefix, cases.Table)
	now := time.Now().UTC()
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for b := 0; b < n; b += 25 {
		g.Go(func() error {
			var reqs []ddbtypes.WriteRequest
			for i := b; i < min(b+25, n); i++ {
				process, status := "refund", "in_review"
				if i%3 == 1 {
					process, status = "identity", "manual_review"
				}
				rec := contract.CaseRecord{CaseID: fmt.Sprintf("%s-%s", process, uuid.NewString()), Process: process, Status: status,
					Label: "На проверке", Version: 5, UpdatedAt: now, Deadline: now.Add(time.Duration((i*7919)%(40*24*60)-5*24*60) * time.Minute),
					Amounts: map[string]int64{"claimed": 2_500_000, "approved": 0, "interest": 0, "paid": 0}}
				av, err := store.Marshal(rec)
				if err != nil {
					return err
				}
				for k, v := range tasks.Attrs(rec, []string{"alpha", "beta"}[i%2]) {
					av[k] = v
				}
				reqs = append(reqs, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: av}})
			}
			for len(reqs) > 0 {
				out, err := shared.clients.DynamoDB.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: reqs}})
				if err != nil {
					return err
				}
				reqs = out.UnprocessedItems[table]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d projections written in %s", n, time.Since(start).Round(time.Millisecond))
	l := tasks.Lister{DB: shared.clients.DynamoDB, Table: table}
	measure := func(what string, f func() error) {
		var d []time.Duration
		reps := 20
		if strings.Contains(what, "full read") || strings.Contains(what, "count") || strings.Contains(what, "skip") {
			reps = 5
		}
		for range reps {
			t0 := time.Now()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		t.Logf("%-48s p50 %10s  max %10s", what, d[len(d)/2].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
	}
	list := func(q tasks.Query) func() error {
		return func() error { _, err := l.List(ctx, q); return err }
	}
	measure("first page, every tenant (100)", list(tasks.Query{Role: "reviewer", Limit: 100}))
	measure("first page, tenant alpha (20)", list(tasks.Query{Role: "reviewer", Tenant: "alpha", Limit: 20}))
	measure("process=identity (20)", list(tasks.Query{Role: "reviewer", Process: "identity", Limit: 20}))
	measure("overdue (20)", list(tasks.Query{Role: "reviewer", Before: time.Now(), Limit: 20}))
	measure("3 days, tenant alpha (20)", list(tasks.Query{Role: "reviewer", Tenant: "alpha", Before: time.Now().Add(96 * time.Hour), Limit: 20}))
	measure("last page, every tenant (20)", list(tasks.Query{Role: "reviewer", Last: true, Limit: 20}))
	measure("escalated filter (none escalated: a full read)", list(tasks.Query{Role: "reviewer", Escalated: true, Limit: 20}))
	measure("count, every tenant (whole partition)", func() error {
		_, _, err := l.Count(ctx, tasks.Query{Role: "reviewer"}, n)
		return err
	})
	measure("count up to 1000, every tenant", func() error {
		_, _, err := l.Count(ctx, tasks.Query{Role: "reviewer"}, 1000)
		return err
	})
	measure("count up to 1000, tenant alpha, overdue", func() error {
		_, _, err := l.Count(ctx, tasks.Query{Role: "reviewer", Tenant: "alpha", Before: time.Now()}, 1000)
		return err
	})
	measure("skip 980 (page 50), tenant alpha", func() error {
		_, err := l.Skip(ctx, tasks.Query{Role: "reviewer", Tenant: "alpha"}, 980)
		return err
	})
	measure("skip to the middle, tenant alpha", func() error {
		_, err := l.Skip(ctx, tasks.Query{Role: "reviewer", Tenant: "alpha"}, n/4)
		return err
	})
	_, _ = shared.clients.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
}
