package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
)

// Options are the bench's flags (taxflow bench --help).
type Options struct {
	N, Rounds int // refunds per run; rounds, each running every variant once
	// Creates is the create-path bench's creates per run (0: skip it); CreateOnly runs only it.
	Creates    int
	CreateOnly bool
	// Temporal is the back end the bench is to measure (dev, server, or "": whatever runs).
	Temporal string
	// Scaling also runs the refunds on 1 and 2 `taxflow worker` processes.
	Scaling bool

	// At most one of these runs instead of the refund bench.
	Sweep        int    // a reminder sweep over this many obligations
	Batch        int    // a batch file of this many lines
	BatchHistory int    // with Batch: then a file of this many lines, its history and the worker's heap
	Overhead     bool   // refunds with and without metrics and tracing
	PerCase      bool   // N cases of each process, metered (docs/sizing.md)
	JSON         string // with PerCase: the file the averages are written to
	Open         int    // this many cases in waiting states
	Webhooks     bool   // refunds with one webhook endpoint against none
	Wave         int    // this many refunds in review falling due at one instant
}

// Check refuses options no bench can run, naming the flag and why, before the bench reads
// the stack or connects to anything.
func (o Options) Check() error {
	var errs []error
	if o.N < 1 {
		errs = append(errs, fmt.Errorf("--n %d: want at least 1 case per run", o.N))
	}
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("--rounds %d: want at least 1 round", o.Rounds))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--creates", o.Creates}, {"--sweep", o.Sweep}, {"--batch", o.Batch}, {"--batch-history", o.BatchHistory}, {"--open", o.Open}, {"--wave", o.Wave}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must not be negative", f.name, f.v))
		}
	}
	if err := checkBackend(o.Temporal); err != nil {
		errs = append(errs, err)
	}
	var modes []string
	for _, m := range []struct {
		name string
		on   bool
	}{{"--open", o.Open > 0}, {"--webhooks", o.Webhooks}, {"--wave", o.Wave > 0}, {"--per-case", o.PerCase},
		{"--sweep", o.Sweep > 0}, {"--batch", o.Batch > 0}, {"--overhead", o.Overhead}, {"--create-only", o.CreateOnly}} {
		if m.on {
			modes = append(modes, m.name)
		}
	}
	if len(modes) > 1 {
		errs = append(errs, fmt.Errorf("%s: each runs instead of the others; choose one", strings.Join(modes, ", ")))
	}
	if o.JSON != "" && !o.PerCase {
		errs = append(errs, fmt.Errorf("--json %s: only with --per-case", o.JSON))
	}
	if o.BatchHistory > 0 && o.Batch == 0 {
		errs = append(errs, fmt.Errorf("--batch-history %d: only with --batch", o.BatchHistory))
	}
	if o.Scaling && len(modes) > 0 {
		errs = append(errs, fmt.Errorf("--scaling: only with the refund bench, not with %s", modes[0]))
	}
	if len(errs) > 0 {
		return fmt.Errorf("bench: %w", errors.Join(errs...))
	}
	return nil
}

// Env is the command's wiring a bench runs on.
type Env struct {
	Config  config.Config
	Clients *awsclient.Clients
	Log     zerolog.Logger
	// Invoker is the configured way of calling functions (the sweep's worker uses it).
	Invoker  invoker.Invoker
	Temporal client.Client
}

// app is the part of the command's wiring the benches use.
type app struct {
	cfg     config.Config
	clients *awsclient.Clients
	log     zerolog.Logger
	inv     invoker.Invoker
}

func (a *app) keys() api.DynamoKeys     { return api.Keys(a.cfg, a.clients) }
func (a *app) invoker() invoker.Invoker { return a.inv }

// Target is the stack a bench measures, as Locate found it.
type Target struct {
	st        stack.Stack
	stErr     error  // why the run directory's stack could not be read (st is then empty)
	haveStack bool   // the CPU by process is read from st's processes
	backend   string // the Temporal back end of st ("": not known)
}

// Locate checks, before the bench connects to anything, the stack of the run directory
// (st, or stErr when it could not be read), whose processes' CPU the bench reports, and the
// Temporal back end it runs: the one asked for, or the bench stops here. getenv is the
// environment the bench's Temporal client is configured from.
func Locate(o Options, st stack.Stack, stErr error, getenv func(string) string) (Target, error) {
	backend := ""
	if stErr == nil {
		var err error
		if backend, err = benchBackend(o.Temporal, st.RunningTemporal(), st.Dir); err != nil {
			return Target{}, err
		}
		if backend != "" {
			// The services whose CPU is read are those of the back end that runs.
			if err := st.SetTemporal(backend); err != nil {
				return Target{}, err
			}
		}
	} else if o.Temporal != "" {
		return Target{}, stErr
	}
	// The CPU by process is that of the run directory's stack: only if the bench talks to it.
	haveStack := stErr == nil
	if backend != "" {
		cfg, err := config.Load(getenv)
		if err != nil {
			return Target{}, err
		}
		if err := benchAddress(cfg.Temporal.Address, st.Dir, st.Ports.Temporal); err != nil {
			if o.Temporal != "" {
				return Target{}, err
			}
			fmt.Printf("note: no CPU by process: %v\n", err)
			haveStack, backend = false, ""
		}
	}
	return Target{st: st, stErr: stErr, haveStack: haveStack, backend: backend}, nil
}

// Run runs the bench the options choose on the stack Locate found.
func Run(ctx context.Context, env Env, o Options, t Target) error {
	if err := o.Check(); err != nil {
		return err
	}
	a := &app{cfg: env.Config, clients: env.Clients, log: env.Log, inv: env.Invoker}
	return run(ctx, a, env.Temporal, o, t)
}

// run runs N refunds end to end on the configured stack: once with the functions behind
// the Lambda Invoke API, once in process, and a bare workflow with the refund's activity
// shape on the same server as the baseline; or, instead, the bench an option chooses.
func run(ctx context.Context, a *app, c client.Client, o Options, t Target) error {
	st, haveStack, backend := t.st, t.haveStack, t.backend
	if backend != "" {
		fmt.Printf("Temporal: %s (stack %s)\n", map[string]string{stack.TemporalDev: "the dev server", stack.TemporalServer: "the cluster on PostgreSQL"}[backend], st.Dir)
	}
	if o.Open > 0 {
		return benchOpen(ctx, a, c, t, o.Open)
	}
	if o.Webhooks {
		if err := a.cfg.RequireSubjectKey(); err != nil {
			return err
		}
		return benchWebhooks(ctx, a, c, o.N, o.Rounds)
	}
	if o.Wave > 0 {
		return benchWave(ctx, a, c, o.Wave)
	}
	if o.PerCase {
		return benchPerCase(ctx, a, c, t, o.N, o.JSON)
	}
	if o.Sweep > 0 {
		return benchSweep(ctx, a, c, o.Sweep)
	}
	if o.Batch > 0 {
		return benchBatch(ctx, a, c, o.Batch, o.BatchHistory)
	}
	if o.Overhead {
		if err := a.cfg.RequireSubjectKey(); err != nil {
			return err
		}
		return benchOverhead(ctx, a, o.N, o.Rounds)
	}
	// Bench refunds are cases like any other: they carry the taxpayer's subject.
	if err := a.cfg.RequireSubjectKey(); err != nil {
		return err
	}
	if o.CreateOnly {
		return benchCreate(ctx, a, c, t, o.Creates, o.Rounds, []int{5, 50})
	}
	lambdaInv := &invoker.Lambda{Client: a.clients.Lambda, Resolve: a.cfg.Name}
	inproc := invoker.NewInProcess(catalog.Handlers(fn.Deps{Config: a.cfg, DynamoDB: a.clients.DynamoDB, S3: a.clients.S3, Log: a.log}))

	// Warm up (function instances, connections) and learn the refund's shape.
	warm, err := benchRefunds(ctx, a, c, lambdaInv, 2)
	if err != nil {
		return err
	}
	dc, err := temporalclient.DataConverter(a.cfg.Temporal)
	if err != nil {
		return err
	}
	shape, err := activityShape(ctx, c, dc, warm.ids[0])
	if err != nil {
		return err
	}
	tasks, locals := sum(shape.Shape), sum(shape.Local)
	total := tasks + locals
	fmt.Printf("refund: %d activities: %d activity tasks in %d steps %v, %d local activities %v; N = %d\n",
		total, tasks, len(shape.Shape), shape.Shape, locals, shape.Local, o.N)
	fmt.Printf("baselines: bare workflows of no-op activities: the refund's shape (the same activity tasks and local activities), "+
		"its %d activities all as tasks, and the refund's shape before issue 12 (%d activities in %d steps %v)\n\n",
		total, sum(legacyShape), len(legacyShape), legacyShape)
	allTasks := shape.AsTasks()

	// The dev server's store grows as runs go by, so every round runs each variant
	// once, in a rotating order, and the median round of each is reported.
	runs := map[string]func() (benchResult, error){
		"bare":      func() (benchResult, error) { return benchBare(ctx, a, c, shape, o.N) },
		"baretasks": func() (benchResult, error) { return benchBare(ctx, a, c, allTasks, o.N) },
		"bare17": func() (benchResult, error) {
			return benchBare(ctx, a, c, workflows.BareWorkflowInput{Shape: legacyShape}, o.N)
		},
		"inprocess": func() (benchResult, error) { return benchRefunds(ctx, a, c, inproc, o.N) },
		"lambda":    func() (benchResult, error) { return benchRefunds(ctx, a, c, lambdaInv, o.N) },
	}
	order := []string{"bare", "baretasks", "bare17", "inprocess", "lambda"}
	// The scaling: the same refunds through the Lambda host, run by `taxflow worker`
	// processes, one on a task queue of their own, two on another. All three run
	// throughout (the idle ones long-poll); each is warmed up like the bench's own worker.
	var procs []*workerProcs
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	if o.Scaling {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		logDir := os.TempDir()
		if haveStack {
			logDir = filepath.Join(st.Dir, "logs")
		}
		for k := 1; k <= 2; k++ {
			p, err := startWorkerProcs(ctx, c, self, logDir, k)
			if err != nil {
				return err
			}
			procs = append(procs, p)
			inputs, err := prepare(ctx, a, 2)
			if err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			if _, err := runRefunds(ctx, a, c, p.queue, inputs); err != nil {
				return fmt.Errorf("warm-up of %d worker processes: %w", k, err)
			}
			name := fmt.Sprintf("procs%d", k)
			runs[name] = func() (benchResult, error) {
				inputs, err := prepare(ctx, a, o.N)
				if err != nil {
					return benchResult{}, fmt.Errorf("prepare: %w", err)
				}
				return runRefunds(ctx, a, c, p.queue, inputs)
			}
			order = append(order, name)
		}
	}
	all := map[string][]benchResult{}
	cpu := map[string]map[string]float64{} // variant → service → CPU seconds, all rounds
	for round := 0; round < o.Rounds; round++ {
		for i := range order {
			name := order[(i+round)%len(order)]
			before := cpuNow(st, haveStack, procs)
			r, err := runs[name]()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			after := cpuNow(st, haveStack, procs)
			if cpu[name] == nil {
				cpu[name] = map[string]float64{}
			}
			for k, v := range after {
				cpu[name][k] += v - before[k]
			}
			fmt.Printf("round %d %-10s %6.2f wf/s  p50 %s  p99 %s  cores busy %.2f\n", round+1, name, r.throughput, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.busy)
			all[name] = append(all[name], r)
		}
	}
	results := map[string]benchResult{}
	for name, rs := range all {
		sort.Slice(rs, func(i, j int) bool { return rs[i].throughput < rs[j].throughput })
		results[name] = rs[len(rs)/2]
	}
	fmt.Println()
	base, baseTasks, base17 := results["bare"], results["baretasks"], results["bare17"]
	label := map[string]string{
		"bare":      fmt.Sprintf("bare, the refund's shape (%d+%d local)", tasks, locals),
		"baretasks": fmt.Sprintf("bare, %d no-op activity tasks", total),
		"bare17":    fmt.Sprintf("bare workflow, %d no-op activities", sum(legacyShape)),
		"inprocess": "refund, in-process functions", "lambda": "refund, Lambda host",
		"procs1": "refund, Lambda host, 1 worker process", "procs2": "refund, Lambda host, 2 worker processes"}
	fmt.Printf("%-40s %10s %10s %10s   %-26s %-24s %s\n", "run", "wf/s", "p50", "p99", "vs bare (throughput, p50)", "vs bare 17 (throughput)", "cores busy")
	for _, name := range order {
		r := results[name]
		fmt.Printf("%-40s %10.2f %10s %10s   %-26s %-24.2f %.2f\n", label[name],
			r.throughput, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond),
			fmt.Sprintf("%.2f, %.2f", r.throughput/base.throughput, float64(base.p50)/float64(r.p50)), r.throughput/base17.throughput, r.busy)
	}
	if o.Scaling {
		p1, p2 := results["procs1"], results["procs2"]
		fmt.Printf("\nworker processes (refunds via the Lambda host, N = %d, median of %d rounds): 1: %.2f wf/s, 2: %.2f wf/s; 2/1 = %.2f "+
			"(the machine's cores busy meanwhile: %.2f, %.2f of %d)\n",
			o.N, o.Rounds, p1.throughput, p2.throughput, p2.throughput/p1.throughput, p1.busy, p2.busy, runtime.NumCPU())
	}

	// Where the CPU went (the machine's cores are shared by the server, its database, the
	// stores and the worker, so throughput follows CPU): ms per workflow, by process.
	if haveStack {
		server := backend == stack.TemporalServer
		fmt.Println()
		fmt.Printf("%-40s", "CPU ms per workflow")
		for _, k := range append(cpuTable, "total", "others") {
			fmt.Printf(" %9s", k)
		}
		fmt.Println()
		for _, name := range order {
			fmt.Printf("%-40s", label[name])
			for _, v := range cpuRow(cpu[name], o.N*o.Rounds, server) {
				fmt.Printf(" %9s", v)
			}
			fmt.Println()
		}
		if server {
			fmt.Printf("\n%-40s", "temporal, by service (CPU ms per workflow)")
			for _, k := range clusterSplit {
				fmt.Printf(" %9s", strings.TrimPrefix(k, "temporal-"))
			}
			fmt.Println()
			for _, name := range order {
				fmt.Printf("%-40s", label[name])
				for _, k := range clusterSplit {
					fmt.Printf(" %9.0f", max(0, 1000*cpu[name][k]/float64(o.N*o.Rounds)))
				}
				fmt.Println()
			}
		}
		fmt.Println("(worker: the bench process — client, and the worker of all but the worker-process runs — and the worker processes it started;\n" +
			" others: the machine's CPU not used by these processes, i.e. by anything else running on it at the time)")
	}

	// Steps per refund, counted from the histories of every refund run through the
	// Lambda host (retries included), not assumed.
	var ids []string
	for _, r := range all["lambda"] {
		ids = append(ids, r.ids...)
	}
	steps, err := stepsPerWorkflow(ctx, c, dc, ids)
	if err != nil {
		return err
	}
	lambda := results["lambda"]
	fmt.Println()
	fmt.Printf("activities per refund: %s (activity tasks %s, local activities %s)\n", perRefund(steps.tasks+steps.locals, len(ids)),
		perRefund(steps.tasks, len(ids)), perRefund(steps.locals, len(ids)))
	fmt.Printf("lambda invocations per refund: %s\n", perRefund(steps.invocations, len(ids)))
	fmt.Printf("refund throughput vs bare %d-activity workflow: %.2fx (goal >= 1.6x)\n", sum(legacyShape), lambda.throughput/base17.throughput)
	fmt.Printf("refund throughput vs bare workflow of %d activity tasks (the refund's activity count): %.2fx (goal >= 0.9x)\n", total, lambda.throughput/baseTasks.throughput)
	fmt.Printf("refund throughput vs bare workflow of the refund's shape (%d tasks, %d local): %.2fx\n", tasks, locals, lambda.throughput/base.throughput)
	if o.Creates > 0 {
		return benchCreate(ctx, a, c, t, o.Creates, o.Rounds, []int{5, 50})
	}
	return nil
}

// cpuNow is the CPU seconds used so far by each service of the stack and, as "worker", by
// this process and the worker processes it started.
func cpuNow(st stack.Stack, haveStack bool, procs []*workerProcs) map[string]float64 {
	out := map[string]float64{}
	if haveStack {
		out = st.CPU()
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["worker"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	for _, p := range procs {
		out["worker"] += p.cpu()
	}
	if m, err := stack.MachineCPU(); err == nil {
		out[machineCPU] = m
	}
	return out
}

type benchResult struct {
	ids        []string
	throughput float64
	p50, p99   time.Duration
	// busy is the machine's cores busy while the workflows ran (all processes; 0 where
	// /proc/stat is not read): near the core count, CPU is what limits the throughput.
	busy float64
}

// innSeq hands out INNs no other call in this process has had. A bench's cases must not
// share a taxpayer: two refunds of one taxpayer share its overpayment, so the second is
// capped or refused instead of waiting like the others, and random INNs do collide (the
// birthday bound: about 20 pairs among 63,500 drawn from 10^8).
type innSeq struct {
	prefix string
	next   atomic.Int64
}

// newINNSeq starts a sequence at a random point of its prefix's 10^8 numbers, leaving
// half of them ahead: runs on a stack reused by hand seldom meet.
func newINNSeq(prefix string) *innSeq {
	s := &innSeq{prefix: prefix}
	s.next.Store(rand.Int64N(50_000_000))
	return s
}

// INN is the sequence's next taxpayer number (12 digits with their check digits).
func (s *innSeq) INN() string {
	return domain.CompleteINN12(fmt.Sprintf("%s%08d", s.prefix, s.next.Add(1)%100_000_000))
}

var (
	refundINNs  = newINNSeq("98") // refunds of the open-cases and batch benches
	accountINNs = newINNSeq("97") // locked accounts of the open-cases bench
	waveINNs    = newINNSeq("99") // prepare's refunds
)

// prepare registers taxpayers with an overpayment and uploads one statement per case.
func prepare(ctx context.Context, a *app, n int) ([]workflows.RefundWorkflowInput, error) {
	policy := workflows.DefaultRefundPolicy()
	out := make([]workflows.RefundWorkflowInput, n)
	for i := range out {
		inn := waveINNs.INN()
		bik := "044525225"
		tp := contract.Taxpayer{INN: inn, Name: "БЕНЧ", AccountState: "active", Confirmed: true, INNLinked: true,
			Bank: &contract.BankRequisites{BIK: bik, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rand.Int64N(1e12)), bik)}}
		if _, err := store.PutNew(ctx, a.clients.DynamoDB, a.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
			return nil, err
		}
		for _, e := range []contract.LedgerEntry{
			{INN: inn, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 1_000_000},
			{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 1_500_000},
		} {
			if _, err := store.PutNew(ctx, a.clients.DynamoDB, a.cfg.Name(overpayment.Table), "entry_id", e); err != nil {
				return nil, err
			}
		}
		id := workflows.RefundID(uuid.NewString())
		key := document.IncomingKey(id, "statement")
		pdf := []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n")
		if _, err := a.clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.cfg.Name(document.Bucket)), Key: &key, Body: bytes.NewReader(pdf)}); err != nil {
			return nil, err
		}
		out[i] = workflows.RefundWorkflowInput{CaseID: id, INN: inn, Period: 2025, Amount: 400_000, Reason: "bench",
			RequestID: "bench", Documents: []workflows.DocumentRef{{DocID: "statement"}}, Policy: policy}
	}
	return out, nil
}

func benchWorker(a *app, c client.Client, inv invoker.Invoker) (string, func(), error) {
	queue := "bench-" + uuid.NewString()
	w := worker.New(c, queue, worker.Options{MaxConcurrentActivityExecutionSize: 200, MaxConcurrentWorkflowTaskExecutionSize: 50})
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: inv})
	if err := w.Start(); err != nil {
		return "", nil, err
	}
	return queue, w.Stop, nil
}

func benchRefunds(ctx context.Context, a *app, c client.Client, inv invoker.Invoker, n int) (benchResult, error) {
	inputs, err := prepare(ctx, a, n)
	if err != nil {
		return benchResult{}, fmt.Errorf("prepare: %w", err)
	}
	queue, stop, err := benchWorker(a, c, inv)
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	return runRefunds(ctx, a, c, queue, inputs)
}

// runRefunds starts the refunds at once on a task queue and waits until each is paid.
func runRefunds(ctx context.Context, a *app, c client.Client, queue string, inputs []workflows.RefundWorkflowInput) (benchResult, error) {
	return measure(ctx, len(inputs), func(i int) (client.WorkflowRun, error) {
		return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: inputs[i].CaseID, TaskQueue: queue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("refund"), workflows.SearchStatus.ValueSet(workflows.RefundReceived),
				workflows.SearchSubject.ValueSet(a.cfg.Subject.Value(inputs[i].INN))),
		}, workflows.Refund, inputs[i])
	}, func(run client.WorkflowRun) error {
		var st workflows.RefundStatus
		if err := run.Get(ctx, &st); err != nil {
			return err
		}
		if st.Status != workflows.RefundPaid {
			return fmt.Errorf("%s ended %s (%s)", st.CaseID, st.Status, st.Reason)
		}
		return nil
	})
}

func benchBare(ctx context.Context, a *app, c client.Client, shape workflows.BareWorkflowInput, n int) (benchResult, error) {
	queue, stop, err := benchWorker(a, c, invoker.NewInProcess(nil))
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	return measure(ctx, n, func(int) (client.WorkflowRun, error) {
		return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-bare-" + uuid.NewString(), TaskQueue: queue},
			workflows.Bare, shape)
	}, func(run client.WorkflowRun) error { return run.Get(ctx, nil) })
}

// measure starts n workflows at once and waits for each: throughput over the whole
// run, latency from each start to its completion.
func measure(ctx context.Context, n int, start func(int) (client.WorkflowRun, error), wait func(client.WorkflowRun) error) (benchResult, error) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		ids       []string
		firstErr  error
		wg        sync.WaitGroup
	)
	m0, mErr := stack.MachineCPU()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := time.Now()
			run, err := start(i)
			if err == nil {
				err = wait(run)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			latencies = append(latencies, time.Since(s))
			ids = append(ids, run.GetID())
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if firstErr != nil {
		return benchResult{}, firstErr
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	busy := 0.0
	if m1, err := stack.MachineCPU(); err == nil && mErr == nil {
		busy = (m1 - m0) / elapsed.Seconds()
	}
	return benchResult{ids: ids, throughput: float64(n) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99), busy: busy}, nil
}

// legacyShape is the refund's happy path before issue 12 (journal, projection and
// notification were three activities per transition): 17 activities in 7 steps.
var legacyShape = []int{3, 2, 1, 4, 3, 1, 3}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// perRefund prints a count per refund: a whole number when every refund had the same.
func perRefund(total, n int) string {
	if n == 0 {
		return "n/a"
	}
	if total%n == 0 {
		return fmt.Sprint(total / n)
	}
	return fmt.Sprintf("%.2f", float64(total)/float64(n))
}

// stepsPerWorkflow reads finished workflows' histories: the activities they scheduled
// and the function invocations those made. Every refund activity invokes one function
// workflowSteps are the steps the refunds took, counted from their histories.
type workflowSteps struct {
	tasks, locals int // activity tasks scheduled, local activities recorded
	invocations   int // function invocations: every attempt of either
}

// localActivity is the part of the SDK's local activity marker data the bench reads.
type localActivity struct {
	ActivityType string
	Attempt      int32
}

// localMarker decodes a local activity marker (ok false for any other event).
func localMarker(dc converter.DataConverter, ev *historypb.HistoryEvent) (localActivity, bool, error) {
	m := ev.GetMarkerRecordedEventAttributes()
	if m.GetMarkerName() != "LocalActivity" {
		return localActivity{}, false, nil
	}
	var la localActivity
	if err := dc.FromPayloads(m.GetDetails()["data"], &la); err != nil {
		return la, false, fmt.Errorf("local activity marker %d: %w", ev.GetEventId(), err)
	}
	return la, true, nil
}

func stepsPerWorkflow(ctx context.Context, c client.Client, dc converter.DataConverter, ids []string) (workflowSteps, error) {
	var st workflowSteps
	for _, id := range ids {
		it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return st, fmt.Errorf("history of %s: %w", id, err)
			}
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				st.tasks++
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				st.invocations += int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				la, ok, err := localMarker(dc, ev)
				if err != nil {
					return st, fmt.Errorf("history of %s: %w", id, err)
				}
				if ok {
					st.locals++
					st.invocations += int(max(la.Attempt, 1))
				}
			}
		}
	}
	return st, nil
}

// activityShape reads a finished workflow's history: how many activity tasks each
// workflow task scheduled, and how many local activities it ran before them (a workflow
// task that ran only local activities adds them to the next step's, or, the last one,
// to those run before the workflow completes).
func activityShape(ctx context.Context, c client.Client, dc converter.DataConverter, id string) (workflows.BareWorkflowInput, error) {
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out workflows.BareWorkflowInput
	pendingLocal := 0
	last := int64(-1)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return out, err
		}
		if _, ok, err := localMarker(dc, ev); err != nil {
			return out, err
		} else if ok {
			pendingLocal++
			continue
		}
		if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED {
			continue
		}
		batch := ev.GetActivityTaskScheduledEventAttributes().GetWorkflowTaskCompletedEventId()
		if batch == last {
			out.Shape[len(out.Shape)-1]++
		} else {
			out.Shape = append(out.Shape, 1)
			out.Local = append(out.Local, pendingLocal)
			pendingLocal = 0
			last = batch
		}
	}
	out.Local = append(out.Local, pendingLocal)
	return out, nil
}
