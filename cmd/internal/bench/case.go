package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/cmd/internal/drive"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/cmd/internal/sizing"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// The per-case bench (`taxflow bench --per-case`): cases of each process that matters for
// sizing, one after another, through the real API (in process, over httptest) and a
// worker whose functions run in process; the AWS clients of both are metered (requests by
// operation, DynamoDB capacity units, S3 bytes put) and so is the invoker, every request
// counted against the case whose request or activity made it. Each case's history gives
// its events, tasks and Temporal Cloud actions. The states are waited for through
// Temporal (the case's status search attribute), never by reading the API, so no client
// polling is in the figures.

// benchCaseKey is the context key of the case an API request is for.
type benchCaseKey struct{}

// benchCaseHeader names the case an API request of the bench is for (the API itself never
// reads it: the bench's handler puts it in the request's context for the meter).
const benchCaseHeader = "X-Bench-Case"

// caseOf is the meter's key of a request: the case of the API request or of the activity
// that made it.
func caseOf(ctx context.Context) string {
	if v, ok := ctx.Value(benchCaseKey{}).(string); ok {
		return v
	}
	if activity.IsActivity(ctx) {
		return activity.GetInfo(ctx).WorkflowExecution.ID
	}
	return "unattributed"
}

// perCaseNotIncluded is what the figures leave out, printed and written with them.
var perCaseNotIncluded = []string{
	"the outbox relay (delivery of notifications; it runs in `taxflow worker`, not here)",
	"the schedules (reminder sweeps, reports) and the staff console",
	"client polling: every GET of a case by an integrator is a DynamoDB read, or a Temporal query (one action each on Temporal Cloud)",
	"API key look-ups are in (each request reads its key); Temporal's own persistence is not (see the CPU figures)",
	"a declaration is measured up to its decision: the appeal month's end (a timer firing, the close) and the refund the decision starts (a refund case of its own) are not in its figures, the child's start is",
	"queries, rejected updates and activity heartbeats (no history event)",
}

type perCaseBench struct {
	ctx    context.Context
	a      *app
	c      client.Client
	meter  *sizing.Meter
	base   string
	http   *http.Client
	keys   struct{ integrator, reviewer, inspector string }
	queue  string
	decode converter.DataConverter
}

// benchPerCase measures n cases of each process and prints the table; with jsonPath it
// writes the averages there too.
func benchPerCase(ctx context.Context, a *app, c client.Client, t Target, n int, jsonPath string) error {
	if n < 1 {
		return fmt.Errorf("bench: --n %d: at least one case per process", n)
	}
	if err := a.cfg.RequireSubjectKey(); err != nil { // the API makes subjects
		return err
	}
	b := &perCaseBench{ctx: ctx, a: a, c: c, meter: &sizing.Meter{Key: caseOf}, http: &http.Client{Timeout: time.Minute},
		decode: converter.GetDefaultDataConverter()}
	metered := &awsclient.Clients{Lambda: a.clients.Lambda,
		DynamoDB: dynamodb.New(a.clients.DynamoDB.Options(), b.meter.DynamoDB),
		S3:       s3.New(a.clients.S3.Options(), b.meter.S3)}

	// The worker: every workflow, the activities over in-process functions on the metered clients.
	b.queue = "bench-case-" + uuid.NewString()
	w := worker.New(c, b.queue, worker.Options{})
	workflows.Register(w)
	deps := fn.Deps{Config: a.cfg, DynamoDB: metered.DynamoDB, S3: metered.S3, Log: zerolog.Nop()}
	w.RegisterActivity(&activities.Activities{Invoker: b.meter.Invoker(invoker.NewInProcess(catalog.Handlers(deps))),
		KeyRates: a.cfg.Data.KeyRates})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the bench worker: %w", err)
	}
	defer w.Stop()

	// The API, in process, on the metered clients, starting cases on the bench's queue.
	srv := api.New(a.cfg, metered, c, zerolog.Nop())
	srv.TaskQueue = b.queue
	h := srv.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.Header.Get(benchCaseHeader); k != "" {
			r = r.WithContext(context.WithValue(r.Context(), benchCaseKey{}, k))
		}
		h.ServeHTTP(w, r)
	}))
	defer hs.Close()
	b.base = hs.URL

	// Keys (unmetered: set-up), and taxpayers with what the cases need.
	for _, k := range []struct {
		p   api.Principal
		dst *string
	}{
		{api.Principal{ID: "bench-cabinet", Tenant: seed.CabinetTenant, Role: api.RoleIntegrator}, &b.keys.integrator},
		{api.Principal{ID: "bench-reviewer", Tenant: api.TaxOffice, Role: api.RoleReviewer, Person: "bench-reviewer"}, &b.keys.reviewer},
		{api.Principal{ID: "bench-inspector", Tenant: api.TaxOffice, Role: api.RoleInspector, Person: "bench-inspector"}, &b.keys.inspector},
	} {
		key, err := a.keys().Create(ctx, k.p)
		if err != nil {
			return fmt.Errorf("create the %s key: %w", k.p.Role, err)
		}
		*k.dst = key
	}
	refunds, decls, err := b.subjects(n)
	if err != nil {
		return err
	}
	fmt.Printf("per case: %d refunds and %d declarations, one at a time, through the API in process and a worker with in-process functions "+
		"(queue %s); metered: DynamoDB, S3, function invocations\n\n", n, n, b.queue)

	var out []sizing.Process
	for _, proc := range []struct {
		name, path string
		run        func(label string, s seed.Subject) (string, error)
		subjects   []seed.Subject
	}{
		{"refund", "claimed through the API → awaiting documents → statement uploaded → in review → approved by a reviewer → paid", b.refund, refunds},
		{"declaration", "submitted through the API → automatic check → desk review → confirmed by an inspector (decided)", b.declaration, decls},
	} {
		var cases []sizing.Case
		before, err := b.tableBytes()
		if err != nil {
			return err
		}
		for i, s := range proc.subjects {
			label := fmt.Sprintf("bench-%s-%d-%s", proc.name, i, uuid.NewString()[:8])
			start := time.Now()
			id, err := proc.run(label, s)
			if err != nil {
				return fmt.Errorf("%s %d: %w", proc.name, i+1, err)
			}
			cs, err := b.collect(label, id, time.Since(start))
			if err != nil {
				return err
			}
			cases = append(cases, cs)
		}
		p := sizing.Average(proc.name, proc.path, cases)
		after, err := b.tableBytes()
		if err != nil {
			return err
		}
		p.DynamoBytes = float64(after-before) / float64(len(cases))
		out = append(out, p)
	}
	// The refund of `make bench` and `make bench-cluster` (started directly, documents
	// given, approved automatically): the README's CPU per refund is for its history, so
	// the model scales that CPU by history events from it.
	straight, err := b.straightRefundEvents()
	if err != nil {
		return err
	}
	unattributed := b.meter.Take("unattributed")
	printPerCase(out, unattributed)
	fmt.Printf("the bench's straight-through refund (make bench, make bench-cluster): %d history events\n", straight)

	f := sizing.Figures{Command: "taxflow bench --per-case --n " + fmt.Sprint(n), Generated: time.Now().UTC().Truncate(time.Second),
		Stack:        "local stack: Temporal " + temporalKind(t) + ", DynamoDB Local, the local S3 server; functions in process",
		CapacityNote: capacityNote(out), NotIncluded: perCaseNotIncluded, Processes: out, BenchRefundEvents: straight}
	if jsonPath != "" {
		data, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", jsonPath, err)
		}
		fmt.Printf("\nwritten: %s\n", jsonPath)
	}
	return nil
}

// temporalKind names the Temporal back end of the stack the bench ran on.
func temporalKind(t Target) string {
	if t.stErr == nil && t.st.RunningTemporal() != "" {
		return t.st.RunningTemporal()
	}
	return "(not a local stack)"
}

// capacityNote says where the capacity units came from: DynamoDB's answers, or not all.
func capacityNote(ps []sizing.Process) string {
	missing := 0.0
	for _, p := range ps {
		missing += p.NoCapacity
	}
	if missing == 0 {
		return "capacity units are DynamoDB's own: ConsumedCapacity (TOTAL) asked on every read and write and added up from the answers (DynamoDB Local returns it)"
	}
	return fmt.Sprintf("capacity units from the answers' ConsumedCapacity; %.1f answers per case came without it and are not in the units", missing)
}

// subjects loads fresh seed data (a random seed per dataset, so taxpayers are new) until
// there are n refund-eligible taxpayers and n declarations that pass the automatic check.
func (b *perCaseBench) subjects(n int) (refunds, decls []seed.Subject, err error) {
	tables := seed.Tables{Taxpayers: b.a.cfg.Name(taxpayer.Table), Ledger: b.a.cfg.Name(overpayment.Table), Obligations: b.a.cfg.Name(reminders.Table)}
	for tries := 0; len(refunds) < n || len(decls) < n; tries++ {
		if tries > 20+n {
			return nil, nil, fmt.Errorf("bench: seed data gave %d refunds and %d declarations, want %d each", len(refunds), len(decls), n)
		}
		d, err := seed.Generate(seed.Day(time.Now()), seed.MinTaxpayers*2, rand.Uint64())
		if err != nil {
			return nil, nil, err
		}
		if err := seed.Load(b.ctx, b.a.clients.DynamoDB, tables, d); err != nil {
			return nil, nil, fmt.Errorf("load seed data: %w", err)
		}
		r := d.FindAll(seed.RefundEligible)
		refunds = append(refunds, r[:min(len(r), n-len(refunds))]...)
		ds := d.FindAll(seed.DeclarationPasses)
		decls = append(decls, ds[:min(len(ds), n-len(decls))]...)
	}
	return refunds, decls, nil
}

// call sends one request for a case and decodes the answer (want: the status expected).
func (b *perCaseBench) call(label string, want int, out any, method, path, key string, body []byte, headers ...string) error {
	return drive.Expect(b.ctx, b.http, b.base, want, out, method, path, key, body, append(headers, benchCaseHeader, label)...)
}

// refund: a claim over the confirmed overpayment (so a reviewer decides), the statement
// the case asks for, the approval, the payout; it returns the case id.
func (b *perCaseBench) refund(label string, s seed.Subject) (string, error) {
	var created struct {
		CaseID string `json:"case_id"`
	}
	body := drive.JSON(map[string]any{"inn": s.Taxpayer.INN, "period": s.Period, "amount_kopecks": s.Balance.Refundable + 50_000, "reason": "bench"})
	if err := b.call(label, http.StatusCreated, &created, "POST", "/v1/refunds", b.keys.integrator, body,
		"Idempotency-Key", uuid.NewString(), "Content-Type", "application/json"); err != nil {
		return "", err
	}
	id := created.CaseID
	if err := b.settle(id, workflows.RefundAwaitingInfo); err != nil {
		return id, err
	}
	if err := b.call(label, http.StatusAccepted, nil, "POST", "/v1/refunds/"+id+"/documents?doc_id=statement", b.keys.integrator,
		drive.PDF("Bank statement"), "Content-Type", "application/pdf"); err != nil {
		return id, err
	}
	if err := b.settle(id, workflows.RefundInReview); err != nil {
		return id, err
	}
	if err := b.call(label, http.StatusOK, nil, "POST", "/v1/refunds/"+id+"/decision", b.keys.reviewer,
		[]byte(`{"approve":true,"reason":"the statement confirms the overpayment"}`)); err != nil {
		return id, err
	}
	return id, b.settle(id, workflows.RefundPaid)
}

// declaration: a 3-НДФЛ that passes the automatic check, confirmed by an inspector.
func (b *perCaseBench) declaration(label string, s seed.Subject) (string, error) {
	var created struct {
		CaseID string `json:"case_id"`
	}
	if err := b.call(label, http.StatusCreated, &created, "POST", "/v1/declarations", b.keys.integrator, drive.JSON(s.Declaration.Declaration),
		"Idempotency-Key", uuid.NewString(), "Content-Type", "application/json",
		"X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-"+uuid.NewString()[:8]); err != nil {
		return "", err
	}
	id := created.CaseID
	if err := b.settle(id, workflows.DeclarationInReview); err != nil {
		return id, err
	}
	if err := b.call(label, http.StatusOK, nil, "POST", "/v1/declarations/"+id+"/decision", b.keys.inspector,
		drive.JSON(map[string]string{"decision": workflows.DecisionConfirmed, "grounds": "документы подтверждают вычет"})); err != nil {
		return id, err
	}
	return id, b.settle(id, workflows.DeclarationDecided)
}

// settle waits, through Temporal, until a case's status search attribute is want and the
// case has nothing in flight (no activity, no child starting, no workflow task), seen
// twice in a row, or until it has closed with that status.
func (b *perCaseBench) settle(id, want string) error {
	deadline := time.Now().Add(2 * time.Minute)
	quiet, last := 0, ""
	for {
		d, err := b.c.DescribeWorkflowExecution(b.ctx, id, "")
		if err != nil {
			return fmt.Errorf("describe %s: %w", id, err)
		}
		info := d.GetWorkflowExecutionInfo()
		last = ""
		if p := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchStatus.GetName()]; p != nil {
			if err := b.decode.FromPayload(p, &last); err != nil {
				return fmt.Errorf("status of %s: %w", id, err)
			}
		}
		closed := info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
		idle := len(d.GetPendingActivities()) == 0 && d.GetPendingWorkflowTask() == nil && len(d.GetPendingChildren()) == 0
		switch {
		case last == want && closed:
			return nil
		case last == want && idle:
			if quiet++; quiet >= 2 {
				return nil
			}
		case closed:
			return fmt.Errorf("%s closed with status %q, want %q", id, last, want)
		default:
			quiet = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited 2m for %s to be %s; last seen %q", id, want, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// collect takes the meter's counts of a case (its API requests under the label, its
// activities under the case id) and counts its history.
func (b *perCaseBench) collect(label, id string, wall time.Duration) (sizing.Case, error) {
	u := b.meter.Take(label)
	u.Add(b.meter.Take(id))
	h, err := histories.Fetch(b.ctx, b.c, id, "")
	if err != nil {
		return sizing.Case{}, err
	}
	return sizing.Case{ID: id, History: sizing.CountHistory(h), Usage: u, Wall: wall}, nil
}

// tableBytes adds up the tables' sizes (DescribeTable's TableSizeBytes; unmetered). The
// child refunds a process's cases start write too: a few items, in the figure.
func (b *perCaseBench) tableBytes() (int64, error) {
	var total int64
	p := dynamodb.NewListTablesPaginator(b.a.clients.DynamoDB, &dynamodb.ListTablesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(b.ctx)
		if err != nil {
			return 0, fmt.Errorf("list tables: %w", err)
		}
		for _, name := range page.TableNames {
			if !strings.HasPrefix(name, b.a.cfg.Name("")) {
				continue
			}
			d, err := b.a.clients.DynamoDB.DescribeTable(b.ctx, &dynamodb.DescribeTableInput{TableName: &name})
			if err != nil {
				return 0, fmt.Errorf("describe %s: %w", name, err)
			}
			total += aws.ToInt64(d.Table.TableSizeBytes)
		}
	}
	return total, nil
}

// straightRefundEvents runs one refund as `make bench` does and counts its history.
func (b *perCaseBench) straightRefundEvents() (int, error) {
	inputs, err := prepare(b.ctx, b.a, 1)
	if err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	r, err := runRefunds(b.ctx, b.a, b.c, b.queue, inputs)
	if err != nil {
		return 0, err
	}
	b.meter.Take(r.ids[0]) // not a case of the figures
	h, err := histories.Fetch(b.ctx, b.c, r.ids[0], "")
	if err != nil {
		return 0, err
	}
	return len(h.GetEvents()), nil
}

// printPerCase prints the per-case table: one column per process.
func printPerCase(ps []sizing.Process, unattributed sizing.Usage) {
	row := func(name string, f func(p sizing.Process) string) {
		fmt.Printf("%-44s", name)
		for _, p := range ps {
			fmt.Printf(" %14s", f(p))
		}
		fmt.Println()
	}
	num := func(f func(p sizing.Process) float64) func(p sizing.Process) string {
		return func(p sizing.Process) string { return fmt.Sprintf("%.1f", f(p)) }
	}
	row("per case (average of N)", func(p sizing.Process) string { return fmt.Sprintf("%s (N=%d)", p.Name, p.Cases) })
	row("history events", num(func(p sizing.Process) float64 { return p.HistoryEvents }))
	row("history bytes", num(func(p sizing.Process) float64 { return p.HistoryBytes }))
	row("workflow tasks", num(func(p sizing.Process) float64 { return p.WorkflowTasks }))
	row("activity tasks (attempts)", func(p sizing.Process) string { return fmt.Sprintf("%.1f (%.1f)", p.ActivityTasks, p.ActivityAttempts) })
	row("local activities", num(func(p sizing.Process) float64 { return p.LocalActivities }))
	row("timers", num(func(p sizing.Process) float64 { return p.Timers }))
	row("signals / updates", func(p sizing.Process) string { return fmt.Sprintf("%.1f / %.1f", p.Signals, p.Updates) })
	row("search attribute upserts", num(func(p sizing.Process) float64 { return p.Upserts }))
	row("child workflows", num(func(p sizing.Process) float64 { return p.Children }))
	row("Temporal Cloud actions (estimated)", num(func(p sizing.Process) float64 { return p.Actions }))
	row("function invocations", num(func(p sizing.Process) float64 { return p.Invocations }))
	row("function time, ms (in process)", num(func(p sizing.Process) float64 { return p.FunctionSeconds * 1000 }))
	row("DynamoDB reads / writes", func(p sizing.Process) string { return fmt.Sprintf("%.1f / %.1f", p.DynamoReads, p.DynamoWrites) })
	row("DynamoDB read / write units", func(p sizing.Process) string { return fmt.Sprintf("%.1f / %.1f", p.ReadUnits, p.WriteUnits) })
	row("DynamoDB tables grew by, bytes", num(func(p sizing.Process) float64 { return p.DynamoBytes }))
	row("S3 requests", num(func(p sizing.Process) float64 { return p.S3Requests }))
	row("S3 bytes put", num(func(p sizing.Process) float64 { return p.S3PutBytes }))
	row("wall time, s (bench, one at a time)", func(p sizing.Process) string { return fmt.Sprintf("%.2f", p.WallSeconds) })
	fmt.Println()
	for _, p := range ps {
		fmt.Printf("%s: actions by rule:", p.Name)
		for _, k := range sortedRules(p.ActionsByRule) {
			fmt.Printf(" %s %.1f;", k, p.ActionsByRule[k])
		}
		fmt.Println()
	}
	if n := sizing.Sum(unattributed.DynamoDB) + sizing.Sum(unattributed.S3) + sizing.Sum(unattributed.Functions); n > 0 {
		fmt.Printf("not attributed to a case (left out): %d DynamoDB, %d S3 requests, %d invocations\n",
			sizing.Sum(unattributed.DynamoDB), sizing.Sum(unattributed.S3), sizing.Sum(unattributed.Functions))
	}
	fmt.Println("not included:")
	for _, s := range perCaseNotIncluded {
		fmt.Println("  - " + s)
	}
}

func sortedRules(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		if v > 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
