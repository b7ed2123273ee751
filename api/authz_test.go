package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// The table has a rule for every route the API and the console serve: a route added
// without one fails here. The rule must fit the route: a path with {id} names a case,
// one with {inn} a taxpayer, a decision is staff's.
func TestEveryRouteHasARule(t *testing.T) {
	rules := []string{RulePublic, RuleCreate, RuleCase, RuleTaxpayer, RuleStaff}
	for _, rt := range routes {
		name := rt.method + " " + rt.path
		switch {
		case !slices.Contains(rules, rt.rule):
			t.Errorf("%s: no object rule (%q)", name, rt.rule)
		case (rt.scope == "") != (rt.rule == RulePublic):
			t.Errorf("%s: scope %q with rule %s", name, rt.scope, rt.rule)
		case strings.Contains(rt.path, "{id}") && rt.rule != RuleCase && rt.rule != RuleStaff,
			strings.Contains(rt.path, "{inn}") && rt.rule != RuleTaxpayer && rt.rule != RuleStaff:
			t.Errorf("%s: rule %s does not judge its path's object", name, rt.rule)
		case rt.decides && rt.rule != RuleStaff:
			t.Errorf("%s: a decision is staff's", name)
		}
		if _, create := creates[name]; create && rt.rule != RuleCreate {
			t.Errorf("%s: a create with rule %s", name, rt.rule)
		}
	}
	// Every pattern the console mounts has its row.
	var console []string
	for _, r := range consoleRules {
		if !slices.Contains(rules, r.rule) {
			t.Errorf("console %s: no object rule", r.pattern)
		}
		console = append(console, r.pattern)
	}
	for _, p := range ConsoleRoutes() {
		if !slices.Contains(console, p) {
			t.Errorf("console route %s has no rule", p)
		}
	}
	// And the mux serves nothing the table does not list: every route answers through it.
	s, _ := newTestServer()
	s.Staff = &StaffStore{}
	mux := http.NewServeMux()
	s.mountConsole(mux)
	for _, p := range console {
		if _, pattern := mux.Handler(requestFor(p)); pattern != p {
			t.Errorf("console pattern %s is served as %q", p, pattern)
		}
	}
}

func requestFor(pattern string) *http.Request {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{id}", "refund-x", "{$}", "").Replace(path)
	req, _ := http.NewRequest(method, path, nil)
	return req
}

const (
	innA = "500100732259" // tenant alpha's customer
	innB = "773301001003" // tenant beta's customer
)

// authzServer: tenants alpha and beta with integrator and auth-system keys; staff keys of
// the tax office (unbound, bound to alpha, bound to beta); a legacy staff key alpha made
// for itself; the registry holds consent for innA through alpha and innB through beta.
func authzServer(t *testing.T) (*Server, http.Handler, *storetest.DB) {
	t.Helper()
	s, keys := newTestServer()
	db := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"}, "taxpayers": {PK: "inn"}})
	s.DB, s.Taxpayers = db, "taxpayers"
	add := func(key string, p Principal) {
		v, err := ValidatePrincipal(p)
		if err != nil {
			t.Fatal(err)
		}
		keys.Add(key, v)
	}
	for _, tenant := range []string{"alpha", "beta"} {
		add(tenant+"-integrator", Principal{Tenant: tenant, Role: RoleIntegrator})
		for _, role := range []string{RoleReviewer, RoleInspector, RoleSpecialist, RoleOperator} {
			add(tenant+"-bound-"+role, Principal{Tenant: TaxOffice, BoundTo: tenant, Role: role, Person: tenant + "-" + role})
		}
	}
	for _, role := range []string{RoleReviewer, RoleInspector, RoleSpecialist, RoleOperator} {
		add("office-"+role, Principal{Tenant: TaxOffice, Role: role, Person: "office-" + role})
	}
	// A staff key alpha holds (made before staff keys belonged to the tax office).
	keys.Add("alpha-own-reviewer", Principal{ID: "alpha/reviewer", Tenant: "alpha", Role: RoleReviewer, Scopes: RoleScopes[RoleReviewer]})
	for inn, tenant := range map[string]string{innA: "alpha", innB: "beta"} {
		if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn", map[string]any{"inn": inn, "consent": true, "consent_tenant": tenant}); err != nil {
			t.Fatal(err)
		}
	}
	return s, s.Handler(), db
}

func ownedCase(t *testing.T, s *Server, prefix, tenant string) string {
	t.Helper()
	id := prefix + uuid.NewString()
	if _, err := store.PutNew(context.Background(), s.DB, s.Owners, "case_id", caseOwner{CaseID: id, Tenant: tenant, CreatedBy: tenant + "/integrator"}); err != nil {
		t.Fatal(err)
	}
	return id
}

// Routes keyed by INN judge the taxpayer, not only the scope: tenant alpha can neither
// withdraw nor overwrite the consent of beta's customer, nor read its lock state, and
// nothing is written for the refused requests.
func TestINNRoutesRefuseAnotherTenantsTaxpayer(t *testing.T) {
	_, h, db := authzServer(t)
	writes := db.Writes
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/v1/taxpayers/" + innB + "/consent", ""},
		{"POST", "/v1/taxpayers/" + innB + "/consent", `{"channel":"cabinet","document_id":"made-up"}`},
		{"GET", "/v1/accounts/" + innB + "/lock", ""},
		{"POST", "/v1/accounts/" + innB + "/unblock/specialist-request", "{}"},
		{"POST", "/v1/accounts/" + innB + "/unblock/self-service", `{"full_name":"Иванов Иван","passport_series":"4510"}`},
	} {
		rec := do(h, c.method, c.path, "alpha-integrator", c.body)
		if rec.Code != http.StatusNotFound {
			t.Errorf("alpha %s %s: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
	// A specialist bound to alpha decides nothing for beta's customer.
	if rec := do(h, "POST", "/v1/accounts/"+innB+"/unblock/specialist-decision", "alpha-bound-specialist", `{"approve":true,"reason":"x"}`); rec.Code != http.StatusNotFound {
		t.Errorf("specialist bound to alpha on beta's taxpayer: %d %s", rec.Code, rec.Body)
	}
	// The integrator's own key cannot send login events: the authentication system's alone.
	if rec := do(h, "POST", "/v1/accounts/"+innA+"/events", "alpha-integrator", `{}`); rec.Code != http.StatusForbidden {
		t.Errorf("integrator sends an account event: %d %s", rec.Code, rec.Body)
	}
	if db.Writes != writes {
		t.Fatalf("%d writes for refused requests", db.Writes-writes)
	}
}

// The rules let the related tenant and the staff acting for it through.
func TestTaxpayerRuleAllowsTheRelatedTenantAndItsStaff(t *testing.T) {
	s, _, db := authzServer(t)
	ctx := context.Background()
	check := func(p Principal, rule, inn string) error { return s.checkObject(ctx, p, rule, false, "", inn) }
	alpha := Principal{Tenant: "alpha", Role: RoleIntegrator}
	for _, c := range []struct {
		p    Principal
		rule string
		inn  string
		ok   bool
	}{
		{alpha, RuleTaxpayer, innA, true},
		{alpha, RuleTaxpayer, innB, false},
		{Principal{Tenant: TaxOffice, Role: RoleSpecialist}, RuleStaff, innB, true},
		{Principal{Tenant: TaxOffice, BoundTo: "alpha", Role: RoleSpecialist}, RuleStaff, innA, true},
		{Principal{Tenant: TaxOffice, BoundTo: "alpha", Role: RoleSpecialist}, RuleStaff, innB, false},
		{Principal{Tenant: "alpha", Role: RoleAuthSystem}, RuleTaxpayer, innB, true}, // the accounts' authentication system
		{alpha, RuleStaff, innA, false},
	} {
		err := check(c.p, c.rule, c.inn)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errNoObject)) {
			t.Errorf("%+v %s: %v, want allowed=%v", c.p, c.rule, err, c.ok)
		}
	}
	// A case of its own for the taxpayer does not relate a tenant (starting one asks for no
	// relationship), not even one recorded as such by an earlier version.
	if err := s.relate(ctx, "beta", innA, "case"); err != nil {
		t.Fatal(err)
	}
	if err := check(Principal{Tenant: "beta", Role: RoleIntegrator}, RuleTaxpayer, innA); !errors.Is(err, errNoObject) {
		t.Errorf("beta with a case for innA: %v, want refused", err)
	}
	// Where no consent stands, recording one is open (a relationship begins with it).
	if _, err := store.PutNew(ctx, db, "taxpayers", "inn", map[string]any{"inn": "500100732260"}); err != nil {
		t.Fatal(err)
	}
	if open, err := s.consentOpen(ctx, "500100732260"); err != nil || !open {
		t.Fatalf("a taxpayer without consent: open=%v %v", open, err)
	}
	if open, _ := s.consentOpen(ctx, innB); open {
		t.Fatal("consent standing through beta is open to others")
	}
}

// A staff key bound to alpha neither reads nor decides beta's cases (404 as a missing
// case); a key alpha holds never decides what alpha claimed (403); tax-office staff do.
func TestStaffKeysAreBoundAndTheCreatingTenantNeverDecides(t *testing.T) {
	s, h, db := authzServer(t)
	betaRefund := ownedCase(t, s, "refund-", "beta")
	alphaRefund := ownedCase(t, s, "refund-", "alpha")
	writes := db.Writes
	if rec := do(h, "GET", "/v1/refunds/"+betaRefund, "alpha-bound-reviewer", ""); rec.Code != http.StatusNotFound {
		t.Errorf("reviewer bound to alpha reads beta's refund: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/refunds/"+betaRefund+"/decision", "alpha-bound-reviewer", `{"approve":true,"reason":"ok"}`); rec.Code != http.StatusNotFound {
		t.Errorf("reviewer bound to alpha decides beta's refund: %d %s", rec.Code, rec.Body)
	}
	rec := do(h, "POST", "/v1/refunds/"+alphaRefund+"/decision", "alpha-own-reviewer", `{"approve":true,"reason":"ok"}`)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "separation_of_duties") {
		t.Errorf("alpha's own reviewer key approves alpha's claim: %d %s", rec.Code, rec.Body)
	}
	if db.Writes != writes {
		t.Fatalf("%d writes for refused requests", db.Writes-writes)
	}
	ctx := context.Background()
	for _, p := range []Principal{{ID: "x", Tenant: TaxOffice, Role: RoleReviewer}, {ID: "y", Tenant: TaxOffice, BoundTo: "beta", Role: RoleReviewer}} {
		if err := s.checkObject(ctx, p, RuleStaff, true, betaRefund, ""); err != nil {
			t.Errorf("%+v deciding beta's refund: %v", p, err)
		}
	}
	// New staff keys belong to the tax office; a tenant cannot be given one.
	for _, bad := range []Principal{{Tenant: "alpha", Role: RoleReviewer}, {Tenant: TaxOffice, Role: RoleIntegrator},
		{Tenant: "alpha", Role: RoleIntegrator, BoundTo: "beta"}, {Tenant: TaxOffice, Role: RoleInspector, Person: "Not A Person"}} {
		if _, err := ValidatePrincipal(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// One person is one identity whichever channel they decide through: the inspector
// who decided a declaration through the console is, through an API key naming the same
// person, the same inspector to the workflow (which refuses them its appeal).
func TestOnePersonIsOneInspectorAcrossConsoleAndKeys(t *testing.T) {
	console := StaffAccount{Login: "ivanova.console", Role: RoleInspector, Person: "ivanova"}.Principal()
	key := Principal{ID: "tax-office/inspector/ivanova", Tenant: TaxOffice, Role: RoleInspector, Person: "ivanova", Scopes: RoleScopes[RoleInspector]}
	other := Principal{ID: "tax-office/inspector/petrov", Tenant: TaxOffice, Role: RoleInspector, Person: "petrov", Scopes: RoleScopes[RoleInspector]}
	who := func(p Principal) string {
		_, arg, _, _, err := caseAction{Process: procDecl, Action: ActDecide, Decision: workflows.DecisionConfirmed, Reason: "ok"}.update(p)
		if err != nil {
			t.Fatal(err)
		}
		return arg.(workflows.DeclarationDecision).Inspector
	}
	if who(console) != who(key) || who(key) == who(other) {
		t.Fatalf("console %q, key %q, another person %q", who(console), who(key), who(other))
	}
}

// A batch line is authorized as the request it stands for: an integrator's account
// event, a refund from a key with batches:write only, and a file without an uploader are
// error lines naming the scope, and start nothing.
func TestBatchLinesNeedTheScopeOfTheirRoute(t *testing.T) {
	s, _, db := authzServer(t)
	writes := db.Writes
	integrator := &batch.Uploader{Principal: "alpha/integrator", Tenant: "alpha", Role: RoleIntegrator, Scopes: RoleScopes[RoleIntegrator]}
	batchOnly := &batch.Uploader{Principal: "alpha/uploader", Tenant: "alpha", Role: RoleIntegrator, Scopes: []string{ScopeBatchesWrite}}
	event := batch.Line{No: 2, Kind: "account_event", ExternalID: "e1", Event: &batch.EventLine{INN: innB}}
	refund := batch.Line{No: 3, Kind: "refund", ExternalID: "r1", Refund: &contract.RefundRequest{INN: innA, Period: 2025, Amount: 100, Reason: "overpaid"}}
	decl := batch.Line{No: 4, Kind: "declaration", ExternalID: "d1", Declaration: &batch.DeclarationLine{INN: innA}}
	for _, c := range []struct {
		up    *batch.Uploader
		line  batch.Line
		scope string
	}{
		{integrator, event, ScopeAccountEvents},
		{batchOnly, refund, ScopeRefundsWrite},
		{batchOnly, decl, ScopeDeclarationsWrite},
		{nil, refund, ScopeRefundsWrite},
		{&batch.Uploader{Principal: "beta/integrator", Tenant: "beta", Role: RoleIntegrator, Scopes: RoleScopes[RoleIntegrator]}, refund, ScopeRefundsWrite},
	} {
		c.line.Uploader = c.up
		res, err := s.StartBatchLine(context.Background(), "alpha", c.line)
		if err != nil {
			t.Fatalf("line %d: %v", c.line.No, err)
		}
		if res.Outcome != contract.LineError || !strings.Contains(res.Error, c.scope) || res.CaseID != "" {
			t.Errorf("line %d (%s) by %+v: %+v, want an error naming %s", c.line.No, c.line.Kind, c.up, res, c.scope)
		}
	}
	// The authentication system's lines pass the table (and would be delivered).
	auth := &Principal{ID: "alpha/auth", Tenant: "alpha", Role: RoleAuthSystem, Scopes: RoleScopes[RoleAuthSystem]}
	if why, err := s.authorizeLine(context.Background(), auth, "account_event", innB); why != "" || err != nil {
		t.Errorf("the authentication system's event line: %q %v", why, err)
	}
	if db.Writes != writes {
		t.Fatalf("%d writes for refused lines", db.Writes-writes)
	}
}

// tripsDB counts the store's round trips.
type tripsDB struct {
	*storetest.DB
	n int
}

func (c *tripsDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.n++
	return c.DB.GetItem(ctx, in, o...)
}

func (c *tripsDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.n++
	return c.DB.UpdateItem(ctx, in, o...)
}

func (c *tripsDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.n++
	return c.DB.PutItem(ctx, in, o...)
}

// A sign-in for an unknown login, a malformed one, a disabled account and a wrong
// password costs the same round trips: the answer's timing names no login.
func TestSignInCostsTheSameForUnknownAndRealLogins(t *testing.T) {
	st, _, db := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "boris", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Disable(ctx, "boris"); err != nil {
		t.Fatal(err)
	}
	c := &tripsDB{DB: db}
	st.DB = c
	trips := map[string]int{}
	for _, login := range []string{"anna", "nobody", "NOT A LOGIN", "boris"} {
		c.n = 0
		if _, _, err := st.SignIn(ctx, login, "wrong-password-1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", login, err)
		}
		trips[login] = c.n
	}
	if trips["anna"] != trips["nobody"] || trips["anna"] != trips["NOT A LOGIN"] || trips["anna"] != trips["boris"] {
		t.Fatalf("round trips per login: %v", trips)
	}
	// A disabled account is refused even with its right password.
	if _, _, err := st.SignIn(ctx, "boris", testPassword); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("disabled account signed in: %v", err)
	}
}

// An outsider who guesses from their address locks the login for that address only:
// its owner signs in from theirs. Locks double and end: none is permanent.
func TestLockoutIsPerAddressAndEnds(t *testing.T) {
	st, c, _ := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	guess := func() error { _, _, err := st.SignInFrom(ctx, "anna", "a-wrong-guess!", "198.51.100.9"); return err }
	for range MaxPasswordFailures {
		_ = guess()
	}
	if _, _, err := st.SignInFrom(ctx, "anna", testPassword, "198.51.100.9"); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("the attacker's address after %d guesses: %v", MaxPasswordFailures, err)
	}
	if _, _, err := st.SignInFrom(ctx, "anna", testPassword, "203.0.113.7"); err != nil {
		t.Fatalf("the owner from their own address: %v", err)
	}
	// The next lock from the attacker's address lasts twice as long; each ends.
	c.t = c.t.Add(StaffLockout + time.Second)
	for range MaxPasswordFailures {
		_ = guess()
	}
	c.t = c.t.Add(StaffLockout + time.Second)
	if err := guess(); !errors.Is(err, ErrStaffLocked) {
		t.Fatalf("second lock after %s: %v", StaffLockout, err)
	}
	c.t = c.t.Add(StaffLockout)
	if err := guess(); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("second lock after %s: %v", 2*StaffLockout, err)
	}
	if lockFor(100) != MaxStaffLockout {
		t.Fatalf("lock cap: %s", lockFor(100))
	}
}

// staff disable and staff sessions revoke end sessions at once.
func TestDisableAndRevokeEndSessions(t *testing.T) {
	st, _, _ := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	one, _, _ := st.SignIn(ctx, "anna", testPassword)
	two, _, _ := st.SignIn(ctx, "anna", testPassword)
	if n, err := st.RevokeSessions(ctx, "anna"); err != nil || n != 2 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	for _, c := range []string{one, two} {
		if _, ok, _ := st.Session(ctx, c); ok {
			t.Fatal("a revoked session is live")
		}
	}
	three, _, _ := st.SignIn(ctx, "anna", testPassword)
	if n, err := st.Disable(ctx, "anna"); err != nil || n != 1 {
		t.Fatalf("disable: %d %v", n, err)
	}
	if _, ok, _ := st.Session(ctx, three); ok {
		t.Fatal("a disabled account's session is live")
	}
	if _, _, err := st.SignIn(ctx, "anna", testPassword); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a disabled account signs in: %v", err)
	}
	if _, err := st.Disable(ctx, "nobody"); !errors.Is(err, ErrNoStaff) {
		t.Fatalf("disable an unknown login: %v", err)
	}
}

// A console form is authorized as the API route it stands for: every action of every
// process names a route of the table, takes that row's scope, and is a decision (the
// separation of duties applies) exactly when the row is one. A payout retry is an
// operator's step, not a decision on the claim, in both channels.
func TestConsoleActionsTakeTheirRoutesRule(t *testing.T) {
	p := Principal{ID: "tax-office/x", Tenant: TaxOffice, Role: RoleReviewer, Person: "x"}
	want := map[string]bool{ // action → decides
		procRefund + " " + ActApprove: true, procRefund + " " + ActReject: true, procRefund + " " + ActRetry: false,
		procIdent + " " + ActApprove: true, procIdent + " " + ActReject: true,
		procAccount + " " + ActApprove: false, procAccount + " " + ActReject: false,
		procDecl + " " + ActRequest: true, procDecl + " " + ActDecide: true,
	}
	for _, process := range []string{procRefund, procIdent, procAccount, procDecl} {
		for _, action := range []string{ActApprove, ActReject, ActRetry, ActRequest, ActDecide} {
			a := caseAction{Process: process, Action: action}
			decides, listed := want[process+" "+action]
			_, _, _, scope, err := a.update(p)
			rt, found := a.route()
			if !listed {
				if err == nil || found {
					t.Errorf("%s %s: an action the process does not have was taken (%v, route %v)", process, action, err, found)
				}
				continue
			}
			if err != nil || !found {
				t.Fatalf("%s %s: %v, route found %v", process, action, err, found)
			}
			if scope != rt.scope || rt.decides != decides {
				t.Errorf("%s %s: scope %q (route %s %s: %q), decides %v (want %v)", process, action, scope, rt.method, rt.path, rt.scope, rt.decides, decides)
			}
		}
	}
}
