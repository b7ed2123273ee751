package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/internal/tasks/taskstest"
	"github.com/taxflow/taxflow/workflows"
)

// The role map names the workflows' own statuses.
func TestTaskStepsAreTheWorkflowsStatuses(t *testing.T) {
	want := map[string][]tasks.Step{
		RoleInspector:  {{Process: procDecl, Status: workflows.DeclarationInReview}},
		RoleReviewer:   {{Process: procRefund, Status: workflows.RefundInReview}, {Process: procIdent, Status: workflows.IdentityManualReview}},
		RoleSpecialist: {{Process: procAccount, Status: workflows.AccountAwaitingSpecialist}},
		RoleOperator:   {{Process: procRefund, Status: workflows.RefundPayoutFailed}},
	}
	if len(want) != len(tasks.Roles) {
		t.Fatalf("roles %v", tasks.Roles)
	}
	for role, steps := range want {
		if !slices.Equal(tasks.Roles[role], steps) {
			t.Errorf("%s: %v, want %v", role, tasks.Roles[role], steps)
		}
	}
	// A role's steps are all tenant-owned or all judged case by case (taskPage relies on it).
	for role, steps := range tasks.Roles {
		owned := slices.ContainsFunc(steps, func(st tasks.Step) bool { return tasks.Owned(st.Process) })
		if owned && tasks.PerCase(role) {
			t.Errorf("role %s mixes tenant-owned steps with accounts", role)
		}
	}
}

type seeded struct {
	s     *Server
	h     http.Handler
	idx   *taskstest.DB
	alpha []string // alpha's reviewer tasks
	beta  []string
	all   []string // every reviewer task, in deadline order
}

// seedTasks puts n reviewer tasks (refunds of alpha and beta, identity cases of alpha)
// with deadlines from 2 days ago on, every 7th without a term; the server asks no workflow.
func seedTasks(t *testing.T, n int) seeded {
	t.Helper()
	s, _, _ := authzServer(t)
	idx := taskstest.New(s.DB, "cases")
	s.DB, s.Cases, s.Temporal = idx, "cases", nil // a Temporal call would panic: the list asks no workflow
	out := seeded{s: s, h: s.Handler(), idx: idx}
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	type row struct {
		id  string
		due time.Time
	}
	var rows []row
	for i := range n {
		tenant := []string{"alpha", "beta"}[i%2]
		process, status := procRefund, workflows.RefundInReview
		if i%5 == 0 {
			process, status, tenant = procIdent, workflows.IdentityManualReview, "alpha"
		}
		id := ownedCase(t, s, process+"-", tenant)
		due := base.Add(time.Duration((i*37)%n) * 3 * time.Hour)
		if i%7 == 6 {
			due = time.Time{}
		}
		idx.Put(contract.CaseRecord{CaseID: id, Process: process, Status: status, Deadline: due, Escalated: i%6 == 0, UpdatedAt: base}, tenant)
		// The same tenants' cases in no human step, and another role's: never listed.
		other := ownedCase(t, s, "refund-", tenant)
		idx.Put(contract.CaseRecord{CaseID: other, Process: procRefund, Status: workflows.RefundPayoutFailed, Deadline: due, UpdatedAt: base}, tenant)
		if tenant == "alpha" {
			out.alpha = append(out.alpha, id)
		} else {
			out.beta = append(out.beta, id)
		}
		if due.IsZero() {
			due = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		rows = append(rows, row{id, due})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, r := range rows {
		out.all = append(out.all, r.id)
	}
	return out
}

type tasksAnswer struct {
	Role  string `json:"role"`
	Tasks []Task `json:"tasks"`
	Next  string `json:"next"`
	Prev  string `json:"prev"`
}

func getTasks(t *testing.T, h http.Handler, key, query string) tasksAnswer {
	t.Helper()
	rec := do(h, "GET", "/v1/tasks?"+query, key, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("%s GET /v1/tasks?%s: %d %s", key, query, rec.Code, rec.Body)
	}
	var a tasksAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	return a
}

// walkTasks follows next from a first query; it returns the ids in the order listed.
func walkTasks(t *testing.T, h http.Handler, key, query string) []string {
	t.Helper()
	var ids []string
	q := query
	for range 200 {
		a := getTasks(t, h, key, q)
		for _, task := range a.Tasks {
			ids = append(ids, task.CaseID)
		}
		if a.Next == "" {
			return ids
		}
		v, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		v.Set("cursor", a.Next)
		q = v.Encode()
	}
	t.Fatalf("%s %s: no last page: %v", key, query, ids[:20])
	return nil
}

func TestTasksAPIReadsTheIndexInDeadlineOrderAndKeepsTenantsApart(t *testing.T) {
	sd := seedTasks(t, 60)
	h := sd.h
	// Tax-office staff: every tenant's, by deadline, no term last, in pages.
	if got := walkTasks(t, h, "office-reviewer", "role=reviewer&limit=7"); !slices.Equal(got, sd.all) {
		t.Fatalf("office reviewer listed %d:\n%v\nwant %d:\n%v", len(got), got, len(sd.all), sd.all)
	}
	// The last page: the tail of the list, in the same order, with a way back.
	last := getTasks(t, h, "office-reviewer", "role=reviewer&limit=7&last=true")
	var lastIDs []string
	for _, task := range last.Tasks {
		lastIDs = append(lastIDs, task.CaseID)
	}
	if !slices.Equal(lastIDs, sd.all[len(sd.all)-7:]) || last.Next != "" || last.Prev == "" {
		t.Fatalf("last page %v next %q prev %q, want %v", lastIDs, last.Next, last.Prev, sd.all[len(sd.all)-7:])
	}
	back := getTasks(t, h, "office-reviewer", "role=reviewer&limit=7&cursor="+url.QueryEscape(last.Prev))
	if back.Tasks[6].CaseID != sd.all[len(sd.all)-8] {
		t.Fatalf("the page before the last ends with %s, want %s", back.Tasks[6].CaseID, sd.all[len(sd.all)-8])
	}
	// Staff bound to alpha, and alpha's own staff key: alpha's cases only, all of them,
	// whatever cursor they carry (one beta's list gave).
	betaFirst := getTasks(t, h, "beta-bound-reviewer", "role=reviewer&limit=5")
	for _, key := range []string{"alpha-bound-reviewer", "alpha-own-reviewer"} {
		got := walkTasks(t, h, key, "role=reviewer&limit=9")
		gotFromBeta := walkTasks(t, h, key, "role=reviewer&limit=9&cursor="+url.QueryEscape(betaFirst.Next))
		for _, id := range append(got, gotFromBeta...) {
			if !slices.Contains(sd.alpha, id) {
				t.Fatalf("%s listed %s, not alpha's", key, id)
			}
		}
		slices.Sort(got)
		want := slices.Clone(sd.alpha)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s listed %d, want alpha's %d", key, len(got), len(want))
		}
	}
	for _, id := range walkTasks(t, h, "beta-bound-reviewer", "role=reviewer&limit=50") {
		if !slices.Contains(sd.beta, id) {
			t.Fatalf("beta's reviewer listed %s", id)
		}
	}
	// Filters: a process; overdue; due within 3 days (overdue included); escalated.
	now := time.Now()
	for _, c := range []struct {
		query string
		keep  func(Task) bool
	}{
		{"process=identity", func(tk Task) bool { return tk.Process == procIdent }},
		{"deadline=overdue", func(tk Task) bool { return tk.Due != nil && !tk.Due.After(now) }},
		{"deadline=3d", func(tk Task) bool { return tk.Due != nil && tk.Due.Before(now.AddDate(0, 0, 4)) }},
		{"deadline=escalated&process=refund", func(tk Task) bool { return tk.Escalated && tk.Process == procRefund }},
	} {
		all := getTasks(t, h, "office-reviewer", "role=reviewer&limit=500").Tasks
		var want []string
		for _, tk := range all {
			if c.keep(tk) {
				want = append(want, tk.CaseID)
			}
		}
		got := walkTasks(t, h, "office-reviewer", "role=reviewer&limit=4&"+c.query)
		if c.query == "deadline=3d" { // the bound is the end of a Moscow day: compare loosely at its edge
			if len(got) < len(walkTasks(t, h, "office-reviewer", "role=reviewer&deadline=overdue")) || len(got) > len(want) {
				t.Errorf("%s: %d listed, want about %d", c.query, len(got), len(want))
			}
			continue
		}
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.query, got, want)
		}
	}
	// Labels and terms come from the projection.
	first := getTasks(t, h, "office-reviewer", "role=reviewer&limit=1").Tasks[0]
	if first.Label == "" || first.Due == nil || first.Since.IsZero() {
		t.Errorf("first task %+v", first)
	}
}

func TestTasksAPIRefusesBadParametersNamingThem(t *testing.T) {
	sd := seedTasks(t, 3)
	for q, field := range map[string]string{
		"role=reviewer&limit=0":           "limit",
		"role=reviewer&limit=501":         "limit",
		"role=reviewer&limit=x":           "limit",
		"role=reviewer&process=account":   "process",
		"role=reviewer&deadline=tomorrow": "deadline",
		"role=reviewer&last=yes":          "last",
		"role=reviewer&cursor=bm90LWl0Cg": "cursor",
	} {
		rec := do(sd.h, "GET", "/v1/tasks?"+q, "office-reviewer", "")
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"`+field) {
			t.Errorf("%s: %d %s, want 400 naming %s", q, rec.Code, rec.Body, field)
		}
	}
}

var rowRE = regexp.MustCompile(`data-case="([^"]+)"`)

func TestConsoleTasksCountsPagesAndReadsTheLastPageExactly(t *testing.T) {
	sd := seedTasks(t, 65)
	st, _, _ := newStaffStore(t)
	sd.s.Staff = st
	h := sd.s.Handler()
	ctx := context.Background()
	for _, a := range []struct{ login, tenant string }{{"office", ""}, {"bound-beta", "beta"}} {
		if _, err := st.Create(ctx, a.login, RoleReviewer, a.tenant, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(login string) *consoleClient {
		c := &consoleClient{t: t, h: h, jar: map[string]*http.Cookie{}}
		c.signIn(login, testPassword)
		return c
	}
	page := func(c *consoleClient, path string) (ids []string, body string) {
		rec := c.do("GET", path, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		for _, m := range rowRE.FindAllStringSubmatch(rec.Body.String(), -1) {
			ids = append(ids, m[1])
		}
		return ids, rec.Body.String()
	}
	office := signIn("office")
	ids, body := page(office, "/console/tasks")
	pages := (len(sd.all) + consolePageSize - 1) / consolePageSize
	if !slices.Equal(ids, sd.all[:consolePageSize]) || !strings.Contains(body, fmt.Sprintf("(%d)", len(sd.all))) ||
		!strings.Contains(body, fmt.Sprintf("страница 1 из %d", pages)) {
		t.Fatalf("first page %v (want %v), body:\n%s", ids, sd.all[:consolePageSize], body)
	}
	// Following "next" walks every task once, in order; the last page holds the remainder.
	var walked []string
	path := "/console/tasks"
	for range pages + 2 {
		ids, body := page(office, path)
		walked = append(walked, ids...)
		m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(body)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	if !slices.Equal(walked, sd.all) {
		t.Fatalf("walked %d, want %d in order", len(walked), len(sd.all))
	}
	lastIDs, _ := page(office, fmt.Sprintf("/console/tasks?page=%d", pages))
	if !slices.Equal(lastIDs, sd.all[(pages-1)*consolePageSize:]) {
		t.Fatalf("page %d: %v, want %v", pages, lastIDs, sd.all[(pages-1)*consolePageSize:])
	}
	// A page number no link carried is counted from the start.
	mid, _ := page(office, "/console/tasks?page=2")
	if !slices.Equal(mid, sd.all[consolePageSize:2*consolePageSize]) {
		t.Fatalf("page 2: %v", mid)
	}
	// A filter by process: only identity cases, counted.
	idents, body := page(office, "/console/tasks?process=identity")
	for _, id := range idents {
		if !strings.HasPrefix(id, procIdent+"-") {
			t.Fatalf("identity filter listed %s", id)
		}
	}
	if len(idents) == 0 || !strings.Contains(body, "(13)") {
		t.Fatalf("identity filter: %v", idents)
	}
	// Staff bound to beta: beta's cases only, on every page.
	beta := signIn("bound-beta")
	path = "/console/tasks"
	var seen []string
	for range 10 {
		ids, body := page(beta, path)
		seen = append(seen, ids...)
		m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(body)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	slices.Sort(seen)
	want := slices.Clone(sd.beta)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Fatalf("beta's console listed %d %v, want beta's %d", len(seen), seen, len(want))
	}
}

// Past the count's bound the console says "more than N", walks to the end by cursor,
// reads the last page from the end, and pages back from it: every task once, in order.
func TestConsoleTasksPastTheCountBound(t *testing.T) {
	sd := seedTasks(t, 65)
	old := consoleCountCap
	consoleCountCap = 30
	t.Cleanup(func() { consoleCountCap = old })
	st, _, _ := newStaffStore(t)
	sd.s.Staff = st
	h := sd.s.Handler()
	if _, err := st.Create(context.Background(), "office", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	c := &consoleClient{t: t, h: h, jar: map[string]*http.Cookie{}}
	c.signIn("office", testPassword)
	linkRE := func(rel string) *regexp.Regexp { return regexp.MustCompile(`href="([^"]+)" rel="` + rel + `"`) }
	page := func(path string) (ids []string, links map[string]string, body string) {
		rec := c.do("GET", path, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		body = rec.Body.String()
		for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
			ids = append(ids, m[1])
		}
		links = map[string]string{}
		for _, rel := range []string{"prev", "next", "last"} {
			if m := linkRE(rel).FindStringSubmatch(body); m != nil {
				links[rel] = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		return ids, links, body
	}
	ids, links, body := page("/console/tasks")
	if !strings.Contains(body, "(более 30)") || !strings.Contains(body, "страница 1<") || links["last"] == "" || !slices.Equal(ids, sd.all[:20]) {
		t.Fatalf("first page: %v %v\n%s", ids, links, body)
	}
	walked := ids
	for links["next"] != "" {
		ids, links, _ = page(links["next"])
		walked = append(walked, ids...)
	}
	if !slices.Equal(walked, sd.all) {
		t.Fatalf("forward walk: %d, want %d", len(walked), len(sd.all))
	}
	ids, links, _ = page("/console/tasks?last=1")
	if !slices.Equal(ids, sd.all[len(sd.all)-20:]) || links["next"] != "" || links["prev"] == "" {
		t.Fatalf("last page %v %v", ids, links)
	}
	back := ids
	for links["prev"] != "" {
		ids, links, _ = page(links["prev"])
		back = append(slices.Clone(ids), back...)
	}
	if !slices.Equal(back, sd.all) {
		t.Fatalf("backward walk: %d, want %d", len(back), len(sd.all))
	}
	// A page number no link carried, past the bound: the last page the bound reaches by
	// number (30/20: page 1), not a read of the whole list.
	if ids, _, body := page("/console/tasks?page=40"); !slices.Equal(ids, sd.all[0:20]) || !strings.Contains(body, "страница 1<") {
		t.Fatalf("page 40 past the bound: %v", ids)
	}
}
