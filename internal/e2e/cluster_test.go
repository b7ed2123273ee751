//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// The production topology's faults, on the Temporal cluster (make test-cluster): two worker
// processes and two API processes; while 100 refunds go from claim to payout and 100
// accounts take bursts of login events, one worker process and one API process are killed
// (SIGKILL), then the Temporal history service, then PostgreSQL is restarted. Clients
// spread their requests over both APIs and retry what failed (a dropped connection, a 5xx,
// a key still in use) with the same Idempotency-Key or event id, as an integrator would.
// Every refund ends paid once (the treasury's transfers are the ledger's paid), every
// account ends in the state the lockout model computes, every journal is a chain of
// transitions without a gap, no Idempotency-Key got two different answers, and every
// history replays against the code.
func TestClusterFaults(t *testing.T) {
	st, err := stack.FromEnv(os.Getenv, filepath.Join(moduleDir(), "bin", "taxflow"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Temporal != stack.TemporalServer {
		t.Skip("runs on the Temporal cluster: make test-cluster")
	}
	const refunds, inFlight, accounts, perAccount = 100, 10, 100, 30
	queue := "e2e-cluster-" + uuid.NewString()
	workerEnv := []string{"TAXFLOW_METRICS_ADDR=off"}
	workers := []*exec.Cmd{startWorkerProcess(t, queue, workerEnv...), startWorkerProcess(t, queue, workerEnv...)}
	ports := []int{freePort(t), freePort(t)}
	apis := []*exec.Cmd{startAPIProcess(t, queue, ports[0]), startAPIProcess(t, queue, ports[1])}
	bases := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	for _, b := range bases {
		waitReady(t, b)
	}
	keys := api.Keys(shared.cfg, shared.clients)
	ik, err := keys.Create(context.Background(), api.Principal{ID: "e2e-cluster-cabinet", Tenant: "e2e-cluster-cabinet", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := keys.Create(context.Background(), api.Principal{ID: "e2e-cluster-auth", Tenant: "e2e-cluster-auth", Role: api.RoleAuthSystem,
		Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})
	if err != nil {
		t.Fatal(err)
	}
	cabinet := newSpread(t, bases, ik)
	auth := newSpread(t, bases, ak)
	policy := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop()).AccountPolicy

	// The load: refunds claimed at a steady pace (each then given its document), account
	// events in order per account with a pause between them, so that the load lasts
	// through every fault below.
	type refundCase struct {
		inn, key, id string
	}
	cases := make([]*refundCase, refunds+inFlight) // the last inFlight are sent to API 1 as it is killed
	inns := map[string]bool{}
	for i := range cases {
		cases[i] = &refundCase{inn: newTaxpayer(t, 600_000), key: uuid.NewString()}
		inns[cases[i].inn] = true
	}
	type plan struct {
		inn    string
		events []contract.AccountEvent
		model  *modelAccount
	}
	plans := make([]plan, accounts)
	for i := range plans {
		p := plan{inn: domain.CompleteINN12(fmt.Sprintf("79%08d", rand.IntN(100_000_000))),
			model: &modelAccount{status: workflows.AccountActive, seen: map[string]bool{}}}
		for range perAccount {
			typ := contract.EventLoginFailed
			switch r := rand.IntN(100); {
			case r < 2:
				typ = contract.EventSuspicious
			case r < 45:
				typ = contract.EventLoginSucceeded
			}
			e := contract.AccountEvent{EventID: uuid.NewString(), Type: typ}
			p.events = append(p.events, e)
			if rand.IntN(100) < 5 {
				p.events = append(p.events, e)
			}
		}
		for _, e := range p.events {
			p.model.apply(e, policy)
		}
		plans[i] = p
	}

	start := time.Now()
	var load sync.WaitGroup
	var done atomic.Int64 // requests of the load answered for good
	jobs := make(chan *refundCase)
	go func() {
		tick := time.NewTicker(400 * time.Millisecond)
		defer tick.Stop()
		for _, c := range cases[:refunds] {
			<-tick.C
			jobs <- c
		}
		close(jobs)
	}()
	claimBody := func(c *refundCase) []byte {
		body, _ := json.Marshal(map[string]any{"inn": c.inn, "period": 2025, "amount_kopecks": 500_000, "reason": "overpaid income tax"})
		return body
	}
	// claim sends a claim (first, when given, one attempt to API 1 alone) and then its document.
	claim := func(c *refundCase, first func() (int, []byte, error)) {
		code, out, err := 0, []byte(nil), errors.New("not sent")
		if first != nil {
			code, out, err = first()
		}
		if err != nil || code >= 500 || code == http.StatusConflict {
			code, out = cabinet.do("POST", "/v1/refunds", claimBody(c), "Idempotency-Key", c.key)
		}
		var res struct {
			CaseID string `json:"case_id"`
		}
		_ = json.Unmarshal(out, &res)
		if code != http.StatusCreated || res.CaseID == "" {
			t.Errorf("claim: %d %s", code, out)
			return
		}
		c.id = res.CaseID
		done.Add(1)
		// A retried upload may find the document taken by the attempt that failed
		// (409, the case past waiting for it): the case's end shows which.
		if code, out := cabinet.do("POST", "/v1/refunds/"+c.id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted && code != http.StatusConflict {
			t.Errorf("upload: %d %s", code, out)
		}
		done.Add(1)
	}
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for c := range jobs {
				claim(c, nil)
			}
		}()
	}
	for _, p := range plans {
		load.Add(1)
		go func(p plan) {
			defer load.Done()
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			for _, e := range p.events {
				body, _ := json.Marshal(e)
				if code, out := auth.do("POST", "/v1/accounts/"+p.inn+"/events", body); code != http.StatusAccepted {
					t.Errorf("event: %d %s", code, out)
				}
				done.Add(1)
				time.Sleep(time.Duration(800+rand.IntN(800)) * time.Millisecond)
			}
		}(p)
	}
	total := int64(2 * (refunds + inFlight))
	for _, p := range plans {
		total += int64(len(p.events))
	}
	loadDone := make(chan struct{})
	go func() { load.Wait(); close(loadDone) }()

	// The faults, one after another, each while the load still runs.
	during := func(what string) {
		t.Helper()
		if n := done.Load(); n >= total {
			t.Fatalf("%s: the load had ended (%d of %d requests): nothing was in flight", what, n, total)
		} else {
			t.Logf("%s at %v, %d of %d requests answered", what, time.Since(start).Round(time.Millisecond), n, total)
		}
	}
	t.Cleanup(func() { _ = st.Up(context.Background(), func(string) {}) }) // whatever happens, the stack comes back whole
	time.Sleep(6 * time.Second)
	during("SIGKILL worker process 1")
	kill(workers[0])
	time.Sleep(3 * time.Second)
	during("SIGKILL API process 1")
	// Claims sent to API 1 alone, killed once one of them has been written to it: a create
	// dies in the middle, holding its key, and its client sends it again to API 2.
	wrote := make(chan struct{}, inFlight)
	var cut atomic.Int64 // first attempts that died mid-request (not refused at connect)
	for _, c := range cases[refunds:] {
		load.Add(1)
		go func() {
			defer load.Done()
			claim(c, func() (int, []byte, error) {
				code, out, err := cabinet.onceTo(bases[0], wrote, "POST", "/v1/refunds", claimBody(c), "Idempotency-Key", c.key)
				if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
					cut.Add(1)
				}
				return code, out, err
			})
		}()
	}
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no claim reached API 1")
	}
	time.Sleep(20 * time.Millisecond)
	kill(apis[0])
	time.Sleep(3 * time.Second)
	workers[0] = startWorkerProcess(t, queue, workerEnv...) // as a supervisor would
	apis[0] = startAPIProcess(t, queue, ports[0])
	time.Sleep(3 * time.Second)
	during("SIGKILL temporal-history")
	if err := st.Kill("temporal-history"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	allUpBut(t, st, "temporal-history") // Up below restarts the killed service only
	if err := st.Up(context.Background(), func(string) {}); err != nil {
		t.Fatalf("restart the history service: %v", err)
	}
	t.Logf("temporal-history back at %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	during("restart PostgreSQL")
	if err := st.Stop("postgres"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	allUpBut(t, st, "postgres") // the Temporal services ride out the database's absence
	if err := st.Up(context.Background(), func(string) {}); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	pgBack := time.Since(start)
	t.Logf("PostgreSQL back at %v", pgBack.Round(time.Millisecond))
	select {
	case <-loadDone:
		t.Fatalf("the load ended before PostgreSQL came back: the restart was not under load")
	default:
	}
	select {
	case <-loadDone:
	case <-time.After(8 * time.Minute):
		t.Fatalf("the load did not finish: %d of %d requests answered", done.Load(), total)
	}
	if t.Failed() {
		t.FailNow()
	}
	loaded := time.Since(start)
	if cut.Load() == 0 {
		t.Fatalf("no claim was cut off by the API kill (all %d first attempts answered or were refused at connect)", inFlight)
	}

	// Every refund paid once, the treasury's transfers the ledger's paid.
	statuses := make([]workflows.RefundStatus, len(cases))
	deadline := time.Now().Add(6 * time.Minute)
	for i, c := range cases {
		for {
			code, out := cabinet.do("GET", "/v1/refunds/"+c.id, nil)
			_ = json.Unmarshal(out, &statuses[i])
			if code == http.StatusOK && statuses[i].Status == workflows.RefundPaid {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d %+v", c.id, code, statuses[i])
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	paid, sum := checkPaidOnce(t, inns, statuses)
	byCase := treasuryByCase(t)
	for _, c := range cases {
		if len(byCase[c.id]) != 1 {
			t.Fatalf("%s: %d transfers", c.id, len(byCase[c.id]))
		}
	}
	if paid != len(cases) || sum != int64(len(cases))*500_000 {
		t.Fatalf("paid %d cases, %d kopecks", paid, sum)
	}
	// One case per key: no attempt that failed left a case of its own behind, and the key
	// sent once more answers the same case.
	ctx := context.Background()
	n, err := shared.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: shared.cfg.Temporal.Namespace,
		Query: fmt.Sprintf("TaskQueue = '%s' AND WorkflowType = 'Refund'", queue)})
	if err != nil {
		t.Fatal(err)
	}
	if n.Count != int64(len(cases)) {
		t.Fatalf("%d refund workflows on the queue for %d Idempotency-Keys", n.Count, len(cases))
	}
	for _, c := range cases {
		code, out := cabinet.do("POST", "/v1/refunds", claimBody(c), "Idempotency-Key", c.key)
		var res struct {
			CaseID string `json:"case_id"`
		}
		_ = json.Unmarshal(out, &res)
		if code != http.StatusCreated || res.CaseID != c.id {
			t.Fatalf("key of %s sent again: %d %s", c.id, code, out)
		}
	}
	// Every journal a chain of transitions from the claim to paid, without a gap.
	for _, c := range cases {
		journalChain(t, c.id, workflows.RefundReceived, workflows.RefundPaid)
	}
	// Every account in the model's state.
	for _, p := range plans {
		checkAccountAsModel(t, p.inn, p.model, deadline, auth.do)
	}
	// No Idempotency-Key answered two ways.
	retried := cabinet.checkOneOutcomePerKey()
	// Every history, taken from this cluster, replays against the code.
	codec, err := temporalclient.PayloadCodec(shared.cfg.Temporal)
	if err != nil {
		t.Fatal(err)
	}
	// Every run on the queue (refunds, and every run of every account: they continued as
	// new every 10 events) replays; no workflow task failed as nondeterministic, even once.
	// The retried activities and timed-out workflow tasks show that the kills found work
	// in flight.
	replayed, accountRuns, retriedActivities, timedOutTasks := 0, 0, 0, 0
	var token []byte
	for {
		page, err := shared.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: shared.cfg.Temporal.Namespace,
			Query: fmt.Sprintf("TaskQueue = '%s'", queue), NextPageToken: token, PageSize: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range page.Executions {
			id, run := ex.Execution.WorkflowId, ex.Execution.RunId
			h, err := histories.Fetch(ctx, shared.temporal, id, run)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range h.Events {
				if a := e.GetWorkflowTaskFailedEventAttributes(); a != nil && a.Cause == enumspb.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR {
					t.Fatalf("%s: a workflow task failed as nondeterministic: %s", id, a.GetFailure().GetMessage())
				}
				if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.Attempt > 1 {
					retriedActivities++
				}
				if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT {
					timedOutTasks++
				}
			}
			if err := histories.Decode(h, codec.Decode); err != nil {
				t.Fatal(err)
			}
			if err := histories.Replay(h, nil); err != nil {
				t.Fatalf("%s (%s, %d events) does not replay: %v", id, histories.WorkflowType(h), len(h.Events), err)
			}
			if histories.WorkflowType(h) == "Account" {
				accountRuns++
				if ex.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					journalChain(t, id, "", "")
				}
			}
			replayed++
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	if accountRuns <= accounts {
		t.Fatalf("%d account runs for %d accounts: none continued as new", accountRuns, accounts)
	}
	if retriedActivities+timedOutTasks == 0 {
		t.Fatal("no activity retried and no workflow task timed out: the kills found nothing in flight")
	}
	allUpBut(t, st, "")
	t.Logf("%d refunds and %d account events (%d accounts) in %v through 2 APIs and 2 workers; worker, API and history killed, PostgreSQL restarted (back at %v); "+
		"all %d paid once (%d kopecks = ledger paid), every account as the model says, journals whole; %d requests retried (%d transport errors, %d answered 5xx), "+
		"%d claims cut off by the API kill, %d keys sent more than once with one outcome each; %d runs replayed (%d account runs), %d activities retried, %d workflow tasks timed out",
		len(cases), total-2*int64(len(cases)), accounts, loaded.Round(time.Millisecond), pgBack.Round(time.Millisecond), paid, sum,
		cabinet.retries.Load()+auth.retries.Load(), cabinet.transport.Load()+auth.transport.Load(), cabinet.fivexx.Load()+auth.fivexx.Load(),
		cut.Load(), retried, replayed, accountRuns, retriedActivities, timedOutTasks)
}

// journalChain checks a case's journal (journalLines: each entry once, in step order, none
// past the projection) as a chain of status changes: the first reaches first (when given),
// each later one starts from the status the one before reached, and the last reaches the
// status the projection shows, which is want (when given).
func journalChain(t *testing.T, id, first, want string) {
	t.Helper()
	lines := journalLines(t, id)
	projected := lines[len(lines)-1][strings.LastIndexByte(lines[len(lines)-1], ' ')+1:]
	if want != "" && projected != want {
		t.Fatalf("%s: projection %q, want %s", id, lines[len(lines)-1], want)
	}
	j, err := audit.Journal(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	prev, n := "", 0
	for _, e := range j {
		if e.Action != "status_changed" {
			continue
		}
		if n == 0 && first != "" && e.To != first {
			t.Fatalf("%s: the journal starts with %s→%s, want the case's first status %s\n%s", id, e.From, e.To, first, strings.Join(lines, "\n"))
		}
		if n > 0 && e.From != prev {
			t.Fatalf("%s: a transition %s→%s after the case reached %s: a step is missing\n%s", id, e.From, e.To, prev, strings.Join(lines, "\n"))
		}
		prev, n = e.To, n+1
	}
	if n > 0 && prev != projected {
		t.Fatalf("%s: the journal ends at %q, the projection says %s\n%s", id, prev, projected, strings.Join(lines, "\n"))
	}
	if n == 0 && first != "" {
		t.Fatalf("%s: no status change in the journal\n%s", id, strings.Join(lines, "\n"))
	}
}

// allUpBut checks that every service of the stack runs, except the one named.
func allUpBut(t *testing.T, st stack.Stack, except string) {
	t.Helper()
	for name, up := range st.Status() {
		if !up && name != except {
			t.Fatalf("%s is not running (it crashed while %s was away?)", name, or(except, "nothing"))
		}
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startAPIProcess runs `taxflow api` as its own process group on port, for cases on queue.
func startAPIProcess(t *testing.T, queue string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(moduleDir(), "bin", "taxflow"), "api")
	cmd.Env = append(os.Environ(), "TAXFLOW_TASK_QUEUE="+queue, "TAXFLOW_LOG_LEVEL=warn",
		"TAXFLOW_API_ADDR=127.0.0.1:"+strconv.Itoa(port), "TAXFLOW_API_METRICS_ADDR=off",
		// Accounts continue as new every 10 events, so runs hand over their state under the faults.
		"TAXFLOW_ACCOUNT_CONTINUE_AFTER=10")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{&mu, &logs}, &lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start api (make build first): %v", err)
	}
	t.Cleanup(func() {
		kill(cmd)
		if t.Failed() {
			mu.Lock()
			t.Logf("api :%d log:\n%.20000s", port, logs.String())
			mu.Unlock()
		}
	})
	return cmd
}

func kill(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", base, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// spread is an integrator's client of several API processes: each request goes to the
// next one; what fails on the way (a dropped connection, a 5xx, a key still in use by an
// attempt that died) is sent again, to the next process, with the same Idempotency-Key.
// Every answer to a keyed request is kept, to check that a key never had two outcomes.
type spread struct {
	t                          *testing.T
	bases                      []string
	key                        string
	http                       *http.Client
	next                       atomic.Uint64
	retries, transport, fivexx atomic.Int64
	mu                         sync.Mutex
	answers                    map[string][]keyedAnswer
}

type keyedAnswer struct {
	code   int
	caseID string
}

func newSpread(t *testing.T, bases []string, key string) *spread {
	return &spread{t: t, bases: bases, key: key, http: &http.Client{Timeout: 60 * time.Second}, answers: map[string][]keyedAnswer{}}
}

func (c *spread) do(method, path string, body []byte, headers ...string) (int, []byte) {
	idem := ""
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Idempotency-Key" {
			idem = headers[i+1]
		}
	}
	deadline := time.Now().Add(4 * time.Minute)
	for attempt := 0; ; attempt++ {
		code, out, err := c.once(method, path, body, headers...)
		if idem != "" { // a dropped connection is kept as code 0
			var res struct {
				CaseID string `json:"case_id"`
			}
			_ = json.Unmarshal(out, &res)
			c.mu.Lock()
			c.answers[idem] = append(c.answers[idem], keyedAnswer{code, res.CaseID})
			c.mu.Unlock()
		}
		inUse := code == http.StatusConflict && bytes.Contains(out, []byte("idempotency_key_in_use"))
		switch {
		case err != nil:
			c.transport.Add(1)
		case code >= 500:
			c.fivexx.Add(1)
		case inUse:
		default:
			return code, out
		}
		if time.Now().After(deadline) {
			c.t.Errorf("%s %s: still failing after %d attempts: %d %v %.300s", method, path, attempt+1, code, err, out)
			return code, out
		}
		c.retries.Add(1)
		time.Sleep(min(time.Duration(attempt+1)*250*time.Millisecond, 3*time.Second))
	}
}

func (c *spread) once(method, path string, body []byte, headers ...string) (int, []byte, error) {
	return c.onceTo(c.bases[c.next.Add(1)%uint64(len(c.bases))], nil, method, path, body, headers...)
}

// onceTo sends one attempt to base; wrote, when given, hears when the request is written.
func (c *spread) onceTo(base string, wrote chan<- struct{}, method, path string, body []byte, headers ...string) (int, []byte, error) {
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
	if wrote != nil {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote <- struct{}{} }}))
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/octet-stream")
		if json.Valid(body) {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, errors.Join(errors.New("read answer"), err)
	}
	checkContract(c.t, req, body, resp.StatusCode, resp.Header, b)
	return resp.StatusCode, b, nil
}

// checkOneOutcomePerKey: every answer a key got that was not "try again" (no answer, 5xx, key in use)
// is the same success with the same case; it returns how many keys were sent more than once.
func (c *spread) checkOneOutcomePerKey() int {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	retried := 0
	for key, as := range c.answers {
		if len(as) > 1 {
			retried++
		}
		var first *keyedAnswer
		for i, a := range as {
			if a.code == 0 || a.code >= 500 || a.code == http.StatusConflict {
				continue
			}
			if a.code/100 != 2 || a.caseID == "" {
				c.t.Fatalf("key %s…: answer %d of %d was %d: %+v", key[:8], i+1, len(as), a.code, as)
			}
			if first == nil {
				first = &as[i]
			} else if a.caseID != first.caseID {
				c.t.Fatalf("key %s…: two outcomes, case %s and case %s: %+v", key[:8], first.caseID, a.caseID, as)
			}
		}
		if first == nil {
			c.t.Fatalf("key %s…: never answered: %+v", key[:8], as)
		}
	}
	return retried
}
