package bench

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// benchBatch measures the batch pipeline: n lines from upload to report (S3 notification,
// Lambda host, intake, BatchImport, the batch function), against starting the same n
// cases directly through the Temporal client with the same starter and concurrency;
// then, when history > 0, a file of that many lines: its history per run and the
// worker's peak heap. The cases go to a queue no worker polls: what is measured is
// getting lines to cases, not running the cases.
func benchBatch(ctx context.Context, a *app, c client.Client, n, history int) error {
	if err := a.cfg.RequireSubjectKey(); err != nil {
		return err
	}
	caseQueue := "bench-batch-cases-" + uuid.NewString()
	lines := api.New(a.cfg, a.clients, c, a.log)
	lines.TaskQueue = caseQueue
	// The batch worker runs on the queue the intake starts batches on.
	w := worker.New(c, a.cfg.Temporal.TaskQueue, buildinfo.WorkerOptions())
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: &invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}, Lines: lines})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	inn, err := benchTaxpayer(ctx, a)
	if err != nil {
		return err
	}

	// Directly: the same lines, the same starter, 8 at a time.
	direct, _ := batch.Parse(batchFile(inn, n), batch.CSV, "bench-direct", time.Now(), batch.DefaultLimits)
	tenant := "bench-d" + uuid.NewString()[:8]
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(activities.BatchLineConcurrency)
	up := &batch.Uploader{Principal: tenant + "/integrator", Tenant: tenant, Role: api.RoleIntegrator, Scopes: api.RoleScopes[api.RoleIntegrator]}
	for _, l := range direct {
		l.Uploader = up
		g.Go(func() error {
			_, err := lines.StartBatchLine(gctx, tenant, l)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("direct starts: %w", err)
	}
	directRate := float64(n) / time.Since(start).Seconds()

	fileRate, _, err := benchFile(ctx, a, c, inn, n)
	if err != nil {
		return err
	}
	fmt.Printf("\nbatch of %d lines: upload to report %.0f lines/s; the same cases started directly %.0f lines/s; ratio %.2f (goal ≥ 0.80)\n",
		n, fileRate, directRate, fileRate/directRate)

	if history > 0 {
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
		rate, id, err := benchFile(ctx, a, c, inn, history)
		close(stop)
		if err != nil {
			return err
		}
		runs, maxEvents, total, err := historySize(ctx, c, id)
		if err != nil {
			return err
		}
		fmt.Printf("batch of %d lines: %.0f lines/s; %d runs (continue-as-new), at most %d history events a run, %d in all; worker peak heap %d MiB\n",
			history, rate, runs, maxEvents, total, peak.Load()>>20)
	}
	return nil
}

func benchTaxpayer(ctx context.Context, a *app) (string, error) {
	inn := refundINNs.INN()
	tp := contract.Taxpayer{INN: inn, Name: "БЕНЧ", AccountState: "active", Confirmed: true, INNLinked: true}
	if _, err := store.PutNew(ctx, a.clients.DynamoDB, a.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		return "", err
	}
	e := contract.LedgerEntry{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 1_500_000}
	_, err := store.PutNew(ctx, a.clients.DynamoDB, a.cfg.Name(overpayment.Table), "entry_id", e)
	return inn, err
}

func batchFile(inn string, n int) []byte {
	var b strings.Builder
	b.WriteString("schema_version,kind,external_id,inn,period,amount_kopecks,reason\n")
	run := uuid.NewString()[:8]
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "1,refund,%s-%d,%s,2025,%d,overpaid\n", run, i, inn, 1000+i)
	}
	return []byte(b.String())
}

// benchFile uploads a file of n lines to a fresh tenant's inbox and waits for its report.
func benchFile(ctx context.Context, a *app, c client.Client, inn string, n int) (float64, string, error) {
	bucket := a.cfg.Name(document.Bucket)
	tenant := "bench-f" + uuid.NewString()[:8]
	key := batch.InboxPrefix + tenant + "/bench.csv"
	body := batchFile(inn, n)
	start := time.Now()
	// As POST /v1/batches/upload-url would: a grant for the tenant's integrator.
	grant, err := api.New(a.cfg, a.clients, c, a.log).IssueGrant(ctx, api.Principal{ID: tenant + "/integrator", Tenant: tenant,
		Role: api.RoleIntegrator, Scopes: api.RoleScopes[api.RoleIntegrator]}, key, 15*time.Minute)
	if err != nil {
		return 0, "", err
	}
	out, err := a.clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		Metadata: map[string]string{batch.GrantMetadata: grant.ID}})
	if err != nil {
		return 0, "", err
	}
	id := batch.BatchID(bucket, key, aws.ToString(out.ETag))
	report := batch.ReportsPrefix + tenant + "/" + id + ".csv"
	for {
		if _, err := a.clients.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &report}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return 0, id, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return float64(n) / time.Since(start).Seconds(), id, nil
}

// historySize counts the events of every run of a workflow id (the continue-as-new chain).
func historySize(ctx context.Context, c client.Client, id string) (runs, maxEvents, total int, err error) {
	res, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id)})
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range res.Executions {
		it := c.GetWorkflowHistory(ctx, id, e.Execution.RunId, false, 0)
		events := 0
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				return 0, 0, 0, err
			}
			events++
		}
		runs++
		total += events
		maxEvents = max(maxEvents, events)
	}
	return runs, maxEvents, total, nil
}
