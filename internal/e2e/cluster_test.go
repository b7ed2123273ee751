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

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/audit"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/histories"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
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
	const refunds, accounts, perAccount = 100, 100, 30
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
	cases := make([]*refundCase, refunds)
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
		for _, c := range cases {
			<-tick.C
			jobs <- c
		}
		close(jobs)
	}()
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for c := range jobs {
				body, _ := json.Marshal(map[string]any{"inn": c.inn, "period": 2025, "amount_kopecks": 500_000, "reason": "overpaid income tax"})
				code, out := cabinet.do("POST", "/v1/refunds", body, "Idempotency-Key", c.key)
				var res struct {
					CaseID string `json:"case_id"`
				}
				_ = json.Unmarshal(out, &res)
				if code != http.StatusCreated || res.CaseID == "" {
					t.Errorf("claim: %d %s", code, out)
					continue
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
	total := int64(2 * refunds)
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
	if err := st.Up(context.Background(), func(string) {}); err != nil {
		t.Fatalf("restart the history service: %v", err)
	}
	t.Logf("temporal-history back at %v", time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	during("restart PostgreSQL")
	if err := st.Stop("postgres"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
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

	// Every refund paid once, the treasury's transfers the ledger's paid.
	statuses := make([]workflows.RefundStatus, refunds)
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
	if paid != refunds || sum != int64(refunds)*500_000 {
		t.Fatalf("paid %d cases, %d kopecks", paid, sum)
	}
	// Every journal a chain of transitions from the claim to paid, without a gap.
	for _, c := range cases {
		journalChain(t, c.id, workflows.RefundPaid)
	}
	// Every account in the model's state.
	for _, p := range plans {
		for {
			code, out := auth.do("GET", "/v1/accounts/"+p.inn+"/lock", nil)
			var s workflows.AccountStatus
			_ = json.Unmarshal(out, &s)
			if code == http.StatusOK && s.EventsSeen == len(p.model.seen) {
				if s.Status != p.model.status || s.Failures != p.model.failures || len(s.Locks) != p.model.locks {
					t.Fatalf("account %s: workflow %s failures %d locks %d; model %s failures %d locks %d",
						p.inn[len(p.inn)-4:], s.Status, s.Failures, len(s.Locks), p.model.status, p.model.failures, p.model.locks)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("account %s applied %d of %d events", p.inn[len(p.inn)-4:], s.EventsSeen, len(p.model.seen))
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	// No Idempotency-Key answered two ways.
	retried := cabinet.checkOneOutcomePerKey()
	// Every history, taken from this cluster, replays against the code.
	codec, err := temporalclient.PayloadCodec(shared.cfg.Temporal)
	if err != nil {
		t.Fatal(err)
	}
	replayed := 0
	for _, c := range cases {
		h, err := histories.Fetch(context.Background(), shared.temporal, c.id, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := histories.Decode(h, codec.Decode); err != nil {
			t.Fatal(err)
		}
		if err := histories.Replay(h, nil); err != nil {
			t.Fatalf("%s (%d events) does not replay: %v", c.id, len(h.Events), err)
		}
		replayed++
	}
	t.Logf("%d refunds and %d account events (%d accounts) in %v through 2 APIs and 2 workers; worker, API and history killed, PostgreSQL restarted (back at %v); "+
		"all %d paid once (%d kopecks = ledger paid), every account as the model says, journals whole; %d requests retried (%d transport errors, %d answered 5xx), "+
		"%d keys retried with one outcome each; %d histories replayed",
		refunds, total-2*refunds, accounts, loaded.Round(time.Millisecond), pgBack.Round(time.Millisecond), paid, sum,
		cabinet.retries.Load()+auth.retries.Load(), cabinet.transport.Load()+auth.transport.Load(), cabinet.fivexx.Load()+auth.fivexx.Load(),
		retried, replayed)
}

// journalChain checks a case's journal (journalLines: each entry once, in step order) as a
// chain of transitions: each one starts from the status the one before it reached, and the
// last reaches want, the status its projection shows.
func journalChain(t *testing.T, id, want string) {
	t.Helper()
	lines := journalLines(t, id)
	if last := lines[len(lines)-1]; !strings.HasSuffix(last, " "+want) {
		t.Fatalf("%s: projection %q, want %s", id, last, want)
	}
	j, err := audit.Journal(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	prev := ""
	for _, e := range j {
		if e.To == "" {
			continue
		}
		if prev != "" && e.From != prev {
			t.Fatalf("%s: a transition %s→%s after the case reached %s: a step is missing\n%s", id, e.From, e.To, prev, strings.Join(lines, "\n"))
		}
		prev = e.To
	}
	if prev != want {
		t.Fatalf("%s: the journal ends at %q, want %s\n%s", id, prev, want, strings.Join(lines, "\n"))
	}
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
		"TAXFLOW_API_ADDR=127.0.0.1:"+strconv.Itoa(port), "TAXFLOW_API_METRICS_ADDR=off")
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
	base := c.bases[c.next.Add(1)%uint64(len(c.bases))]
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
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
