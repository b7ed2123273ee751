package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// The open-cases bench (`taxflow bench --open N`): N cases put into waiting states through
// the API (in process, over HTTP) and a worker in this process, then what they cost the
// stack (disk, memory) and the latency of what staff and integrators do while they wait,
// next to a bare Temporal call and a bare DynamoDB read of the same stack.

// openBytesPerCase is the disk an open case is taken to need (Temporal's store: history,
// mutable state, visibility; DynamoDB: projection, journal, ledger and registry items; S3:
// the statement), before loading: the bench measured 44 KiB per case with N = 1,000 (the
// growth of the run directory's data over the load / N); taken as 64 KiB for a margin.
const openBytesPerCase = 64 << 10

// openStickyCache is the worker's sticky workflow cache: the SDK's default, set here so the
// figure printed is the one in force.
const openStickyCache = 10_000

// openLockPeriod is how long the bench's locked accounts stay locked (at least).
const openLockPeriod = 24 * time.Hour

// openConcurrency is how many cases are being started at a time.
const openConcurrency = 20

// openSamples is the number of requests each latency is measured over.
const openSamples = 200

// The goals, printed next to the figures.
const (
	goalTasksP99    = 300 * time.Millisecond
	goalRefundP99   = 100 * time.Millisecond
	goalDecisionP99 = time.Second
)

// refuseDisk refuses a count whose cases would not fit on the run directory's disk.
func refuseDisk(n int, perCase int64, avail uint64, dir string) error {
	need := uint64(n) * uint64(perCase)
	if need > avail {
		return fmt.Errorf("bench: --open %d needs about %s on disk (%d cases × %s per open case), and %s has %s free: "+
			"ask for at most %d, or free space", n, bytesOf(need), n, bytesOf(uint64(perCase)), dir, bytesOf(avail), avail/uint64(perCase))
	}
	return nil
}

// refuseHolding refuses a stack that already holds cases: the figures are for N cases on a
// fresh stack, and the task list's and the store's sizes would be off by what is there.
func refuseHolding(workflowCount, caseItems int64, dir string) error {
	var held []string
	if workflowCount > 0 {
		held = append(held, fmt.Sprintf("Temporal holds %d workflows", workflowCount))
	}
	if caseItems > 0 {
		held = append(held, "the cases table is not empty")
	}
	if len(held) == 0 {
		return nil
	}
	return fmt.Errorf("bench: --open needs a fresh stack, and this one is not: %s. Start afresh: "+
		"TAXFLOW_RUN_DIR=%s taxflow stack down, rm -rf %s, then taxflow stack up and taxflow infra apply (make bench-open does all of it)",
		strings.Join(held, "; "), dir, filepath.Join(dir, "data"))
}

// openMix splits n cases between the waiting states: 10 % locked accounts, up to 5 %
// identity cases in manual review (at most identityMax: the API allows 5 attempts an hour
// per taxpayer), 25 % declarations in review, 30 % refunds in review, the rest refunds
// awaiting documents.
type openMix struct {
	RefundsAwaiting, RefundsReview, Declarations, Identity, Accounts int
}

func mixOf(n, identityMax int) openMix {
	m := openMix{Accounts: n / 10, Identity: min(n/20, identityMax), Declarations: n / 4, RefundsReview: n * 3 / 10}
	m.RefundsAwaiting = n - m.Accounts - m.Identity - m.Declarations - m.RefundsReview
	return m
}

func (m openMix) total() int {
	return m.RefundsAwaiting + m.RefundsReview + m.Declarations + m.Identity + m.Accounts
}

// latency is one measured request kind: its name, its samples, and what it is compared with.
type latency struct {
	name    string
	samples []time.Duration
	base    string        // the bare call it is a ratio to ("" none)
	goal    time.Duration // p99 goal (0 none)
}

// pct is the p-quantile of sorted samples (nearest rank).
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

// latencyReport formats the latencies: p50, p99, the ratio of each p50 and p99 to those of
// its bare call, and the goal with whether it was met.
func latencyReport(ls []latency) string {
	sorted := map[string][]time.Duration{}
	for _, l := range ls {
		s := append([]time.Duration(nil), l.samples...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		sorted[l.name] = s
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	var b strings.Builder
	fmt.Fprintf(&b, "%-52s %5s %10s %10s %18s   %s\n", "request", "n", "p50", "p99", "vs bare (p50, p99)", "goal (p99)")
	for _, l := range ls {
		s := sorted[l.name]
		ratio := ""
		if bs := sorted[l.base]; l.base != "" && len(bs) > 0 && pct(bs, 0.5) > 0 && pct(bs, 0.99) > 0 {
			ratio = fmt.Sprintf("%.1fx, %.1fx", float64(pct(s, 0.5))/float64(pct(bs, 0.5)), float64(pct(s, 0.99))/float64(pct(bs, 0.99)))
		}
		goal := ""
		if l.goal > 0 {
			verdict := "met"
			if pct(s, 0.99) > l.goal {
				verdict = "NOT met"
			}
			goal = fmt.Sprintf("≤ %s: %s", l.goal, verdict)
		}
		fmt.Fprintf(&b, "%-52s %5d %10s %10s %18s   %s\n", l.name, len(s), ms(pct(s, 0.5)), ms(pct(s, 0.99)), ratio, goal)
	}
	return b.String()
}

func bytesOf(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

type openBench struct {
	ctx    context.Context
	a      *app
	c      client.Client
	base   string
	http   *http.Client
	queue  string
	keys   struct{ integrator, auth, reviewer, inspector string }
	cookie string

	mu        sync.Mutex
	refundIDs []string
}

// benchOpen is `taxflow bench --open N`.
func benchOpen(ctx context.Context, a *app, c client.Client, t Target, n int) error {
	if n < 1 {
		return fmt.Errorf("bench: --open %d: at least one case", n)
	}
	if t.stErr != nil {
		return fmt.Errorf("bench --open measures the local stack's disk and memory: %w", t.stErr)
	}
	st := t.st
	// Refusals first, before anything is written.
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(st.Dir, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w", st.Dir, err)
	}
	if err := refuseDisk(n, openBytesPerCase, sfs.Bavail*uint64(sfs.Bsize), st.Dir); err != nil {
		return err
	}
	wfs, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{})
	if err != nil {
		return fmt.Errorf("count the stack's workflows: %w", err)
	}
	items, err := a.clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(a.cfg.Name(cases.Table)), Select: types.SelectCount, Limit: aws.Int32(1)})
	if err != nil {
		return fmt.Errorf("read the cases table (run `taxflow infra apply` first): %w", err)
	}
	if err := refuseHolding(wfs.GetCount(), int64(items.Count), st.Dir); err != nil {
		return err
	}
	if err := a.cfg.RequireSubjectKey(); err != nil {
		return err
	}
	fmt.Printf("disk: %d cases × %s per open case (stated) = %s needed, %s free in %s\n",
		n, bytesOf(openBytesPerCase), bytesOf(uint64(n)*openBytesPerCase), bytesOf(sfs.Bavail*uint64(sfs.Bsize)), st.Dir)

	worker.SetStickyWorkflowCacheSize(openStickyCache)
	b := &openBench{ctx: ctx, a: a, c: c, http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	b.queue = "bench-open-" + uuid.NewString()
	w := worker.New(c, b.queue, worker.Options{MaxConcurrentActivityExecutionSize: 200, MaxConcurrentWorkflowTaskExecutionSize: 50})
	workflows.Register(w)
	deps := fn.Deps{Config: a.cfg, DynamoDB: a.clients.DynamoDB, S3: a.clients.S3, Log: zerolog.Nop()}
	w.RegisterActivity(&activities.Activities{Invoker: invoker.NewInProcess(catalog.Handlers(deps)), KeyRates: a.cfg.Data.KeyRates})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the bench worker: %w", err)
	}
	defer w.Stop()
	srv := api.New(a.cfg, a.clients, c, zerolog.Nop())
	srv.TaskQueue = b.queue
	// A first lock lasts 15 minutes, and a load of 100,000 takes over an hour: the locked
	// accounts of its first hour would be unlocked again before the latencies are taken
	// (seen: 836 of 10,000 still locked). The bench's accounts keep their lock for a day.
	srv.AccountPolicy.LockPeriods = slices.Clone(srv.AccountPolicy.LockPeriods)
	if len(srv.AccountPolicy.LockPeriods) > 0 && srv.AccountPolicy.LockPeriods[0] < openLockPeriod {
		srv.AccountPolicy.LockPeriods[0] = openLockPeriod
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	b.base = hs.URL
	if err := b.setup(); err != nil {
		return err
	}

	// Subjects: declarations and in-person identity cases need seeded taxpayers; a few
	// datasets' worth, reused (each case has its own Idempotency-Key, hence its own id).
	decls, people, err := b.seedSubjects(3)
	if err != nil {
		return err
	}
	m := mixOf(n, len(people)*api.IdentityAttemptsPerWindow)
	fmt.Printf("loading %d cases (concurrency %d, through the API in process, queue %s): %d refunds awaiting documents, %d refunds in review, "+
		"%d declarations in review, %d identity cases in manual review, %d locked accounts\n",
		m.total(), openConcurrency, b.queue, m.RefundsAwaiting, m.RefundsReview, m.Declarations, m.Identity, m.Accounts)
	if m.Identity < n/20 {
		fmt.Printf("note: identity cases are %d, not %d: the API allows %d attempts an hour per taxpayer and the seed data has %d taxpayers to be identified in person\n",
			m.Identity, n/20, api.IdentityAttemptsPerWindow, len(people))
	}
	jobs := make([]func(int) error, 0, m.total())
	add := func(k int, f func(int) error) {
		for i := 0; i < k; i++ {
			jobs = append(jobs, f)
		}
	}
	add(m.RefundsAwaiting, func(int) error { return b.refund(false) })
	add(m.RefundsReview, func(int) error { return b.refund(true) })
	// Subjects in turn (jobs are shuffled: their index would not spread them evenly, and an
	// identity subject takes at most IdentityAttemptsPerWindow cases).
	var nextDecl, nextPerson atomic.Int64
	add(m.Declarations, func(int) error { return b.declaration(decls[int(nextDecl.Add(1)-1)%len(decls)]) })
	add(m.Identity, func(int) error { return b.identity(people[int(nextPerson.Add(1)-1)%len(people)]) })
	add(m.Accounts, func(int) error { return b.lock() })
	rand.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	dataBefore := duData(st.Dir)
	bar := progressbar.NewOptions(len(jobs), progressbar.OptionSetDescription("cases"), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
		progressbar.OptionSetWriter(os.Stderr), progressbar.OptionThrottle(time.Second), progressbar.OptionClearOnFinish())
	t0 := time.Now()
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < openConcurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				errMu.Lock()
				failed := firstErr != nil
				errMu.Unlock()
				if failed {
					return
				}
				if err := jobs[i](i); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				}
				_ = bar.Add(1)
			}
		}()
	}
	wg.Wait()
	_ = bar.Finish()
	if firstErr != nil {
		return fmt.Errorf("load: %w", firstErr)
	}
	started := time.Since(t0)
	fmt.Printf("started: %d cases in %s (%.1f cases/s)\n", len(jobs), started.Round(time.Millisecond), float64(len(jobs))/started.Seconds())
	if err := b.waitStates(m); err != nil {
		return err
	}
	loaded := time.Since(t0)
	fmt.Printf("loaded: every case in its waiting state after %s (%.1f cases/s)\n\n", loaded.Round(time.Millisecond), float64(len(jobs))/loaded.Seconds())

	b.resources(st.Dir, dataBefore, len(jobs))
	fmt.Println()
	ls, err := b.latencies()
	if err != nil {
		return err
	}
	fmt.Print(latencyReport(ls))
	fmt.Println("goals (with 100,000 open cases): tasks and /console/tasks p99 ≤ 300 ms, GET /v1/refunds/{id} p99 ≤ 100 ms, a decision p99 ≤ 1 s")
	return nil
}

// setup creates the bench's API keys and a reviewer's console session.
func (b *openBench) setup() error {
	for _, k := range []struct {
		p   api.Principal
		dst *string
	}{
		{api.Principal{ID: "bench-open-cabinet", Tenant: seed.CabinetTenant, Role: api.RoleIntegrator}, &b.keys.integrator},
		{api.Principal{ID: "bench-open-auth", Tenant: seed.CabinetTenant, Role: api.RoleAuthSystem}, &b.keys.auth},
		{api.Principal{ID: "bench-open-reviewer", Tenant: api.TaxOffice, Role: api.RoleReviewer, Person: "bench-open-reviewer"}, &b.keys.reviewer},
		{api.Principal{ID: "bench-open-inspector", Tenant: api.TaxOffice, Role: api.RoleInspector, Person: "bench-open-inspector"}, &b.keys.inspector},
	} {
		key, err := b.a.keys().Create(b.ctx, k.p)
		if err != nil {
			return fmt.Errorf("create the %s key: %w", k.p.Role, err)
		}
		*k.dst = key
	}
	staff := api.StaffAccounts(b.a.cfg, b.a.clients)
	login, password := "bench-open-"+uuid.NewString()[:8], "bench-open-"+uuid.NewString()
	if _, err := staff.CreatePerson(b.ctx, login, api.RoleReviewer, "", login, password); err != nil {
		return fmt.Errorf("create the staff account: %w", err)
	}
	cookie, _, err := staff.SignIn(b.ctx, login, password)
	if err != nil {
		return fmt.Errorf("sign the staff account in: %w", err)
	}
	b.cookie = cookie
	return nil
}

// seedSubjects loads a few generated datasets: their declarations that pass the automatic
// check and their taxpayers to be identified in person.
func (b *openBench) seedSubjects(datasets int) (decls, people []seed.Subject, err error) {
	tables := seed.Tables{Taxpayers: b.a.cfg.Name(taxpayer.Table), Ledger: b.a.cfg.Name(overpayment.Table), Obligations: b.a.cfg.Name(reminders.Table)}
	for i := 0; i < datasets || len(decls) == 0; i++ {
		if i > 20 {
			return nil, nil, errors.New("bench: the seed data gave no declaration that passes the automatic check")
		}
		d, err := seed.Generate(seed.Day(time.Now()), seed.MinTaxpayers*2, rand.Uint64())
		if err != nil {
			return nil, nil, err
		}
		if err := seed.Load(b.ctx, b.a.clients.DynamoDB, tables, d); err != nil {
			return nil, nil, fmt.Errorf("load seed data: %w", err)
		}
		decls = append(decls, d.FindAll(seed.DeclarationPasses)...)
		people = append(people, d.FindAll(seed.IdentityInPerson)...)
	}
	return decls, people, nil
}

// call sends one request and decodes the answer (want: the status expected).
func (b *openBench) call(want int, out any, method, path, key string, body []byte, headers ...string) error {
	return drive.Expect(b.ctx, b.http, b.base, want, out, method, path, key, body, headers...)
}

// refundTaxpayer registers a taxpayer with a confirmed overpayment of 5,000 ₽ (set-up data:
// the registry and the ledger, written directly).
func (b *openBench) refundTaxpayer() (string, error) {
	inn := refundINNs.INN()
	bik := "044525225"
	tp := contract.Taxpayer{INN: inn, Name: "БЕНЧ", AccountState: "active", Confirmed: true, INNLinked: true,
		Bank: &contract.BankRequisites{BIK: bik, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rand.Int64N(1e12)), bik)}}
	if _, err := store.PutNew(b.ctx, b.a.clients.DynamoDB, b.a.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		return "", err
	}
	for _, e := range []contract.LedgerEntry{
		{INN: inn, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 1_000_000},
		{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 1_500_000},
	} {
		if _, err := store.PutNew(b.ctx, b.a.clients.DynamoDB, b.a.cfg.Name(overpayment.Table), "entry_id", e); err != nil {
			return "", err
		}
	}
	return inn, nil
}

// refund claims more than the confirmed overpayment (so the claim is capped and a reviewer
// decides); with review, the statement the case asks for is uploaded too.
func (b *openBench) refund(review bool) error {
	inn, err := b.refundTaxpayer()
	if err != nil {
		return fmt.Errorf("register a taxpayer: %w", err)
	}
	var created struct {
		CaseID string `json:"case_id"`
	}
	if err := b.call(http.StatusCreated, &created, "POST", "/v1/refunds", b.keys.integrator,
		drive.JSON(map[string]any{"inn": inn, "period": 2025, "amount_kopecks": 600_000, "reason": "bench"}),
		"Idempotency-Key", uuid.NewString(), "Content-Type", "application/json"); err != nil {
		return err
	}
	b.mu.Lock()
	b.refundIDs = append(b.refundIDs, created.CaseID)
	b.mu.Unlock()
	if !review {
		return nil
	}
	// The statement is taken once the case asks for it: until then the upload is refused.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := b.call(http.StatusAccepted, nil, "POST", "/v1/refunds/"+created.CaseID+"/documents?doc_id=statement", b.keys.integrator,
			drive.PDF("Bank statement"), "Content-Type", "application/pdf")
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *openBench) declaration(s seed.Subject) error {
	return b.call(http.StatusCreated, nil, "POST", "/v1/declarations", b.keys.integrator, drive.JSON(s.Declaration.Declaration),
		"Idempotency-Key", uuid.NewString(), "Content-Type", "application/json",
		"X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-"+uuid.NewString()[:8])
}

func (b *openBench) identity(s seed.Subject) error {
	return b.call(http.StatusCreated, nil, "POST", "/v1/identity-verifications", b.keys.integrator,
		drive.JSON(map[string]any{"method": contract.MethodVideo, "person": s.Identity.Person}),
		"Idempotency-Key", uuid.NewString(), "Content-Type", "application/json")
}

// lock reports one failed login more than the threshold for a new account.
func (b *openBench) lock() error {
	inn := accountINNs.INN()
	for i := 0; i <= b.a.cfg.Account.Threshold; i++ {
		if err := b.call(http.StatusAccepted, nil, "POST", "/v1/accounts/"+inn+"/events", b.keys.auth,
			drive.JSON(contract.AccountEvent{EventID: "bench-" + uuid.NewString(), Type: contract.EventLoginFailed})); err != nil {
			return err
		}
	}
	return nil
}

// waitStates waits until Temporal counts every case in its waiting state.
func (b *openBench) waitStates(m openMix) error {
	want := []struct {
		process, status string
		n               int
	}{
		{"refund", workflows.RefundAwaitingInfo, m.RefundsAwaiting}, {"refund", workflows.RefundInReview, m.RefundsReview},
		{"declaration", workflows.DeclarationInReview, m.Declarations}, {"identity", workflows.IdentityManualReview, m.Identity},
		{"account", workflows.AccountAutoUnlockPending, m.Accounts},
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var missing []string
		var got []string
		for _, w := range want {
			q := fmt.Sprintf("ExecutionStatus = 'Running' AND %s = '%s' AND %s = '%s'", workflows.SearchProcess.GetName(), w.process, workflows.SearchStatus.GetName(), w.status)
			r, err := b.c.CountWorkflow(b.ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
			if err != nil {
				return fmt.Errorf("count %s %s: %w", w.process, w.status, err)
			}
			got = append(got, fmt.Sprintf("%s %s %d/%d", w.process, w.status, r.GetCount(), w.n))
			if int(r.GetCount()) < w.n {
				missing = append(missing, got[len(got)-1])
			}
		}
		if len(missing) == 0 {
			fmt.Printf("waiting states (Temporal's count): %s\n", strings.Join(got, ", "))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 10 min not every case is in its waiting state: %s", strings.Join(missing, ", "))
		}
		time.Sleep(2 * time.Second)
	}
}

// resources prints the stack's disk and memory and the worker's.
func (b *openBench) resources(dir string, before uint64, n int) {
	after := duData(dir)
	grew := uint64(0)
	if after > before {
		grew = after - before
	}
	fmt.Printf("disk: %s in %s (Temporal's store, DynamoDB, S3), of which the cases added %s: %s per case\n",
		bytesOf(after), filepath.Join(dir, "data"), bytesOf(grew), bytesOf(grew/uint64(n)))
	rss := stackRSS(dir)
	names := make([]string, 0, len(rss))
	for name := range rss {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("memory: %-10s RSS %s (the service's processes)\n", name, bytesOf(rss[name]))
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	self := procRSS(os.Getpid())
	fmt.Printf("memory: worker (this process: worker, API and bench client) RSS %s, heap in use %s, Go runtime from the OS %s; sticky workflow cache %d workflows\n",
		bytesOf(self), bytesOf(ms.HeapInuse), bytesOf(ms.Sys), openStickyCache)
}

// duData is the size of the files under the run directory's data (the stores of the stack).
func duData(dir string) uint64 {
	var total uint64
	_ = filepath.WalkDir(filepath.Join(dir, "data"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += uint64(info.Size())
			}
		}
		return nil
	})
	return total
}

// stackRSS is the resident memory of each service of the stack (its pid file in the run
// directory), with the processes of its session.
func stackRSS(dir string) map[string]uint64 {
	out := map[string]uint64{}
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	sessions := map[int]string{}
	for _, p := range pidFiles {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			sessions[pid] = strings.TrimSuffix(filepath.Base(p), ".pid")
		}
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// Fields after the command name: state ppid pgrp session.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 4 {
			continue
		}
		sid, _ := strconv.Atoi(f[3])
		if name, ok := sessions[sid]; ok {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
			out[name] += procRSS(pid)
		}
	}
	return out
}

// procRSS is a process's VmRSS (0 when unread).
func procRSS(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// time1 times one call.
func time1(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

// sample times f openSamples times, one after another.
func sample(name, base string, goal time.Duration, f func(i int) error) (latency, error) {
	l := latency{name: name, base: base, goal: goal}
	for i := 0; i < openSamples; i++ {
		d, err := time1(func() error { return f(i) })
		if err != nil {
			return l, fmt.Errorf("%s: %w", name, err)
		}
		l.samples = append(l.samples, d)
	}
	return l, nil
}

type taskList struct {
	Tasks []api.Task `json:"tasks"`
	Next  string     `json:"next"`
}

// latencies measures, one request at a time, the bare calls first.
func (b *openBench) latencies() ([]latency, error) {
	ids := b.refundIDs
	table := b.a.cfg.Name(cases.Table)
	var out []latency
	add := func(l latency, err error) error {
		out = append(out, l)
		return err
	}
	get := func(key, path string) func(int) error {
		return func(int) error { return b.call(http.StatusOK, nil, "GET", path, key, nil) }
	}
	steps := []func() error{
		func() error {
			return add(sample(bareT, "", 0, func(i int) error {
				_, err := b.c.DescribeWorkflowExecution(b.ctx, ids[i%len(ids)], "")
				return err
			}))
		},
		func() error {
			return add(sample(bareD, "", 0, func(i int) error {
				_, err := b.a.clients.DynamoDB.GetItem(b.ctx, &dynamodb.GetItemInput{TableName: &table,
					Key: map[string]types.AttributeValue{"case_id": store.S(ids[i%len(ids)])}})
				return err
			}))
		},
		func() error {
			return add(sample("GET /v1/tasks reviewer, first page", bareD, goalTasksP99, get(b.keys.reviewer, "/v1/tasks?role=reviewer")))
		},
		func() error {
			return add(sample("GET /v1/tasks inspector, first page", bareD, goalTasksP99, get(b.keys.inspector, "/v1/tasks?role=inspector")))
		},
		func() error {
			return add(sample("GET /v1/tasks reviewer, process=identity", bareD, goalTasksP99, get(b.keys.reviewer, "/v1/tasks?role=reviewer&process=identity")))
		},
		func() error {
			return add(sample("GET /v1/tasks reviewer, deadline=overdue", bareD, goalTasksP99, get(b.keys.reviewer, "/v1/tasks?role=reviewer&deadline=overdue")))
		},
		func() error {
			return add(sample("GET /v1/tasks inspector, deadline=week", bareD, goalTasksP99, get(b.keys.inspector, "/v1/tasks?role=inspector&deadline=week")))
		},
		func() error {
			return add(sample("GET /v1/tasks reviewer, last page", bareD, goalTasksP99, get(b.keys.reviewer, "/v1/tasks?role=reviewer&last=true")))
		},
		func() error {
			return add(sample("GET /console/tasks reviewer session, first page", bareD, goalTasksP99, func(int) error {
				return b.call(http.StatusOK, nil, "GET", "/console/tasks", "", nil, "Cookie", "taxflow_console="+url.QueryEscape(b.cookie))
			}))
		},
		func() error {
			return add(sample("GET /v1/refunds/{id}", bareD, goalRefundP99, func(i int) error {
				return b.call(http.StatusOK, nil, "GET", "/v1/refunds/"+ids[i%len(ids)], b.keys.integrator, nil)
			}))
		},
		func() error { return add(b.decisions()) },
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// decisions approves refunds in review taken from the reviewer's task list, one at a time;
// the latency is the decision's request alone.
func (b *openBench) decisions() (latency, error) {
	l := latency{name: "POST decision (reviewer approves a listed refund)", base: bareT, goal: goalDecisionP99}
	var page taskList
	for len(l.samples) < openSamples {
		if len(page.Tasks) == 0 {
			if err := b.call(http.StatusOK, &page, "GET", "/v1/tasks?role=reviewer&process=refund&limit=100", b.keys.reviewer, nil); err != nil {
				return l, err
			}
			if len(page.Tasks) == 0 {
				if len(l.samples) == 0 {
					return l, errors.New("decisions: no refund in the reviewer's task list")
				}
				fmt.Printf("note: decisions measured over %d refunds (all there were in review)\n", len(l.samples))
				return l, nil
			}
		}
		t := page.Tasks[0]
		page.Tasks = page.Tasks[1:]
		d, err := time1(func() error {
			return b.call(http.StatusOK, nil, "POST", "/v1/refunds/"+t.CaseID+"/decision", b.keys.reviewer,
				[]byte(`{"approve":true,"reason":"the statement confirms the overpayment"}`))
		})
		if err != nil {
			return l, fmt.Errorf("decision on %s: %w", t.CaseID, err)
		}
		l.samples = append(l.samples, d)
	}
	return l, nil
}

// The bare calls the API's latencies are compared with.
const (
	bareT = "bare Temporal DescribeWorkflowExecution"
	bareD = "bare DynamoDB GetItem (cases table)"
)
