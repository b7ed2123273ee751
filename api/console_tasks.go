package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/internal/calendar"
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
	Prev, Next                string
}

var deadlineFilters = []option{{"", "любой"}, {"overdue", "просрочено (overdue)"}, {"escalated", "эскалировано (escalated)"},
	{"3d", "в ближайшие 3 дня"}, {"week", "в ближайшие 7 дней"}}

// consoleTasks lists every open human step of the signed-in role across the processes:
// overdue first, then escalated, then by the nearest term; filters and pages.
func (s *Server) consoleTasks(w http.ResponseWriter, r *http.Request) {
	sess := consoleSession(r)
	a := sess.Account()
	q := r.URL.Query()
	d := tasksData{layoutData: layoutData{Title: "Задачи", Staff: &a, CSRF: sess.CSRF},
		Process: q.Get("process"), Status: q.Get("status"), Deadline: q.Get("deadline"), Deadlines: deadlineFilters}
	for _, st := range roles[sess.Role] {
		if !slices.ContainsFunc(d.Processes, func(o option) bool { return o.Value == st[0] }) {
			d.Processes = append(d.Processes, option{st[0], processLabels[st[0]]})
		}
		d.Statuses = append(d.Statuses, option{st[1], statusLabel(st[0], st[1]) + " (" + st[1] + ")"})
	}
	tasks, err := s.listTasks(r.Context(), sess.Role)
	if err != nil {
		s.Log.Error().Err(err).Msg("console: list tasks")
		s.consoleMessage(w, r, http.StatusServiceUnavailable, "Сервис недоступен", "Не удалось получить задачи; повторите позже.")
		return
	}
	if len(tasks) > consoleMaxTasks {
		tasks = tasks[:consoleMaxTasks]
	}
	rows := make([]taskRow, len(tasks))
	keep := make([]bool, len(tasks))
	g, ctx := errgroup.WithContext(r.Context())
	g.SetLimit(8)
	for i, t := range tasks {
		rows[i] = taskRow{Task: t, Label: statusLabel(t.Process, t.Status)}
		if (d.Process != "" && t.Process != d.Process) || (d.Status != "" && t.Status != d.Status) {
			continue
		}
		g.Go(func() error {
			if ok, err := s.visible(ctx, sess, t.CaseID); err != nil || !ok {
				return nil // another tenant's case, or its owner unreadable: not listed
			}
			keep[i] = true
			// A case that does not answer soon is listed without its term, not waited for.
			qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			if v, err := s.loadCase(qctx, t.CaseID, t.Process); err == nil {
				rows[i].Due, rows[i].SLA, rows[i].Overdue, rows[i].Escalated = v.Due, v.SLA, v.Overdue, v.Escalated
			}
			return nil
		})
	}
	_ = g.Wait()
	now := time.Now()
	var out []taskRow
	for i, row := range rows {
		if keep[i] && matchDeadline(row, d.Deadline, now) {
			out = append(out, row)
		}
	}
	sortTasks(out)
	d.Total = len(out)
	d.Pages = max(1, (d.Total+consolePageSize-1)/consolePageSize)
	d.Page, _ = strconv.Atoi(q.Get("page"))
	d.Page = min(max(d.Page, 1), d.Pages)
	from := (d.Page - 1) * consolePageSize
	d.Rows = out[from:min(from+consolePageSize, d.Total)]
	link := func(page int) string {
		v := url.Values{}
		for k, val := range map[string]string{"process": d.Process, "status": d.Status, "deadline": d.Deadline} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("page", strconv.Itoa(page))
		return "/console/tasks?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	s.render(w, http.StatusOK, "tasks", d)
}

// sortTasks puts overdue steps first, then escalated ones, then by the nearest term
// (steps without a term last, oldest first).
func sortTasks(rows []taskRow) {
	slices.SortStableFunc(rows, func(a, b taskRow) int {
		if a.Overdue != b.Overdue {
			return boolFirst(a.Overdue)
		}
		if a.Escalated != b.Escalated {
			return boolFirst(a.Escalated)
		}
		switch {
		case a.Due == nil && b.Due == nil:
			return a.Since.Compare(b.Since)
		case a.Due == nil:
			return 1
		case b.Due == nil:
			return -1
		}
		return a.Due.Compare(*b.Due)
	})
}

func boolFirst(a bool) int {
	if a {
		return -1
	}
	return 1
}

// matchDeadline applies the deadline filter: overdue, escalated, or due within N days.
func matchDeadline(row taskRow, filter string, now time.Time) bool {
	switch filter {
	case "overdue":
		return row.Overdue
	case "escalated":
		return row.Escalated
	case "3d", "week":
		days := map[string]int{"3d": 3, "week": 7}[filter]
		if row.Due == nil {
			return false
		}
		today := now.In(calendar.Moscow)
		limit := time.Date(today.Year(), today.Month(), today.Day()+days+1, 0, 0, 0, 0, calendar.Moscow)
		return row.Due.Before(limit)
	}
	return strings.TrimSpace(filter) == ""
}
