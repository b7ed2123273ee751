//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/infra"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/workflows"
)

// taskCase is an open case the test made, as the task list should show it.
type taskCase struct {
	id, process, tenant string
	due                 time.Time // zero: no term
	open                bool      // still in its human step
	escalated           bool
}

// The task list on the stack: a few hundred reviewer tasks of two tenants, each step
// written by the deployed record-transition function (so the keys are the function's)
// and a few refunds through the whole real path (API, workflow, documents, review),
// read back through GET /v1/tasks and /console/tasks from the cases table's indexes:
// deadline order with no term last, the process and deadline filters, the last page,
// paging by cursor and by page number, a case that left its step gone, and never
// another tenant's case, whatever cursor is sent.
func TestTaskListFromTheProjectionIndexes(t *testing.T) {
	ctx := context.Background()
	run := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	tenantA, tenantB := "tasks-a-"+run, "tasks-b-"+run
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	key := func(p api.Principal) string {
		k, _, err := keys.CreateKey(ctx, p, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	office := key(api.Principal{Tenant: api.TaxOffice, Role: api.RoleReviewer, Person: "tasks-office-" + run})
	boundA := key(api.Principal{Tenant: api.TaxOffice, BoundTo: tenantA, Role: api.RoleReviewer, Person: "tasks-a-" + run})
	boundB := key(api.Principal{Tenant: api.TaxOffice, BoundTo: tenantB, Role: api.RoleReviewer, Person: "tasks-b-" + run})

	// 1. Recorded steps: 320 cases, refunds in review and identity cases in manual review,
	// terms from 5 days ago to 20 days ahead, every 13th without one; every 10th then
	// leaves its step (approved / verified).
	inv := lambdaInvoker()
	owners := shared.cfg.Name(api.OwnersTable)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var mu sync.Mutex
	var cases []taskCase
	record := func(in contract.RecordInput) error {
		b, _ := json.Marshal(in)
		out, err := inv.Invoke(ctx, contract.FnRecordTransition, b)
		if err != nil {
			return fmt.Errorf("record %s/%d: %w (%s)", in.CaseID, in.Seq, err, out)
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	const n = 320
	for i := range n {
		g.Go(func() error {
			tc := taskCase{process: "refund", tenant: []string{tenantA, tenantB}[i%2], open: i%10 != 7, escalated: i%9 == 0}
			status, done := workflows.RefundInReview, workflows.RefundApproved
			if i%3 == 1 {
				tc.process, status, done = "identity", workflows.IdentityManualReview, workflows.IdentityVerified
			}
			tc.id = tc.process + "-" + uuid.NewString()
			if i%13 != 5 {
				tc.due = now.Add(time.Duration((i*7919)%600-120) * time.Hour)
			}
			if _, err := store.PutNew(gctx, shared.clients.DynamoDB, owners, "case_id",
				tasks.Owner{CaseID: tc.id, Tenant: tc.tenant, CreatedBy: tc.tenant + "/integrator", CreatedAt: now.Unix()}); err != nil {
				return err
			}
			step := func(seq int64, st string) contract.RecordInput {
				return contract.RecordInput{CaseID: tc.id, Seq: seq, Entries: []contract.AuditEntry{{At: now, Actor: "system", Action: "status_changed", To: st}},
					Case: &contract.CaseRecord{Process: tc.process, Status: st, Label: st, UpdatedAt: now, Deadline: tc.due, Escalated: tc.escalated}}
			}
			if err := record(step(1, "received")); err != nil {
				return err
			}
			if err := record(step(2, status)); err != nil {
				return err
			}
			if !tc.open {
				if err := record(step(3, done)); err != nil {
					return err
				}
			}
			mu.Lock()
			cases = append(cases, tc)
			mu.Unlock()
			return nil
		})
	}
	// 2. The real path: refunds of each tenant created, documented and put in review.
	for i := range 6 {
		g.Go(func() error {
			tenant := []string{tenantA, tenantB}[i%2]
			integrator := &apiClient{t, base + "|" + key(api.Principal{Tenant: tenant, Role: api.RoleIntegrator})}
			code, id := integrator.create(newTaxpayer(t, 3_000_000), 2_500_000, uuid.NewString())
			if code != http.StatusCreated {
				return fmt.Errorf("create: %d", code)
			}
			integrator.waitStatus(id, workflows.RefundAwaitingInfo)
			if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted {
				return fmt.Errorf("upload: %d %s", code, out)
			}
			st := integrator.waitStatus(id, workflows.RefundInReview)
			mu.Lock()
			cases = append(cases, taskCase{id: id, process: "refund", tenant: tenant, due: st.Deadline, open: true})
			mu.Unlock()
			return nil
		})
	}
	start := time.Now()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cases made in %s", len(cases), time.Since(start).Round(time.Millisecond))

	order := func(cs []taskCase) []string {
		cs = slices.Clone(cs)
		slices.SortFunc(cs, func(a, b taskCase) int {
			return strings.Compare(tasks.DueKey(a.due, a.id), tasks.DueKey(b.due, b.id))
		})
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.id)
		}
		return ids
	}
	pick := func(keep func(taskCase) bool) []taskCase {
		var out []taskCase
		for _, c := range cases {
			if c.open && keep(c) {
				out = append(out, c)
			}
		}
		return out
	}
	get := func(k, query string) (out struct {
		Tasks      []api.Task `json:"tasks"`
		Next, Prev string
	}) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/v1/tasks?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+k)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		checkContract(t, req, nil, res.StatusCode, res.Header, b)
		if res.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
			t.Fatalf("GET /v1/tasks?%s: %d %s", query, res.StatusCode, b)
		}
		return out
	}
	walk := func(k, query string) []string {
		t.Helper()
		var ids []string
		v, _ := url.ParseQuery(query)
		for range 1000 {
			page := get(k, v.Encode())
			for _, tk := range page.Tasks {
				ids = append(ids, tk.CaseID)
			}
			if page.Next == "" {
				return ids
			}
			v.Set("cursor", page.Next)
		}
		t.Fatal("no last page")
		return nil
	}
	latency := func(what string, f func()) {
		t0 := time.Now()
		f()
		t.Logf("%s: %s", what, time.Since(t0).Round(time.Microsecond))
	}
	ofA := func(c taskCase) bool { return c.tenant == tenantA }
	ofB := func(c taskCase) bool { return c.tenant == tenantB }

	// Tenant A's staff: all of A's open tasks, in deadline order, none of B's, none that left.
	var got []string
	latency("bound reviewer, every page of 25", func() { got = walk(boundA, "role=reviewer&limit=25") })
	if want := order(pick(ofA)); !slices.Equal(got, want) {
		t.Fatalf("tenant A's reviewer: %d tasks\n%v\nwant %d\n%v", len(got), got, len(want), want)
	}
	// The last page is the list's tail, and pages back to where the walk was.
	var last struct {
		Tasks      []api.Task `json:"tasks"`
		Next, Prev string
	}
	latency("bound reviewer, last page", func() { last = get(boundA, "role=reviewer&limit=25&last=true") })
	var lastIDs []string
	for _, tk := range last.Tasks {
		lastIDs = append(lastIDs, tk.CaseID)
	}
	if !slices.Equal(lastIDs, got[len(got)-25:]) || last.Next != "" || last.Prev == "" {
		t.Fatalf("last page %v, want %v", lastIDs, got[len(got)-25:])
	}
	before := get(boundA, "role=reviewer&limit=25&cursor="+url.QueryEscape(last.Prev))
	if len(before.Tasks) != 25 || before.Tasks[24].CaseID != got[len(got)-26] {
		t.Fatalf("the page before the last: %d tasks", len(before.Tasks))
	}
	// B's cursor in A's hands, and B's own list: never the other tenant's cases.
	fromB := get(boundB, "role=reviewer&limit=25")
	for _, id := range walk(boundA, "role=reviewer&limit=25&cursor="+url.QueryEscape(fromB.Next)) {
		if !slices.Contains(order(pick(ofA)), id) {
			t.Fatalf("tenant A's reviewer, with B's cursor, listed %s", id)
		}
	}
	if got, want := walk(boundB, "role=reviewer&limit=100"), order(pick(ofB)); !slices.Equal(got, want) {
		t.Fatalf("tenant B's reviewer: %d, want %d", len(got), len(want))
	}
	// Filters: the process; overdue; due within 3 days and within the week (key conditions).
	for _, c := range []struct {
		query string
		keep  func(taskCase) bool
	}{
		{"process=identity", func(c taskCase) bool { return c.process == "identity" }},
		{"process=refund&deadline=week", func(c taskCase) bool {
			return c.process == "refund" && !c.due.IsZero() && c.due.Before(endOfMoscowDay(time.Now(), 7))
		}},
		{"deadline=overdue", func(c taskCase) bool { return !c.due.IsZero() && !c.due.After(time.Now()) }},
		{"deadline=3d", func(c taskCase) bool { return !c.due.IsZero() && c.due.Before(endOfMoscowDay(time.Now(), 3)) }},
		// escalated: the escalated indexes (a key condition), also with a process
		{"deadline=escalated", func(c taskCase) bool { return c.escalated }},
		{"process=refund&deadline=escalated", func(c taskCase) bool { return c.escalated && c.process == "refund" }},
	} {
		var got []string
		latency("bound reviewer, "+c.query, func() { got = walk(boundA, "role=reviewer&limit=30&"+c.query) })
		want := order(pick(func(tc taskCase) bool { return ofA(tc) && c.keep(tc) }))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("%s: %d %v, want %d %v", c.query, len(got), got, len(want), want)
		}
	}
	// Tax-office staff: every tenant's (other tests' cases may be there too): all of
	// ours, in order, none that left its step.
	var all []string
	latency("office reviewer, every page of 500", func() { all = walk(office, "role=reviewer&limit=500") })
	var ours []string
	for _, id := range all {
		if slices.ContainsFunc(cases, func(c taskCase) bool { return c.id == id }) {
			ours = append(ours, id)
		}
	}
	if want := order(pick(func(taskCase) bool { return true })); !slices.Equal(ours, want) {
		t.Fatalf("office reviewer: %d of ours, want %d", len(ours), len(want))
	}

	// The console, for a reviewer bound to tenant A: the count, page 1, the last page,
	// a page by number, and following "next" to the end.
	staff := *api.StaffAccounts(shared.cfg, shared.clients)
	staff.Cost = bcrypt.MinCost
	login := "tasks-console-" + run
	if _, err := staff.CreatePerson(ctx, login, api.RoleReviewer, tenantA, "", "tasks-console-password"); err != nil {
		t.Fatal(err)
	}
	cookie, _, err := staff.SignIn(ctx, login, "tasks-console-password")
	if err != nil {
		t.Fatal(err)
	}
	rowRE, nextRE := regexp.MustCompile(`data-case="([^"]+)"`), regexp.MustCompile(`href="([^"]+)" rel="next"`)
	console := func(path string) (ids []string, next, body string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.AddCookie(&http.Cookie{Name: "taxflow_console", Value: cookie})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.StatusCode, b)
		}
		for _, m := range rowRE.FindAllStringSubmatch(string(b), -1) {
			ids = append(ids, m[1])
		}
		if m := nextRE.FindStringSubmatch(string(b)); m != nil {
			next = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		return ids, next, string(b)
	}
	wantA := order(pick(ofA))
	pages := (len(wantA) + 19) / 20
	var ids []string
	var next, body string
	latency("console, first page", func() { ids, next, body = console("/console/tasks") })
	if !slices.Equal(ids, wantA[:20]) || !strings.Contains(body, fmt.Sprintf("(%d)", len(wantA))) || !strings.Contains(body, fmt.Sprintf("из %d", pages)) {
		t.Fatalf("console page 1: %v", ids)
	}
	latency("console, last page", func() { ids, _, _ = console(fmt.Sprintf("/console/tasks?page=%d", pages)) })
	if !slices.Equal(ids, wantA[(pages-1)*20:]) {
		t.Fatalf("console last page: %v, want %v", ids, wantA[(pages-1)*20:])
	}
	latency("console, page 4 by number", func() { ids, _, _ = console("/console/tasks?page=4") })
	if !slices.Equal(ids, wantA[60:80]) {
		t.Fatalf("console page 4: %v", ids)
	}
	walked := slices.Clone(wantA[:20])
	for next != "" {
		ids, next, _ = console(next)
		walked = append(walked, ids...)
	}
	if !slices.Equal(walked, wantA) {
		t.Fatalf("console walk: %d, want %d", len(walked), len(wantA))
	}
	latency("console, identity overdue", func() { ids, _, _ = console("/console/tasks?process=identity&deadline=overdue") })
	if want := order(pick(func(c taskCase) bool {
		return ofA(c) && c.process == "identity" && !c.due.IsZero() && !c.due.After(time.Now())
	})); !slices.Equal(ids, want[:min(20, len(want))]) {
		t.Fatalf("console identity overdue: %v, want %v", ids, want)
	}
}

// endOfMoscowDay is the start of the day after the n-th day from now's, Moscow time: the
// bound of the 3-day and week filters.
func endOfMoscowDay(now time.Time, n int) time.Time {
	msk := time.FixedZone("MSK", 3*3600)
	d := now.In(msk)
	return time.Date(d.Year(), d.Month(), d.Day()+n+1, 0, 0, 0, 0, msk)
}

// An upgrade: a cases table made before the task indexes, holding cases already waiting
// in a human step (written without task keys). `infra apply` adds both indexes to the
// existing table; the backfill gives the waiting cases their keys, once; the task list
// then lists them (and a second backfill writes nothing).
func TestTaskIndexesAddedToAnExistingTableAndBackfilled(t *testing.T) {
	ctx := context.Background()
	run := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	opts := applyOptions(shared.cfg)
	opts.Prefix = "upgrade-" + run
	var casesTable infra.Table
	for _, tb := range infra.Declare().Tables {
		if tb.Name == cases.Table {
			casesTable = tb
		}
	}
	old := casesTable
	old.Indexes = slices.DeleteFunc(slices.Clone(old.Indexes), func(ix infra.Index) bool { return ix.Name != "by_status" })
	ownersTable := infra.Table{Name: api.OwnersTable, PartitionKey: infra.Key{Name: "case_id", Type: "S"}}
	if _, err := infra.Apply(ctx, shared.clients, infra.Declaration{Tables: []infra.Table{old, ownersTable}}, opts); err != nil {
		t.Fatal(err)
	}
	table, owners := infra.Name(opts.Prefix, cases.Table), infra.Name(opts.Prefix, api.OwnersTable)
	due := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	var waiting, escalated []string
	for i := range 30 {
		id := fmt.Sprintf("refund-%s-%02d", run, i)
		status := workflows.RefundInReview
		if i%3 == 0 {
			status = workflows.RefundPaid
		} else {
			waiting = append(waiting, id)
			if i%5 == 1 {
				escalated = append(escalated, id)
			}
		}
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, owners, "case_id", tasks.Owner{CaseID: id, Tenant: "upgrade-" + run}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, table, "case_id", contract.CaseRecord{CaseID: id, Process: "refund", Status: status,
			Version: 4, UpdatedAt: due, Deadline: due.Add(time.Duration(i) * time.Minute), Escalated: i%3 != 0 && i%5 == 1}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := infra.Apply(ctx, shared.clients, infra.Declaration{Tables: []infra.Table{casesTable, ownersTable}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := shared.clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ix := range desc.Table.GlobalSecondaryIndexes {
		names = append(names, aws.ToString(ix.IndexName))
	}
	slices.Sort(names)
	want := []string{"by_status", tasks.EscalatedIndex, tasks.Index, tasks.TenantEscalatedIndex, tasks.TenantIndex}
	slices.Sort(want)
	if !slices.Equal(names, want) || !rep.Changed() {
		t.Fatalf("indexes after apply: %v (changed %v)", names, rep.Changed())
	}
	l := tasks.Lister{DB: shared.clients.DynamoDB, Table: table}
	q := tasks.Query{Role: "reviewer", Tenant: "upgrade-" + run, Limit: 100}
	if p, err := l.List(ctx, q); err != nil || len(p.Tasks) != 0 {
		t.Fatalf("before the backfill: %d tasks, %v", len(p.Tasks), err)
	}
	br, err := cases.Backfill(ctx, shared.clients.DynamoDB, table, owners)
	if err != nil || br.Written != len(waiting) {
		t.Fatalf("backfill: %+v %v", br, err)
	}
	for _, tenant := range []string{"upgrade-" + run, ""} {
		q.Tenant = tenant
		p, err := l.List(ctx, q)
		var got []string
		for _, tk := range p.Tasks {
			got = append(got, tk.CaseID)
		}
		if err != nil || !slices.Equal(got, waiting) {
			t.Fatalf("after the backfill (tenant %q): %v %v, want %v", tenant, got, err, waiting)
		}
		q.Escalated = true // the escalated indexes, filled by the same backfill
		p, err = l.List(ctx, q)
		q.Escalated = false
		got = nil
		for _, tk := range p.Tasks {
			got = append(got, tk.CaseID)
		}
		if err != nil || len(escalated) == 0 || !slices.Equal(got, escalated) {
			t.Fatalf("escalated after the backfill (tenant %q): %v %v, want %v", tenant, got, err, escalated)
		}
	}
	if br, err := cases.Backfill(ctx, shared.clients.DynamoDB, table, owners); err != nil || br.Written != 0 {
		t.Fatalf("second backfill: %+v %v", br, err)
	}
}
