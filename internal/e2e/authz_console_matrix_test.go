//go:build integration

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/store"
)

// The console's part of the authorization matrix over the real stack, generated from the
// same table (api.ConsoleRules): every console route that is not public × {not signed in,
// expired session, revoked session (`staff sessions revoke`), disabled account (`staff
// disable`), wrong role, a staff account bound to another tenant, the creating person
// deciding} → the status its rule gives. Case routes are walked for every process (and
// decisions for every action of it), with the read or decision scope the table names.
// Nothing changes for a refused request: the store (the tables of the API matrix and the
// staff tables), the taxpayer's workflows in Temporal, and the history of the account
// case the forms were aimed at (checked, not assumed).
func TestConsoleAuthorizationMatrixFromTheRouteTable(t *testing.T) {
	ctx := context.Background()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = "e2e-console-authz-nobody-" + uuid.NewString() // nothing may run; if it started, nothing would run it
	base := newServer(t, s)
	run := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	tenantA, tenantB := "cmx-a-"+run, "cmx-b-"+run
	creator := "cmx-creator-" + run

	// Staff: per role an unbound account, one bound to tenant B, and one of the person who
	// created tenant A's cases; a reviewer whose session expires, one whose sessions are
	// revoked, one disabled. Accounts are made at bcrypt's lowest cost (the server checks
	// any cost).
	staff := *api.StaffAccounts(shared.cfg, shared.clients)
	staff.Cost = bcrypt.MinCost
	const password = "console-matrix-password"
	staffRoles := []string{api.RoleReviewer, api.RoleInspector, api.RoleSpecialist, api.RoleOperator}
	signIn := func(login, role, tenant, person string) consoleSession {
		t.Helper()
		if _, err := staff.CreatePerson(ctx, login, role, tenant, person, password); err != nil {
			t.Fatalf("staff %s: %v", login, err)
		}
		cookie, sess, err := staff.SignIn(ctx, login, password)
		if err != nil {
			t.Fatalf("sign in %s: %v", login, err)
		}
		return consoleSession{cookie, sess.CSRF}
	}
	office, boundToB, creatorOf := map[string]consoleSession{}, map[string]consoleSession{}, map[string]consoleSession{}
	for _, role := range staffRoles {
		office[role] = signIn("cmx-"+role+"-"+run, role, "", "")
		boundToB[role] = signIn("cmx-b-"+role+"-"+run, role, tenantB, "")
		creatorOf[role] = signIn("cmx-c-"+role+"-"+run, role, "", creator)
	}
	expired := signIn("cmx-expired-"+run, api.RoleReviewer, "", "")
	if _, err := store.SetFields(ctx, shared.clients.DynamoDB, shared.cfg.Name(api.SessionsTable),
		map[string]types.AttributeValue{"session_hash": store.S(api.HashKey(expired.cookie))}, map[string]any{"expires_at": time.Now().Add(-time.Minute).Unix()}); err != nil {
		t.Fatal(err)
	}
	revoked := signIn("cmx-revoked-"+run, api.RoleReviewer, "", "")
	if n, err := staff.RevokeSessions(ctx, "cmx-revoked-"+run); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	// A specialist bound to tenant A (the control: it passes the account's rule).
	boundToA := signIn("cmx-a-specialist-"+run, api.RoleSpecialist, tenantA, "")
	disabled := signIn("cmx-disabled-"+run, api.RoleReviewer, "", "")
	if n, err := staff.Disable(ctx, "cmx-disabled-"+run); err != nil || n != 1 {
		t.Fatalf("disable: %d %v", n, err)
	}

	// Tenant A's objects: a taxpayer whose consent came through A; a case of each process
	// created by the creator person (owner records), a batch, and the taxpayer's account,
	// a real workflow (started by the authentication system's event, on a queue nobody
	// polls): its taxpayer is read from its start input.
	inn := newTaxpayer(t, 700_000)
	if _, err := store.SetFields(ctx, shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), map[string]types.AttributeValue{"inn": store.S(inn)},
		map[string]any{"consent": true, "consent_tenant": tenantA, "consent_by": tenantA + "/integrator"}); err != nil {
		t.Fatal(err)
	}
	keys := api.Keys(shared.cfg, shared.clients)
	auth, _, err := keys.CreateKey(ctx, api.Principal{Tenant: tenantA, Role: api.RoleAuthSystem}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if code := rawDo(t, base, auth, "POST", "/v1/accounts/"+inn+"/events", []byte(`{"event_id":"cmx-`+run+`","type":"login_failed"}`)); code != http.StatusAccepted {
		t.Fatalf("account event: %d", code)
	}
	accountID, _, err := s.AccountID(ctx, inn)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"account": accountID, "batch": "batch-" + strings.ReplaceAll(uuid.NewString(), "-", "")}
	for _, process := range []string{"refund", "identity", "declaration", "batch"} {
		id, ok := ids[process]
		if !ok {
			id = process + "-" + uuid.NewString()
			ids[process] = id
		}
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(api.OwnersTable), "case_id",
			map[string]any{"case_id": id, "tenant": tenantA, "created_by": "person:" + creator, "created_at": time.Now().Unix()}); err != nil {
			t.Fatal(err)
		}
	}

	// The requests of the matrix: each route's paths (a case route for every process) and,
	// for a form, its fields; the scope each needs, by the table.
	type request struct {
		method, path, process string
		form                  url.Values
		read, scope           string // the case page's read scope (decisions need it too), and the route's own
		decides               bool
	}
	var requests []request
	for _, r := range api.ConsoleRules() {
		if r.Rule == api.RulePublic {
			continue
		}
		method, path, _ := strings.Cut(r.Pattern, " ")
		switch {
		case strings.HasPrefix(path, "/console/cases/{id}") && method == "GET":
			for _, p := range api.ConsoleProcesses() {
				requests = append(requests, request{method, strings.Replace(path, "{id}", ids[p], 1), p, nil, api.ConsoleReadScope(p), api.ConsoleReadScope(p), r.Decides})
			}
		case strings.HasPrefix(path, "/console/cases/{id}"):
			for _, p := range api.ConsoleProcesses() {
				for _, action := range api.ConsoleActions(p) {
					scope, _ := api.ConsoleActionScope(p, action)
					form := url.Values{"action": {action}, "reason": {"matrix"}, "what": {"matrix"}, "kind": {"documents"}, "decision": {"confirmed"}}
					// A form is a decision when the API route it stands for is one.
					requests = append(requests, request{method, strings.Replace(path, "{id}", ids[p], 1), p, form, api.ConsoleReadScope(p), scope, api.ConsoleActionDecides(p, action)})
				}
			}
		case strings.HasPrefix(path, "/console/batches/{id}"):
			requests = append(requests, request{method, strings.Replace(path, "{id}", ids["batch"], 1), "batch", nil, r.Scope, r.Scope, r.Decides})
		case strings.Contains(path, "{"):
			t.Fatalf("console route %s: the matrix does not know its path value", r.Pattern)
		default:
			requests = append(requests, request{method, path, "", url.Values{}, r.Scope, r.Scope, r.Decides})
		}
	}
	for i := range requests {
		if requests[i].method == "GET" {
			requests[i].form = nil
		}
	}
	can := func(role, scope string) bool { return scope == "" || slices.Contains(api.RoleScopes[role], scope) }

	var all []consoleSession
	for _, m := range []map[string]consoleSession{office, boundToB, creatorOf} {
		for _, v := range m {
			all = append(all, v)
		}
	}
	all = append(all, expired, revoked, disabled, boundToA)
	before := consoleState(t, s, inn, accountID, all)
	type cell struct {
		column string
		sess   *consoleSession
		want   int
	}
	checked, routes := 0, map[string]bool{}
	for _, rq := range requests {
		pattern := rq.method + " " + rq.path
		for _, id := range ids {
			pattern = strings.Replace(pattern, id, "{id}", 1)
		}
		routes[pattern] = true
		noSession := http.StatusSeeOther // a page sends to sign-in
		if rq.method == "POST" {
			noSession = http.StatusUnauthorized // a form is refused
		}
		cells := []cell{{"not signed in", nil, noSession}, {"expired session", &expired, noSession},
			{"revoked session", &revoked, noSession}, {"disabled account", &disabled, noSession}}
		// Wrong role: one that may read the page but not take the decision, where there is
		// one (the decision's own check), else one without the scope.
		wrong := ""
		for _, role := range staffRoles {
			if !can(role, rq.scope) && (wrong == "" || can(role, rq.read)) {
				wrong = role
			}
		}
		if wrong != "" {
			cells = append(cells, cell{"wrong role " + wrong, ptr(office[wrong]), http.StatusForbidden})
		}
		holder := ""
		for _, role := range staffRoles {
			if holder == "" && can(role, rq.scope) && can(role, rq.read) {
				holder = role
			}
		}
		if holder == "" {
			t.Fatalf("%s: no staff role may use it", pattern)
		}
		if rq.process != "" {
			cells = append(cells, cell{"bound to another tenant (" + holder + ")", ptr(boundToB[holder]), http.StatusNotFound})
		}
		if rq.decides && rq.process != "account" { // an account is created by no one who decides
			cells = append(cells, cell{"the creating person deciding (" + holder + ")", ptr(creatorOf[holder]), http.StatusForbidden})
		}
		for _, c := range cells {
			code, loc := consoleDo(t, base, rq.method, rq.path, c.sess, rq.form)
			if code != c.want {
				t.Errorf("%s %s × %s: %d, want %d", rq.method, rq.path, c.column, code, c.want)
			}
			if code == http.StatusSeeOther && !strings.HasPrefix(loc, "/console/login") {
				t.Errorf("%s %s × %s: sent to %q, want sign-in", rq.method, rq.path, c.column, loc)
			}
			checked++
		}
	}
	// The account case is its taxpayer's: staff bound to tenant A pass its rule (the page
	// then asks a workflow nobody runs: anything but 404 or 403), tenant B's do not (above).
	if code, _ := consoleDo(t, base, "GET", "/console/cases/"+accountID, &boundToA, nil); code == http.StatusNotFound || code == http.StatusForbidden {
		t.Errorf("a specialist bound to the taxpayer's tenant on its account: %d", code)
	}
	after := consoleState(t, s, inn, accountID, all)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("refused console requests changed the store or Temporal:\nbefore %+v\nafter  %+v", before, after)
	}
	want := 0
	for _, r := range api.ConsoleRules() {
		if r.Rule != api.RulePublic {
			want++
		}
	}
	if len(routes) != want {
		t.Errorf("the matrix walked %d console routes, the table has %d that are not public", len(routes), want)
	}
	t.Logf("%d refused console requests over %d routes; store and Temporal unchanged (items %v, sessions %d, the taxpayer's workflows %d, the account's history %d events)",
		checked, len(routes), after.Items, len(after.Sessions), after.Workflows, after.AccountEvents)
}

func ptr[T any](v T) *T { return &v }

// consoleSession is a signed-in browser: its cookie and its forms' CSRF token.
type consoleSession struct{ cookie, csrf string }

// consoleDo sends one console request with the session's cookie (none without one) and,
// for a form, its CSRF token; it answers the status and the redirect's target.
func consoleDo(t *testing.T, base, method, path string, sess *consoleSession, form url.Values) (int, string) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if sess != nil {
			f.Set("csrf", sess.csrf)
		}
		body = strings.NewReader(f.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if sess != nil {
		req.AddCookie(&http.Cookie{Name: "taxflow_console", Value: sess.cookie})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

// consoleMatrixState is what a refused console request must leave as it was.
type consoleMatrixState struct {
	state
	StaffAccounts int32
	Sessions      map[string]string // the test's sessions: their expiry while live, else "ended"
	AccountEvents int
}

// consoleState is the API matrix's snapshot, the staff accounts' item count, the test's
// sessions (DynamoDB's TTL removes ended ones at any time, so an ended one counts as
// ended whether its item is still there), and the length of the account case's history.
func consoleState(t *testing.T, s *api.Server, inn, accountID string, sessions []consoleSession) consoleMatrixState {
	t.Helper()
	ctx := context.Background()
	st := consoleMatrixState{state: snapshot(t, s, inn), Sessions: map[string]string{}}
	var start map[string]types.AttributeValue
	for {
		out, err := shared.clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(shared.cfg.Name(api.StaffTable)), Select: types.SelectCount, ExclusiveStartKey: start})
		if err != nil {
			t.Fatalf("count staff accounts: %v", err)
		}
		st.StaffAccounts += out.Count
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	for _, sess := range sessions {
		h := api.HashKey(sess.cookie)
		var item struct {
			ExpiresAt int64 `json:"expires_at"`
		}
		found, err := store.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(api.SessionsTable), map[string]types.AttributeValue{"session_hash": store.S(h)}, &item)
		if err != nil {
			t.Fatal(err)
		}
		st.Sessions[h[:12]] = "ended"
		if found && item.ExpiresAt > time.Now().Unix() {
			st.Sessions[h[:12]] = fmt.Sprint(item.ExpiresAt)
		}
	}
	it := shared.temporal.GetWorkflowHistory(ctx, accountID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			t.Fatalf("account history: %v", err)
		}
		st.AccountEvents++
	}
	if st.AccountEvents == 0 {
		t.Fatalf("the account %s has no history", accountID)
	}
	return st
}
