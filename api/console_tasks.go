package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/tasks"
)

type taskRow struct {
	Task
	Label     string
	Due       *time.Time
	SLA       string
	Overdue   bool
	Escalated bool
}

type option struct{ Value, Label string }

type tasksData struct {
	layoutData
	Rows                      []taskRow
	Total, Page, Pages        int
	Process, Status, Deadline string
	Processes, Statuses       []option
	Deadlines                 []option
	Prev, Next, Last          string
	More                      bool // more tasks than Total (the count stops at consoleCountCap)
}

var deadlineFilters = []option{{"", "любой"}, {"overdue", "просрочено (overdue)"}, {"escalated", "эскалировано (escalated)"},
	{"3d", "в ближайшие 3 дня"}, {"week", "в ближайшие 7 дней"}}

// consoleTasks lists every open human step of the signed-in role across the processes,
// from the case projection's task indexes (internal/tasks): by the nearest term (overdue
// first, steps without a term last); filters and pages. The page count is counted at each
// request (Lister.Count); the first and the last page are read exactly (the last one
// backwards from the end), and the links to the pages in between carry a cursor from the
// rows shown, so "next" continues after what the reviewer saw even while cases move. A
// page number that no link carried is reached by skipping that many tasks.
func (s *Server) consoleTasks(w http.ResponseWriter, r *http.Request) {
	sess := consoleSession(r)
	a := sess.Account()
	q := r.URL.Query()
	d := tasksData{layoutData: layoutData{Title: "Задачи", Staff: &a, CSRF: sess.CSRF},
		Process: q.Get("process"), Status: q.Get("status"), Deadline: q.Get("deadline"), Deadlines: deadlineFilters}
	steps := tasks.Roles[sess.Role]
	for _, st := range steps {
		if !slices.ContainsFunc(d.Processes, func(o option) bool { return o.Value == st.Process }) {
			d.Processes = append(d.Processes, option{st.Process, processLabels[st.Process]})
		}
		d.Statuses = append(d.Statuses, option{st.Status, statusLabel(st.Process, st.Status) + " (" + st.Status + ")"})
	}
	d.Page, d.Pages = 1, 1
	tq := tasks.Query{Role: sess.Role, Process: d.Process, Limit: consolePageSize}
	// A status names the role's step of one process: it filters as that process does.
	empty := false
	if d.Status != "" {
		i := slices.IndexFunc(steps, func(st tasks.Step) bool {
			return st.Status == d.Status && (d.Process == "" || st.Process == d.Process)
		})
		if i < 0 {
			empty = true
		} else {
			tq.Process = steps[i].Process
		}
	}
	if d.Process != "" && !slices.ContainsFunc(steps, func(st tasks.Step) bool { return st.Process == d.Process }) {
		empty = true
	}
	if !deadlineFilter(&tq, d.Deadline, time.Now()) {
		d.Deadline, empty = "", true
	}
	if empty || len(steps) == 0 {
		s.render(w, http.StatusOK, "tasks", d)
		return
	}
	p := sess.Account().Principal()
	pg, err := s.consoleTaskPage(r.Context(), p, tq, q, &d)
	if err != nil {
		s.Log.Error().Err(err).Msg("console: list tasks")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Не удалось получить задачи; повторите позже.")
		return
	}
	now := time.Now()
	for _, t := range pg.Tasks {
		row := taskRow{Task: t, Label: t.Label, Due: t.Due, Escalated: t.Escalated}
		if t.Due != nil {
			row.SLA, row.Overdue = countdown(now, *t.Due, slaUnit[t.Process], calendar.Shared())
		}
		d.Rows = append(d.Rows, row)
	}
	link := func(page int, cursor string, last bool) string {
		v := url.Values{}
		for k, val := range map[string]string{"process": d.Process, "status": d.Status, "deadline": d.Deadline, "cursor": cursor} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(page))
		if last {
			v.Set("last", "1")
		}
		return "/console/tasks?" + v.Encode()
	}
	// The first and the last page are linked without a cursor: they are read exactly. A
	// page between carries the cursor of the rows shown; one counted from the end (Page 0)
	// keeps no number.
	switch {
	case d.Page == 2 || (d.Page > 2 && d.Total >= 0 && !d.More && pg.Prev == ""):
		d.Prev = link(d.Page-1, "", false)
	case pg.Prev != "":
		d.Prev = link(max(d.Page-1, 0), pg.Prev, false)
	}
	switch {
	case pg.Next == "":
	case d.Pages > 0 && d.Page+1 == d.Pages:
		d.Next = link(d.Pages, "", false)
	case d.Pages == 0 || d.Page < d.Pages:
		next := d.Page + 1
		if d.Page == 0 {
			next = 0
		}
		d.Next = link(next, pg.Next, false)
	}
	if pg.Next != "" && (d.Pages == 0 || d.Page < d.Pages) {
		d.Last = link(0, "", true)
	}
	s.render(w, http.StatusOK, "tasks", d)
}

// consoleCountCap bounds the count of a task list (a var for the tests): past it the
// list shows "more than N", its pages go by cursor from either end, and a page number no
// link carried is reached only up to it.
var consoleCountCap = 1000

// consoleTaskPage reads the page the request asks for and sets d's Total, More, Page
// (0: a page counted from the end, its number unknown) and Pages (0: unknown). For a list
// judged case by case (accounts, to tenant-bound staff) nothing counts the total: Total
// is -1 and the pages go by cursor.
func (s *Server) consoleTaskPage(ctx context.Context, p Principal, tq tasks.Query, q url.Values, d *tasksData) (taskPage, error) {
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = max(d.Page, 0)
	tq.Cursor = q.Get("cursor")
	if tq.Cursor != "" && !tasks.ValidCursor(tq.Cursor) {
		tq.Cursor, d.Page = "", 1 // a broken link: the first page
	}
	last := q.Get("last") == "1" && tq.Cursor == ""
	if tq.Cursor == "" && !last {
		d.Page = max(d.Page, 1)
	}
	if o := actsFor(p); !o.all && tasks.PerCase(tq.Role) {
		d.Total, d.Pages = -1, 0
		switch {
		case last:
			tq.Last, d.Page = true, 0
		case tq.Cursor == "":
			d.Page = 1
		}
		return s.taskPage(ctx, p, tq)
	} else if !o.all {
		if o.tenant == "" {
			return s.taskRows(tasks.Page{}), nil // acts for no tenant: nothing (never every tenant's)
		}
		tq.Tenant = o.tenant
	}
	l := s.taskList()
	total, exact, err := l.Count(ctx, tq, consoleCountCap)
	if err != nil {
		return taskPage{}, err
	}
	d.Total, d.More = total, !exact
	if exact {
		d.Pages = max(1, (total+consolePageSize-1)/consolePageSize)
		if last {
			d.Page = d.Pages
		}
		d.Page = min(d.Page, d.Pages)
		if d.Page == 0 { // a page counted from the end, now that the count is known
			tq.Cursor, d.Page = "", d.Pages
		}
		switch d.Page {
		case 1:
			tq.Cursor = ""
		case d.Pages:
			tq.Cursor, tq.Last, tq.Limit = "", true, total-(d.Pages-1)*consolePageSize
		}
	} else {
		d.Pages = 0
		if last {
			tq.Last, d.Page = true, 0
		}
	}
	if d.Page > 1 && tq.Cursor == "" && !tq.Last {
		d.Page = min(d.Page, consoleCountCap/consolePageSize)
		if tq.Cursor, err = l.Skip(ctx, tq, (d.Page-1)*consolePageSize); err != nil {
			return taskPage{}, err
		}
	}
	pg, err := l.List(ctx, tq)
	return s.taskRows(pg), err
}
