//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/workflows"
)

// batchWorker runs a worker on the queue the intake function starts batches on, with the
// API's starter for batch lines; the cases it starts go to caseQueue.
func batchWorker(t *testing.T, caseQueue string) worker.Worker {
	t.Helper()
	lines := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	lines.TaskQueue = caseQueue
	w := worker.New(shared.temporal, shared.cfg.Temporal.TaskQueue, buildinfo.WorkerOptions())
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: lambdaInvoker(), Lines: lines})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// putInbox uploads a file to the inbox as the tenant's integrator (what a back office
// does through POST /v1/batches/upload-url: a grant with its key's scopes, named by the
// object's metadata) and returns its batch id.
func putInbox(t *testing.T, key string, body []byte) string {
	t.Helper()
	obj, ref := batch.ParseKey(key)
	if ref != nil {
		t.Fatal(ref)
	}
	return putInboxAs(t, key, body, &api.Principal{ID: obj.Tenant + "/integrator", Tenant: obj.Tenant, Role: api.RoleIntegrator,
		Scopes: api.RoleScopes[api.RoleIntegrator]})
}

// putInboxAs uploads a file with a grant for p (nil: with none, as a file put into the
// inbox some other way than through the API).
func putInboxAs(t *testing.T, key string, body []byte, p *api.Principal) string {
	t.Helper()
	bucket := shared.cfg.Name("documents")
	in := &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}
	if p != nil {
		g, err := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop()).IssueGrant(context.Background(), *p, key, 15*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		in.Metadata = map[string]string{batch.GrantMetadata: g.ID}
	}
	out, err := shared.clients.S3.PutObject(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return batch.BatchID(bucket, key, aws.ToString(out.ETag))
}

// waitReport waits for the batch's report, which only the real path writes: MinIO's
// notification → Lambda host → intake function → BatchImport → batch function.
func waitReport(t *testing.T, tenant, id string, within time.Duration) [][]string {
	t.Helper()
	bucket := shared.cfg.Name("documents")
	key := batch.ReportsPrefix + tenant + "/" + id + ".csv"
	deadline := time.Now().Add(within)
	for {
		got, err := shared.clients.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err == nil {
			rows, err := csv.NewReader(got.Body).ReadAll()
			_ = got.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report at %s after %s", key, within)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func exists(t *testing.T, key string) bool {
	t.Helper()
	bucket := shared.cfg.Name("documents")
	_, err := shared.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	return err == nil
}

func TestBatchFileThroughS3NotificationToReport(t *testing.T) {
	caseQueue := "e2e-batch-cases-" + uuid.NewString()
	w := batchWorker(t, caseQueue)
	defer w.Stop()
	// The cases the batch starts run on a worker of their own.
	startWorkerOn(t, caseQueue)
	inn := newTaxpayer(t, 600_000)
	tenant := "bank-" + uuid.NewString()[:8]
	run := uuid.NewString()[:8]
	rows := []string{
		"schema_version,kind,external_id,inn,period,amount_kopecks,reason,event_type",
		fmt.Sprintf("1,refund,r1-%s,%s,2025,100000,overpaid income tax,", run, inn),
		fmt.Sprintf("1,refund,r2-%s,%s,2025,200000,overpaid income tax,", run, inn),
		fmt.Sprintf("1,refund,r3-%s,%s,2025,12.5,overpaid income tax,", run, inn),   // bad amount
		fmt.Sprintf("1,refund,r2-%s,%s,2025,200000,overpaid income tax,", run, inn), // repeats line 3
		fmt.Sprintf("1,account_event,e1-%s,%s,,,,login_failed", run, inn),
		fmt.Sprintf("1,refund,r4-%s,%s,2019,100000,overpaid income tax,", run, inn), // no payments in 2019
	}
	file := []byte(strings.Join(rows, "\n") + "\n")
	key := batch.InboxPrefix + tenant + "/night-" + run + ".csv"
	id := putInbox(t, key, file)
	rep := waitReport(t, tenant, id, 2*time.Minute)
	outcomes := func(rep [][]string) []string {
		var out []string
		for _, r := range rep[1:] {
			out = append(out, r[3])
		}
		return out
	}
	// The account event is the authentication system's: an integrator's line is an error
	// naming the scope, as its request would be refused.
	if got := strings.Join(outcomes(rep), ","); got != "created,created,error,duplicate,error,error" {
		t.Fatalf("outcomes %s\n%v", got, rep)
	}
	if !strings.Contains(rep[5][5], api.ScopeAccountEvents) || rep[5][4] != "" {
		t.Fatalf("the integrator's account event line: %v", rep[5])
	}
	if rep[2][4] != rep[4][4] || rep[1][4] == rep[2][4] {
		t.Fatalf("case ids: %v", rep)
	}
	if !strings.HasPrefix(rep[3][5], "amount_kopecks:") || !strings.HasPrefix(rep[6][5], "period:") {
		t.Fatalf("errors must name the field: %q, %q", rep[3][5], rep[6][5])
	}
	if exists(t, key) || !exists(t, batch.ProcessedPrefix+tenant+"/night-"+run+".csv") {
		t.Fatal("the source was not moved to processed/")
	}

	// The same file again: the same cases, none new.
	bucket := shared.cfg.Name("documents")
	reportKey := batch.ReportsPrefix + tenant + "/" + id + ".csv"
	_, _ = shared.clients.S3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &reportKey})
	id2 := putInbox(t, key, file)
	rep2 := waitReport(t, tenant, id2, 2*time.Minute)
	if got := strings.Join(outcomes(rep2), ","); got != "existing,existing,error,duplicate,error,error" {
		t.Fatalf("second upload outcomes %s\n%v", got, rep2)
	}
	for i := range rep[1:] {
		if rep[i+1][4] != rep2[i+1][4] {
			t.Fatalf("line %s: case %s, then %s", rep[i+1][0], rep[i+1][4], rep2[i+1][4])
		}
	}
}

// A refused file: nothing starts, the file goes to rejected/ with a report saying why.
func TestBatchRefusedFileGoesToRejected(t *testing.T) {
	w := batchWorker(t, "e2e-batch-none-"+uuid.NewString())
	defer w.Stop()
	tenant := "bank-" + uuid.NewString()[:8]
	key := batch.InboxPrefix + tenant + "/bad.csv"
	id := putInbox(t, key, []byte("schema_version,kind,external_id,colour\n1,refund,r1,red\n"))
	rep := waitReport(t, tenant, id, 2*time.Minute)
	if len(rep) != 2 || rep[1][3] != "refused" || !strings.Contains(rep[1][5], batch.RefusedHeader) {
		t.Fatalf("report %v", rep)
	}
	if !exists(t, batch.RejectedPrefix+tenant+"/bad.csv") {
		t.Fatal("not moved to rejected/")
	}
}

// A worker process killed (SIGKILL) in the middle of a 2,000-line batch and started again: every line
// ends with exactly one case or one error, and no case is started twice.
func TestBatchWorkerKilledMidBatchEveryLineOnce(t *testing.T) {
	const n = 2000
	caseQueue := "e2e-batch-idle-" + uuid.NewString() // the cases only need to exist
	inn := newTaxpayer(t, 600_000)
	tenant := "bank-" + uuid.NewString()[:8]
	var b strings.Builder
	b.WriteString("schema_version,kind,external_id,inn,period,amount_kopecks,reason\n")
	for i := 0; i < n; i++ {
		amount := fmt.Sprint(1000 + i)
		if i%97 == 0 {
			amount = "-1" // a bad line now and then
		}
		fmt.Fprintf(&b, "1,refund,r%d,%s,2025,%s,overpaid\n", i, inn, amount)
	}
	// The batch runs in a worker process of its own (`taxflow worker`), killed with SIGKILL
	// part-way; its lines start their cases on a queue no worker polls: they only need to
	// exist, and 2,000 refunds running would only slow the test down.
	caseEnv := "TAXFLOW_BATCH_CASE_QUEUE=" + caseQueue
	first := startWorkerProcess(t, shared.cfg.Temporal.TaskQueue, caseEnv)
	id := putInbox(t, batch.InboxPrefix+tenant+"/big.csv", []byte(b.String()))
	// Stop the worker once the batch is part-way through its lines.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		v, err := shared.temporal.QueryWorkflow(context.Background(), id, "", workflows.BatchQueryProgress)
		var p workflows.BatchProgress
		if err == nil && v.Get(&p) == nil && p.ChunksDone >= 2 {
			t.Logf("stopping the worker at chunk %d of %d", p.ChunksDone, p.Chunks)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch made no progress")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	_ = first.Wait()
	startWorkerProcess(t, shared.cfg.Temporal.TaskQueue, caseEnv)
	rep := waitReport(t, tenant, id, 5*time.Minute)
	if len(rep) != n+1 {
		t.Fatalf("report has %d lines for %d", len(rep)-1, n)
	}
	cases := map[string]string{}
	errs := 0
	for _, r := range rep[1:] {
		switch {
		case r[3] == "error" && r[4] == "" && r[5] != "":
			errs++
		case (r[3] == "created" || r[3] == "existing") && r[4] != "":
			if other, ok := cases[r[4]]; ok {
				t.Fatalf("case %s for lines %s and %s", r[4], other, r[0])
			}
			cases[r[4]] = r[0]
		default:
			t.Fatalf("line %v has neither one case nor one error", r)
		}
	}
	if want := (n + 96) / 97; errs != want || len(cases) != n-want {
		t.Fatalf("%d errors, %d cases; want %d and %d", errs, len(cases), want, n-want)
	}
}

// startWorkerOn runs a case worker (Lambda invoker) on queue until the test ends.
func startWorkerOn(t *testing.T, queue string) {
	t.Helper()
	w := worker.New(shared.temporal, queue, buildinfo.WorkerOptions())
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: lambdaInvoker()})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// The API's side: a presigned upload into the caller's inbox, then the batch's status
// until its report link; another tenant's key gets the 404 of a missing batch. Every
// request and answer is checked against the OpenAPI description.
func TestBatchAPIUploadStatusAndTenancy(t *testing.T) {
	caseQueue := "e2e-batch-api-" + uuid.NewString()
	w := batchWorker(t, caseQueue)
	defer w.Stop()
	startWorkerOn(t, caseQueue)
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	url := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	tenant := "bank-" + uuid.NewString()[:8]
	mine, err := keys.Create(context.Background(), api.Principal{Tenant: tenant, Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := keys.Create(context.Background(), api.Principal{Tenant: "other-" + uuid.NewString()[:8], Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	me, other := &apiClient{t, url + "|" + mine}, &apiClient{t, url + "|" + theirs}
	inn := newTaxpayer(t, 600_000)
	file := []byte(fmt.Sprintf("schema_version,kind,external_id,inn,period,amount_kopecks,reason\n1,refund,api-%s,%s,2025,100000,overpaid\n",
		uuid.NewString()[:8], inn))
	code, body := me.do("POST", "/v1/batches/upload-url", []byte(fmt.Sprintf(`{"file_name":"api.csv","size":%d}`, len(file))))
	if code != 200 {
		t.Fatalf("upload-url: %d %s", code, body)
	}
	var up struct {
		URL, Bucket, Key string
		Headers          map[string]string
	}
	if err := json.Unmarshal(body, &up); err != nil {
		t.Fatal(err)
	}
	if up.Key != batch.InboxPrefix+tenant+"/api.csv" {
		t.Fatalf("upload key %s is not the caller's inbox", up.Key)
	}
	req, _ := http.NewRequest("PUT", up.URL, bytes.NewReader(file))
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", err, res)
	}
	_ = res.Body.Close()
	id := batch.BatchID(up.Bucket, up.Key, res.Header.Get("ETag"))
	deadline := time.Now().Add(2 * time.Minute)
	var v api.BatchView
	for {
		code, body = me.do("GET", "/v1/batches/"+id, nil)
		if code == 200 {
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			if v.Status == workflows.BatchDone && v.ReportURL != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch not done: %d %s", code, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if v.Counts.Created != 1 || v.Counts.Lines != 1 {
		t.Fatalf("counts %+v", v.Counts)
	}
	rep, err := http.Get(v.ReportURL)
	if err != nil || rep.StatusCode != 200 {
		t.Fatalf("report link: %v %v", err, rep)
	}
	_ = rep.Body.Close()
	codeOther, bodyOther := other.do("GET", "/v1/batches/"+id, nil)
	codeMissing, bodyMissing := other.do("GET", "/v1/batches/batch-"+strings.Repeat("0", 32), nil)
	if codeOther != 404 || codeMissing != 404 || !bytes.Equal(bodyOther, bodyMissing) {
		t.Fatalf("another tenant's batch: %d %s; a missing one: %d %s", codeOther, bodyOther, codeMissing, bodyMissing)
	}
	// The tenant's operator sees the batch's progress in the console, in a real browser.
	bctx := browser(t)
	op := "op-" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	const password = "console-e2e-password"
	if _, err := api.StaffAccounts(shared.cfg, shared.clients).Create(context.Background(), op, api.RoleOperator, tenant, password); err != nil {
		t.Fatal(err)
	}
	signIn(t, bctx, url, op, password)
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/console/batches/"+id)); err != nil {
		t.Fatal(err)
	}
	if counts := text(t, bctx, "#counts"); !strings.Contains(counts, "Создано дел") || !strings.Contains(counts, "1") {
		t.Fatalf("the batch page's counts: %q", counts)
	}
	if link := text(t, bctx, "#report"); !strings.Contains(link, "Отчёт") {
		t.Fatalf("the batch page has no report link: %q", link)
	}
	screenshot(t, bctx, "batch")
}
