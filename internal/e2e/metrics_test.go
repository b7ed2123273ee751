//go:build integration

package e2e

import (
	"bufio"
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/metrics"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
)

// countingInvoker is the ground truth the scrape is compared with: every call the worker
// made, by function, and how many failed.
type countingInvoker struct {
	next         invoker.Invoker
	mu           sync.Mutex
	calls, fails map[string]float64
}

func (c *countingInvoker) Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error) {
	out, err := c.next.Invoke(ctx, fn, payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[fn]++
	if err != nil {
		c.fails[fn]++
	}
	return out, err
}

func (c *countingInvoker) snapshot() (calls, fails map[string]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls), maps.Clone(c.fails)
}

// scrape reads /metrics over HTTP into "name{labels}" → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds every series of a metric whose labels contain all of match.
func sum(got map[string]float64, name string, match ...string) float64 {
	total := 0.0
	for k, v := range got {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, m := range match {
			ok = ok && strings.Contains(k, m)
		}
		if ok {
			total += v
		}
	}
	return total
}

// A refund through the API, its steps through the Lambda host: the worker's and the
// API's /metrics show exactly the invocations the worker made (by function, errors
// included), exactly the requests the API answered (by route template and status), and
// the Temporal SDK's own metrics from the same registry.
func TestMetricsAfterRefund(t *testing.T) {
	m := metrics.New(catalog.Names(), api.Routes())
	h, closeSDK := m.TemporalHandler()
	tc, err := temporalclient.DialWith(shared.cfg.Temporal, zerolog.Nop(), func(o *client.Options) { o.MetricsHandler = h })
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := "http://" + addr + "/metrics"

	counted := &countingInvoker{next: lambdaInvoker(), calls: map[string]float64{}, fails: map[string]float64{}}
	queue := "e2e-metrics-" + uuid.NewString()
	w := worker.New(tc, queue, buildinfo.WorkerOptions())
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: invoker.Observed(counted, m)})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	s := api.New(shared.cfg, shared.clients, tc, zerolog.Nop())
	s.TaskQueue = queue
	s.Observe = func(_ *http.Request, route string, status int, took time.Duration) {
		m.ObserveRequest(route, status, took)
	}
	// What the API was asked, counted at the door: every GET this test makes reads a
	// refund (200, or the test fails), and it makes one POST of each other kind.
	var gets, total atomic.Int64
	handler := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	integrator, _, _ := startAPIServer(t, srv.URL)

	inn := newTaxpayer(t, 600_000)
	code, id := integrator.create(inn, 500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	integrator.waitStatus(id, workflows.RefundAwaitingInfo)
	if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, out)
	}
	if st := integrator.waitStatus(id, workflows.RefundPaid); st.Paid != 500_000 {
		t.Fatalf("paid %+v", st)
	}
	// The case may still write after the status we waited for: read once it is quiet.
	calls, fails := counted.snapshot()
	for quiet := time.Now(); time.Since(quiet) < 2*time.Second; time.Sleep(200 * time.Millisecond) {
		if c, f := counted.snapshot(); !maps.Equal(c, calls) || !maps.Equal(f, fails) {
			calls, fails, quiet = c, f, time.Now()
		}
	}
	if err := closeSDK(); err != nil { // flushes the SDK's metrics into the registry
		t.Fatal(err)
	}
	got := scrape(t, metricsURL)

	// Function invocations: exactly what the worker asked for, function by function.
	// A record of its own for received and awaiting_info; approved rides in the ledger's
	// reservation and paid in the payout's posting (change refund-folded-steps): one
	// reservation, one payout, the two first reads.
	if calls[contract.FnPayout] != 1 || calls[contract.FnRecordTransition] != 2 || calls[contract.FnLedger] != 1 ||
		calls[contract.FnTaxpayerCheck] != 1 || calls[contract.FnOverpayment] != 1 {
		t.Fatalf("invocations made: %v (want one payout, one reservation, a record for received and for awaiting_info, each read once)", calls)
	}
	totalCalls := 0.0
	for fn, n := range calls {
		totalCalls += n
		if v := got[`taxflow_function_invocations_total{function="`+fn+`"}`]; v != n {
			t.Errorf("%s: scraped %v invocations, made %v", fn, v, n)
		}
		if v := sum(got, metrics.FunctionErrors, `function="`+fn+`"`); v != fails[fn] {
			t.Errorf("%s: scraped %v errors, had %v", fn, v, fails[fn])
		}
		if v := got[`taxflow_function_duration_seconds_count{function="`+fn+`"}`]; v != n {
			t.Errorf("%s: %v durations, made %v", fn, v, n)
		}
	}
	if v := sum(got, metrics.FunctionInvocations); v != totalCalls {
		t.Errorf("scraped %v invocations in all, made %v", v, totalCalls)
	}

	// API requests: by route template and status, and nothing else.
	for k, want := range map[string]float64{
		`taxflow_api_requests_total{code="201",route="POST /v1/refunds"}`:                1,
		`taxflow_api_requests_total{code="202",route="POST /v1/refunds/{id}/documents"}`: 1,
		`taxflow_api_requests_total{code="200",route="GET /v1/refunds/{id}"}`:            float64(gets.Load()),
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if v := sum(got, metrics.APIRequests); v != float64(total.Load()) {
		t.Errorf("scraped %v requests in all, the API answered %d", v, total.Load())
	}
	if v := got[`taxflow_api_request_duration_seconds_count{route="GET /v1/refunds/{id}"}`]; v != float64(gets.Load()) {
		t.Errorf("GET latency observations %v, want %d", v, gets.Load())
	}

	// The Temporal SDK's metrics, those the alert rules use among them, from this worker
	// (label values sanitized for Prometheus: '-' becomes '_').
	queueLabel := `task_queue="` + strings.ReplaceAll(queue, "-", "_") + `"`
	for _, name := range []string{"temporal_activity_schedule_to_start_latency_seconds_count",
		"temporal_workflow_task_schedule_to_start_latency_seconds_count", "temporal_activity_execution_latency_seconds_count"} {
		if v := sum(got, name, queueLabel); v == 0 {
			t.Errorf("%s on %s: none", name, queue)
		}
	}
	if v := sum(got, "temporal_workflow_completed_total", queueLabel, `workflow_type="Refund"`); v != 1 {
		t.Errorf("temporal_workflow_completed_total for the refund: %v, want 1", v)
	}
	if t.Failed() {
		n := 0
		for k, v := range got {
			if strings.HasPrefix(k, "temporal_") && n < 80 && !strings.Contains(k, "_bucket") {
				t.Logf("%s %v", k, v)
				n++
			}
		}
		t.Logf("register errors: %v", got["taxflow_metrics_register_errors_total"])
	}
	// Every invocation but the two first reads is an activity task's execution: transition
	// records are activity tasks again since record-step-task (never local activities,
	// whose input a retried workflow task may decide differently); the reads, which write
	// nothing, are local activities since refund-folded-steps.
	tasks := sum(got, "temporal_activity_execution_latency_seconds_count", queueLabel)
	locals := sum(got, "temporal_local_activity_execution_latency_seconds_count", queueLabel)
	if tasks < totalCalls-2 || locals != 2 {
		t.Errorf("%v activity task and %v local activity executions for %v invocations (%v of them records)", tasks, locals, totalCalls, calls[contract.FnRecordTransition])
	}
	// No personal data in any series.
	for k := range got {
		if strings.Contains(k, inn) || strings.Contains(k, id) {
			t.Fatalf("series %s holds the taxpayer's INN or the case id", k)
		}
	}
}
