package tasks

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/internal/store"
)

// Lister reads the task list from the cases table's indexes.
type Lister struct {
	DB    store.DB
	Table string // the deployed cases table
}

// Query is one read of a role's task list.
type Query struct {
	Role string
	// Tenant: "" lists every tenant's cases (by_task: tax-office staff bound to no
	// tenant); otherwise only the cases this tenant owns (by_tenant_task). The caller
	// decides it from the principal, never from the request.
	Tenant string
	// Process: "" every process of the role, else only this one.
	Process string
	// Before: only tasks due before this time (zero: no bound; a case without a term is
	// never before anything). A key condition on the sort key.
	Before time.Time
	// Escalated: only escalated cases, read from the escalated indexes (a key condition).
	Escalated bool
	// Limit: the page size (1 or more).
	Limit int
	// Cursor continues from a page (its Next or Prev); "" starts at the first task, or
	// at the last page when Last is set.
	Cursor string
	Last   bool
}

// Task is one open human step, as the projection holds it.
type Task struct {
	CaseID    string
	Process   string
	Status    string
	Label     string
	Due       *time.Time
	Escalated bool
	Updated   time.Time // the projection's updated_at: the case's latest recorded step
}

// Page is a page of tasks in deadline order. Next continues after its last task, Prev
// before its first; "" when there is nothing more that way.
type Page struct {
	Tasks      []Task
	Next, Prev string
}

// ErrCursor: a cursor that is not one this package wrote.
var ErrCursor = fmt.Errorf("cursor: not a task list cursor")

type cursor struct {
	Key  string `json:"k"` // a task_due: the page continues strictly after (or before) it
	Back bool   `json:"b,omitempty"`
}

func encode(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decode(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, ErrCursor
	}
	if _, _, err := splitDue(c.Key); err != nil {
		return c, ErrCursor
	}
	return c, nil
}

// stream is one partition of an index: one process of the role (for one tenant).
type stream struct{ index, attr, value string }

func (q Query) streams() ([]stream, error) {
	steps, ok := Roles[q.Role]
	if !ok {
		return nil, fmt.Errorf("role %q has no task list", q.Role)
	}
	var out []stream
	for _, st := range steps {
		if q.Process != "" && st.Process != q.Process {
			continue
		}
		switch {
		case q.Tenant == "" && q.Escalated:
			out = append(out, stream{EscalatedIndex, AttrEscRole, Queue(q.Role, st.Process)})
		case q.Tenant == "":
			out = append(out, stream{Index, AttrRole, Queue(q.Role, st.Process)})
		case Owned(st.Process) && q.Escalated:
			out = append(out, stream{TenantEscalatedIndex, AttrEscTenantRole, TenantQueue(q.Role, st.Process, q.Tenant)})
		case Owned(st.Process):
			out = append(out, stream{TenantIndex, AttrTenantRole, TenantQueue(q.Role, st.Process, q.Tenant)})
		default:
			// An account's task is listed to tenant-bound staff by the API after its own
			// check of the taxpayer's relationship (Accounts), never from here.
		}
	}
	return out, nil
}

// PerCase tells whether the role's tasks for tenant-bound staff must be judged case by
// case (accounts: their tenants are the taxpayer's relationships, no key of the index).
func PerCase(role string) bool {
	return slices.ContainsFunc(Roles[role], func(st Step) bool { return !Owned(st.Process) })
}

// query builds the Query of one stream: forward or back, strictly after / before key
// (""), bounded by Before.
func (l Lister) query(s stream, q Query, key string, back bool, limit int32, count bool) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{TableName: aws.String(l.Table), IndexName: aws.String(s.index),
		KeyConditionExpression:    aws.String("#p = :p"),
		ExpressionAttributeNames:  map[string]string{"#p": s.attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": store.S(s.value)},
		ScanIndexForward:          aws.Bool(!back)}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	if !q.Before.IsZero() {
		// Every key of a case due before Before is less than its bound (the bound has no
		// "#<case id>", and a case without a term sorts after every date).
		in.KeyConditionExpression = aws.String("#p = :p AND #d < :b")
		in.ExpressionAttributeNames["#d"] = AttrDue
		in.ExpressionAttributeValues[":b"] = store.S(dueBound(q.Before))
	}
	if count {
		in.Select = types.SelectCount
	}
	if key != "" {
		_, id, _ := splitDue(key)
		in.ExclusiveStartKey = map[string]types.AttributeValue{"case_id": store.S(id), s.attr: store.S(s.value), AttrDue: store.S(key)}
	}
	return in
}

// inRange: can a query strictly after (or before) key return anything under Before? A
// start key outside the key condition is refused by DynamoDB, so it is not sent.
func inRange(q Query, key string, back bool) (send bool, empty bool) {
	if key == "" || q.Before.IsZero() || key < dueBound(q.Before) {
		return key != "", false
	}
	if back { // everything under the bound is before key: start from the bound
		return false, false
	}
	return false, true
}

// fetch reads up to limit tasks of one stream strictly after (before) key, following
// pages while a filter leaves them short. more: the stream has tasks beyond them.
func (l Lister) fetch(ctx context.Context, s stream, q Query, key string, back bool, limit int) (items []map[string]types.AttributeValue, more bool, err error) {
	send, empty := inRange(q, key, back)
	if empty {
		return nil, false, nil
	}
	if !send {
		key = ""
	}
	in := l.query(s, q, key, back, int32(limit+1), false)
	for {
		out, err := l.DB.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("query %s: %w", s.index, err)
		}
		items = append(items, out.Items...)
		if len(items) > limit {
			return items[:limit], true, nil
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, false, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// List reads one page: the role's tasks of every stream merged by deadline.
func (l Lister) List(ctx context.Context, q Query) (Page, error) {
	streams, err := q.streams()
	if err != nil {
		return Page{}, err
	}
	if q.Limit < 1 {
		return Page{}, fmt.Errorf("limit %d: must be 1 or more", q.Limit)
	}
	var c cursor
	if q.Cursor != "" {
		if c, err = decode(q.Cursor); err != nil {
			return Page{}, err
		}
	}
	back := c.Back || (q.Cursor == "" && q.Last)
	got := make([][]map[string]types.AttributeValue, len(streams))
	more := make([]bool, len(streams))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range streams {
		g.Go(func() (err error) {
			got[i], more[i], err = l.fetch(gctx, s, q, c.Key, back, q.Limit)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Page{}, err
	}
	var all []map[string]types.AttributeValue
	beyond := false
	for i := range got {
		all = append(all, got[i]...)
		beyond = beyond || more[i]
	}
	due := func(it map[string]types.AttributeValue) string {
		if s, ok := it[AttrDue].(*types.AttributeValueMemberS); ok {
			return s.Value
		}
		return ""
	}
	slices.SortFunc(all, func(a, b map[string]types.AttributeValue) int {
		if back {
			a, b = b, a
		}
		return compare(due(a), due(b))
	})
	if len(all) > q.Limit {
		all, beyond = all[:q.Limit], true
	}
	if back {
		slices.Reverse(all)
	}
	var p Page
	for _, it := range all {
		t, err := task(it)
		if err != nil {
			return Page{}, err
		}
		p.Tasks = append(p.Tasks, t)
	}
	if len(all) == 0 {
		return p, nil // nothing this way: no links (the caller offers the first or last page)
	}
	first, last := due(all[0]), due(all[len(all)-1])
	if back {
		if beyond {
			p.Prev = encode(cursor{Key: first, Back: true})
		}
		if c.Key != "" {
			p.Next = encode(cursor{Key: last})
		}
	} else {
		if beyond {
			p.Next = encode(cursor{Key: last})
		}
		if c.Key != "" {
			p.Prev = encode(cursor{Key: first, Back: true})
		}
	}
	return p, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// task reads an index item.
func task(it map[string]types.AttributeValue) (Task, error) {
	var r struct {
		CaseID    string    `json:"case_id"`
		Process   string    `json:"process"`
		Status    string    `json:"status"`
		Label     string    `json:"label"`
		Escalated bool      `json:"escalated"`
		UpdatedAt time.Time `json:"updated_at"`
		Due       string    `json:"task_due"`
	}
	if err := store.Unmarshal(it, &r); err != nil {
		return Task{}, fmt.Errorf("decode task: %w", err)
	}
	due, _, err := splitDue(r.Due)
	if err != nil {
		return Task{}, err
	}
	return Task{CaseID: r.CaseID, Process: r.Process, Status: r.Status, Label: r.Label, Due: due, Escalated: r.Escalated, Updated: r.UpdatedAt}, nil
}

// Count is how many tasks the query lists in all (Cursor, Last and Limit aside), counted
// up to max: exact is false when there are more than max (n is then max). A Select COUNT
// of each stream, in parallel, that reads no more than max+1 index items per stream.
// Counting a whole partition of 100,000
// tasks takes seconds, hence the bound.
func (l Lister) Count(ctx context.Context, q Query, max int) (n int, exact bool, err error) {
	streams, err := q.streams()
	if err != nil {
		return 0, false, err
	}
	counts := make([]int, len(streams))
	g, gctx := errgroup.WithContext(ctx)
	for i, s := range streams {
		g.Go(func() error {
			in := l.query(s, q, "", false, 0, true)
			for counts[i] <= max {
				in.Limit = aws.Int32(int32(max + 1 - counts[i]))
				out, err := l.DB.Query(gctx, in)
				if err != nil {
					return fmt.Errorf("count %s: %w", s.index, err)
				}
				counts[i] += int(out.Count)
				if len(out.LastEvaluatedKey) == 0 {
					return nil
				}
				in.ExclusiveStartKey = out.LastEvaluatedKey
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, false, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	if total > max {
		return max, false, nil
	}
	return total, true, nil
}

// Skip is the cursor after the first n tasks of the query ("" for n = 0): how a page
// number that no link carried is reached. It reads the n keys (a page of 1000 at a time).
func (l Lister) Skip(ctx context.Context, q Query, n int) (string, error) {
	q.Cursor, q.Last = "", false
	cur := ""
	for n > 0 {
		q.Limit = min(n, 1000)
		q.Cursor = cur
		p, err := l.List(ctx, q)
		if err != nil {
			return "", err
		}
		if len(p.Tasks) == 0 {
			break
		}
		last := p.Tasks[len(p.Tasks)-1]
		cur = encode(cursor{Key: DueKey(zeroIfNil(last.Due), last.CaseID)})
		n -= len(p.Tasks)
		if p.Next == "" {
			break
		}
	}
	return cur, nil
}

func zeroIfNil(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// ValidCursor tells whether c is a cursor this package wrote.
func ValidCursor(c string) bool { _, err := decode(c); return err == nil }

// Backward tells whether a cursor pages back (a Prev); false for "" or a bad one.
func Backward(c string) bool {
	d, err := decode(c)
	return err == nil && d.Back
}

// After is the cursor strictly after a task (to carry a position in a link).
func After(t Task) string { return encode(cursor{Key: DueKey(zeroIfNil(t.Due), t.CaseID)}) }

// Before is the cursor strictly before a task.
func Before(t Task) string {
	return encode(cursor{Key: DueKey(zeroIfNil(t.Due), t.CaseID), Back: true})
}
