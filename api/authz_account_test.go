package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/tasks/taskstest"
	"github.com/taxflow/taxflow/workflows"
)

// accountCases is a Temporal client that holds account workflows (their start input, the
// taxpayer's INN) waiting for a specialist: their histories, and the specialists' task
// list. Every other query lists nothing.
type accountCases struct {
	client.Client
	inputs    map[string]string // account id → INN of its start input
	mu        sync.Mutex        // the console reads histories concurrently
	histories []string          // the ids whose history was read
}

func (f *accountCases) GetWorkflowHistory(_ context.Context, id, _ string, _ bool, _ enumspb.HistoryEventFilterType) client.HistoryEventIterator {
	f.mu.Lock()
	f.histories = append(f.histories, id)
	f.mu.Unlock()
	inn, ok := f.inputs[id]
	if !ok {
		return &oneEvent{err: serviceerror.NewNotFound("workflow not found for ID: " + id)}
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(workflows.AccountWorkflowInput{AccountID: id, INN: inn})
	if err != nil {
		panic(err)
	}
	return &oneEvent{ev: &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
		WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{p}}}}}}
}

func (f *accountCases) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return nil, errors.New("no status in this test")
}

type oneEvent struct {
	ev   *historypb.HistoryEvent
	err  error
	done bool
}

func (o *oneEvent) HasNext() bool { return !o.done }
func (o *oneEvent) Next() (*historypb.HistoryEvent, error) {
	o.done = true
	return o.ev, o.err
}

// An account case belongs to its taxpayer, not to a tenant (it has no owner record): staff
// bound to a tenant see and decide the accounts of the taxpayers their tenant is related
// to (the taxpayer rule, as on /v1/accounts/{inn}/…), and no others; tax-office staff
// see all. The console's task list, its case page and GET /v1/tasks agree.
func TestBoundStaffSeeTheAccountsOfTheirTenantsTaxpayers(t *testing.T) {
	s, h, _ := authzServer(t)
	ctx := context.Background()
	accountA, accountB := workflows.AccountID(s.Subject(innA)), workflows.AccountID(s.Subject(innB))
	tc := &accountCases{inputs: map[string]string{accountA: innA, accountB: innB}}
	s.Temporal, s.DataConverter = tc, converter.GetDefaultDataConverter()
	// Both accounts wait for a specialist: their projections are in the task index.
	idx := taskstest.New(s.DB, "cases")
	s.DB, s.Cases = idx, "cases"
	for _, id := range []string{accountA, accountB} {
		idx.Put(contract.CaseRecord{CaseID: id, Process: procAccount, Status: workflows.AccountAwaitingSpecialist, Version: 1, UpdatedAt: time.Now()}, "")
	}

	boundA := Principal{ID: "a", Tenant: TaxOffice, BoundTo: "alpha", Role: RoleSpecialist, Scopes: RoleScopes[RoleSpecialist]}
	office := Principal{ID: "o", Tenant: TaxOffice, Role: RoleSpecialist, Scopes: RoleScopes[RoleSpecialist]}
	for _, c := range []struct {
		p  Principal
		id string
		ok bool
	}{
		{boundA, accountA, true},
		{boundA, accountB, false},
		{boundA, workflows.AccountID(s.Subject("500100732260")), false}, // no such account
		{office, accountA, true},
		{office, accountB, true},
	} {
		err := s.checkObject(ctx, c.p, RuleStaff, true, c.id, "")
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errNoObject)) {
			t.Errorf("%s on %s: %v, want allowed=%v", c.p.BoundTo, c.id, err, c.ok)
		}
	}

	// Only staff open an account by its case id: to a tenant's key, even one related to
	// the taxpayer, an account id on a case route is a missing case (nothing is read).
	read := len(tc.histories)
	if rec := do(h, "GET", "/v1/refunds/"+accountA, "alpha-integrator", ""); rec.Code != http.StatusNotFound || len(tc.histories) != read {
		t.Errorf("alpha's key on its customer's account id: %d, %d histories read", rec.Code, len(tc.histories)-read)
	}

	// GET /v1/tasks: the same rule.
	tasks := func(key string) []string {
		rec := do(h, "GET", "/v1/tasks?role=specialist", key, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("tasks for %s: %d %s", key, rec.Code, rec.Body)
		}
		var out struct{ Tasks []Task }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, task := range out.Tasks {
			ids = append(ids, task.CaseID)
		}
		slices.Sort(ids)
		return ids
	}
	both := []string{accountA, accountB}
	slices.Sort(both)
	if got := tasks("alpha-bound-specialist"); !slices.Equal(got, []string{accountA}) {
		t.Errorf("API tasks of a specialist bound to alpha: %v, want alpha's customer's account %s only", got, accountA)
	}
	if got := tasks("office-specialist"); !slices.Equal(got, both) {
		t.Errorf("API tasks of a tax-office specialist: %v, want %v", got, both)
	}

	// The console: the task list and the case page.
	st, _, _ := newStaffStore(t)
	s.Staff = st
	h = s.Handler()
	for _, a := range []struct{ login, tenant string }{{"bound-alpha", "alpha"}, {"office", ""}} {
		if _, err := st.Create(ctx, a.login, RoleSpecialist, a.tenant, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	console := func(login string) *consoleClient {
		c := &consoleClient{t: t, h: h, jar: map[string]*http.Cookie{}}
		c.signIn(login, testPassword)
		return c
	}
	listed := func(c *consoleClient) []string {
		rec := c.do("GET", "/console/tasks?"+url.Values{"process": {procAccount}}.Encode(), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("console tasks: %d %s", rec.Code, rec.Body)
		}
		var ids []string
		for _, id := range both {
			if strings.Contains(rec.Body.String(), `data-case="`+id+`"`) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	boundConsole, officeConsole := console("bound-alpha"), console("office")
	if got := listed(boundConsole); !slices.Equal(got, []string{accountA}) {
		t.Errorf("console tasks of a specialist bound to alpha: %v, want %s only", got, accountA)
	}
	if got := listed(officeConsole); !slices.Equal(got, both) {
		t.Errorf("console tasks of a tax-office specialist: %v, want %v", got, both)
	}
	// The case page: beta's customer's account does not exist for alpha's specialist;
	// alpha's customer's does (its status query fails here: 503, not 404).
	if rec := boundConsole.do("GET", "/console/cases/"+accountB, nil); rec.Code != http.StatusNotFound {
		t.Errorf("bound specialist on another tenant's customer's account: %d", rec.Code)
	}
	if rec := boundConsole.do("GET", "/console/cases/"+accountA, nil); rec.Code == http.StatusNotFound || rec.Code == http.StatusForbidden {
		t.Errorf("bound specialist on its tenant's customer's account: %d", rec.Code)
	}

	// Without a way to read the account's taxpayer, nothing is shown to bound staff
	// (fail closed); tax-office staff still see all.
	s.DataConverter = nil
	if err := s.checkObject(ctx, boundA, RuleStaff, false, accountA, ""); err == nil {
		t.Error("an account whose taxpayer cannot be read is shown to bound staff")
	}
	if err := s.checkObject(ctx, office, RuleStaff, false, accountA, ""); err != nil {
		t.Errorf("tax-office staff: %v", err)
	}
}
