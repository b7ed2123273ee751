package tasks_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/internal/tasks/taskstest"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fill puts reviewer tasks: refunds and identity cases of two tenants, due an hour
// apart in an interleaved order, a few without a term, and cases in no human step.
func fill(n int) (*taskstest.DB, []string) {
	db := taskstest.New(storetest.New(nil), "cases")
	var all []string
	for i := range n {
		process, status := "refund", "in_review"
		if i%3 == 0 {
			process, status = "identity", "manual_review"
		}
		tenant := []string{"alpha", "beta"}[i%2]
		id := fmt.Sprintf("%s-%03d", process, i)
		due := t0.Add(time.Duration((i*7)%n) * time.Hour)
		if i%10 == 9 {
			due = time.Time{}
		}
		db.Put(contract.CaseRecord{CaseID: id, Process: process, Status: status, Deadline: due, Escalated: i%4 == 0, UpdatedAt: t0}, tenant)
		db.Put(contract.CaseRecord{CaseID: id + "-done", Process: process, Status: "approved", Deadline: due, UpdatedAt: t0}, tenant)
		all = append(all, id)
	}
	return db, all
}

func walk(t *testing.T, l tasks.Lister, q tasks.Query, back bool) []tasks.Task {
	t.Helper()
	var out []tasks.Task
	for range 1000 {
		p, err := l.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if back {
			out = append(slices.Clone(p.Tasks), out...)
			q.Cursor = p.Prev
		} else {
			out = append(out, p.Tasks...)
			q.Cursor = p.Next
		}
		if len(p.Tasks) > q.Limit {
			t.Fatalf("page of %d, limit %d", len(p.Tasks), q.Limit)
		}
		if q.Cursor == "" {
			return out
		}
	}
	t.Fatal("no end")
	return nil
}

func ordered(t *testing.T, ts []tasks.Task) {
	t.Helper()
	for i := 1; i < len(ts); i++ {
		a, b := ts[i-1], ts[i]
		switch {
		case a.Due == nil && b.Due != nil:
			t.Fatalf("%s without a term before %s", a.CaseID, b.CaseID)
		case a.Due != nil && b.Due != nil && a.Due.After(*b.Due):
			t.Fatalf("%s due %s before %s due %s", a.CaseID, a.Due, b.CaseID, b.Due)
		}
	}
}

func TestListMergesTheRolesStepsByDeadlineAndPagesBothWays(t *testing.T) {
	db, all := fill(95)
	l := tasks.Lister{DB: db, Table: "cases"}
	ctx := context.Background()
	for _, q := range []tasks.Query{
		{Role: "reviewer", Limit: 7},
		{Role: "reviewer", Limit: 200},
		{Role: "reviewer", Process: "identity", Limit: 4},
		{Role: "reviewer", Tenant: "alpha", Limit: 5},
		{Role: "reviewer", Tenant: "beta", Process: "refund", Limit: 3},
		{Role: "reviewer", Before: t0.Add(30 * time.Hour), Limit: 6},
		{Role: "reviewer", Escalated: true, Limit: 4},
	} {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			fwd := walk(t, l, q, false)
			ordered(t, fwd)
			var want []string
			for i, id := range all {
				process := "refund"
				if i%3 == 0 {
					process = "identity"
				}
				due := t0.Add(time.Duration((i*7)%95) * time.Hour)
				switch {
				case q.Process != "" && process != q.Process,
					q.Tenant != "" && q.Tenant != []string{"alpha", "beta"}[i%2],
					!q.Before.IsZero() && (i%10 == 9 || !due.Before(q.Before)),
					q.Escalated && i%4 != 0:
					continue
				}
				want = append(want, id)
			}
			var got []string
			for _, tk := range fwd {
				got = append(got, tk.CaseID)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d %v, want %d %v", len(got), got, len(want), want)
			}
			n, exact, err := l.Count(ctx, q, 1000)
			if err != nil || n != len(want) || !exact {
				t.Fatalf("count %d %v %v, want %d", n, exact, err, len(want))
			}
			if n, exact, err := l.Count(ctx, q, len(want)-1); err != nil || n != len(want)-1 || exact {
				t.Fatalf("count up to %d: %d %v %v, want more", len(want)-1, n, exact, err)
			}
			// From the last page backwards: the same tasks in the same order.
			lq := q
			lq.Last = true
			back := walk(t, l, lq, true)
			if len(back) != len(fwd) {
				t.Fatalf("backwards %d, forwards %d", len(back), len(fwd))
			}
			for i := range back {
				if back[i].CaseID != fwd[i].CaseID {
					t.Fatalf("backwards %d: %s, forwards %s", i, back[i].CaseID, fwd[i].CaseID)
				}
			}
			// Skip lands where paging does.
			if len(fwd) > 2*q.Limit {
				c, err := l.Skip(ctx, q, 2*q.Limit)
				if err != nil {
					t.Fatal(err)
				}
				sq := q
				sq.Cursor = c
				p, err := l.List(ctx, sq)
				if err != nil || p.Tasks[0].CaseID != fwd[2*q.Limit].CaseID {
					t.Fatalf("skip: %v %v, want %s first", p.Tasks, err, fwd[2*q.Limit].CaseID)
				}
				if p.Prev == "" {
					t.Fatal("a page after a cursor has a way back")
				}
			}
		})
	}
}

// The tenant is the partition: a tenant's query never reads another's tasks, whatever
// cursor it carries (a cursor holds a position, not a partition).
func TestATenantsListNeverReachesAnotherTenant(t *testing.T) {
	db, _ := fill(60)
	l := tasks.Lister{DB: db, Table: "cases"}
	betaPage, err := l.List(context.Background(), tasks.Query{Role: "reviewer", Tenant: "beta", Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	alpha := walk(t, l, tasks.Query{Role: "reviewer", Tenant: "alpha", Limit: 5, Cursor: betaPage.Next}, false)
	for _, tk := range alpha {
		var n int
		_, _ = fmt.Sscanf(tk.CaseID[len(tk.CaseID)-3:], "%d", &n)
		if n%2 != 0 {
			t.Fatalf("alpha's list holds beta's %s", tk.CaseID)
		}
	}
	if _, err := l.List(context.Background(), tasks.Query{Role: "reviewer", Limit: 5, Cursor: "not-a-cursor"}); err != tasks.ErrCursor {
		t.Fatalf("a forged cursor: %v", err)
	}
}

func TestAttrsOnlyInAHumanStep(t *testing.T) {
	for _, c := range []struct {
		process, status, tenant string
		keys                    int
	}{
		{"refund", "in_review", "alpha", 3}, {"refund", "in_review", "", 2}, {"refund", "received", "alpha", 0},
		{"declaration", "in_review", "alpha", 3}, {"account", "awaiting_specialist", "alpha", 2}, {"account", "active", "", 0},
	} {
		if got := len(tasks.Attrs(contract.CaseRecord{CaseID: "x", Process: c.process, Status: c.status}, c.tenant)); got != c.keys {
			t.Errorf("%s %s %q: %d keys, want %d", c.process, c.status, c.tenant, got, c.keys)
		}
	}
	if !(tasks.DueKey(t0, "b") < tasks.DueKey(t0.Add(time.Nanosecond), "a") && tasks.DueKey(t0.AddDate(100, 0, 0), "z") < tasks.DueKey(time.Time{}, "a")) {
		t.Error("the sort key does not sort as the deadlines do, with no term last")
	}
}
