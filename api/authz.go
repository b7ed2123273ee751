package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
)

// Authorization is one table: every API route (routes) and every console route
// (consoleRoutes) names the scope it needs and its object rule, and the chain of checks
// is built from those two values alone (authorize), for the API, the console and each
// line of a batch file (authorizeLine).
//
// The object rules:
//   - RulePublic: no key, no object (health, the description).
//   - RuleCreate: the request makes a new object owned by the caller's tenant (a case, a
//     challenge, an upload): nothing exists to check it against.
//   - RuleCase: the case in {id} is the caller's tenant's. Staff bound to a tenant act on
//     that tenant's cases; tax-office staff on all. Anything else is 404, as for a case that
//     does not exist.
//   - RuleTaxpayer: the taxpayer in {inn} has a relationship with the caller's tenant
//     (related: a case of the tenant for this taxpayer, or consent given through the
//     tenant). Staff as above, through the tenant they are bound to; the authentication
//     system (RoleAuthSystem) speaks for every account. Anything else is 404.
//   - RuleStaff: only staff (a tax-office role) call it; on a case or a taxpayer the rule
//     above applies with the staff's binding, and a decision (route.decides) is refused to
//     a key of the tenant that created the case and to the person who created it.
const (
	RulePublic   = "public"
	RuleCreate   = "create"
	RuleCase     = "case"
	RuleTaxpayer = "taxpayer"
	RuleStaff    = "staff"
)

// TaxOffice is the tenant of the tax office's staff: its unbound staff act on every
// tenant's cases.
const TaxOffice = "tax-office"

// ownership is who may act on an object, as the rules judge it.
type ownership struct {
	all    bool   // tax-office staff not bound to a tenant, or the authentication system on accounts
	tenant string // otherwise: the one tenant whose objects the caller acts on
}

// actsFor is whose objects the principal acts on: an integrator its own tenant's; staff of
// the tax office all, or those of the tenant it is bound to; a staff key of a tenant
// (not of the tax office) its own tenant's.
func actsFor(p Principal) ownership {
	if p.Staff() && p.Tenant == TaxOffice {
		if p.BoundTo == "" {
			return ownership{all: true}
		}
		return ownership{tenant: p.BoundTo}
	}
	return ownership{tenant: p.Tenant}
}

// StaffIdentity is the one identity of a person on staff, whatever channel they use:
// "person:<id>" when the key or console account names its person, else its principal.
// Separation of duties (a declaration's appeal goes to another inspector) compares it.
func StaffIdentity(p Principal) string {
	if p.Person != "" {
		return "person:" + p.Person
	}
	return p.ID
}

// errNoObject: the rule found no object the caller may act on (answered 404).
var errNoObject = errors.New("no such object for this caller")

// errDuties: a decision the separation of duties forbids (answered 403).
type errDuties struct{ why string }

func (e errDuties) Error() string { return e.why }

// checkObject applies a route's object rule to a request's object: the case id or the
// INN (either may be empty when the route has no such path value). nil: allowed.
func (s *Server) checkObject(ctx context.Context, p Principal, rule string, decides bool, caseID, inn string) error {
	switch rule {
	case RulePublic, RuleCreate:
		return nil
	case RuleStaff:
		if !p.Staff() {
			return fmt.Errorf("%w: staff only", errNoObject)
		}
	case RuleCase, RuleTaxpayer:
	default:
		return fmt.Errorf("unknown object rule %q", rule) // fail closed
	}
	if caseID != "" {
		if err := s.checkCase(ctx, p, caseID); err != nil {
			return err
		}
		if decides {
			return s.checkDuties(ctx, p, caseID)
		}
		return nil
	}
	if inn != "" {
		return s.checkTaxpayer(ctx, p, inn)
	}
	if rule == RuleCase || rule == RuleTaxpayer {
		return fmt.Errorf("rule %s without its path value", rule) // a table error: fail closed
	}
	return nil
}

// checkCase: the case's owner is a tenant the caller acts for. An account case has no
// owner: it belongs to its taxpayer (checkAccount).
func (s *Server) checkCase(ctx context.Context, p Principal, id string) error {
	o := actsFor(p)
	if o.all {
		return nil
	}
	if subject, ok := strings.CutPrefix(id, procAccount+"-"); ok {
		if !p.Staff() {
			// Only staff open an account by its case id (the console, the task list); the
			// API's account routes take the INN and judge the taxpayer.
			return errNoObject
		}
		return s.checkAccount(ctx, p, o.tenant, id, subject)
	}
	tenant, _, found, err := s.CaseOwner(ctx, id)
	if err != nil {
		return fmt.Errorf("read case owner: %w", err)
	}
	if !found || tenant != o.tenant {
		return errNoObject
	}
	return nil
}

// checkTaxpayer: the taxpayer is related to a tenant the caller acts for; the
// authentication system speaks for every account.
func (s *Server) checkTaxpayer(ctx context.Context, p Principal, inn string) error {
	o := actsFor(p)
	if o.all || p.Role == RoleAuthSystem {
		return nil
	}
	ok, err := s.related(ctx, o.tenant, inn)
	if err != nil {
		return err
	}
	if !ok {
		return errNoObject
	}
	return nil
}

// checkAccount: an account case belongs to a taxpayer, not to a tenant, so the taxpayer
// rule judges it, as on the /v1/accounts/{inn}/… routes: the caller acts on it when its
// tenant is related to the account's taxpayer. A relationship recorded under the
// account's own subject answers at once; otherwise the taxpayer's INN is read from the
// account's start input. A taxpayer that cannot be read is an error (never shown).
func (s *Server) checkAccount(ctx context.Context, p Principal, tenant, id, subject string) error {
	if tenant != "" {
		var rel relation
		found, err := store.Get(ctx, s.DB, s.Owners, map[string]types.AttributeValue{"case_id": store.S(relationKey(tenant, subject))}, &rel)
		if err != nil {
			return fmt.Errorf("read relationship: %w", err)
		}
		if found && rel.Tenant == tenant {
			return nil
		}
	}
	inn, err := s.startINN(ctx, id)
	if err != nil {
		return fmt.Errorf("read the account's taxpayer: %w", err)
	}
	return s.checkTaxpayer(ctx, p, inn)
}

// checkDuties refuses a decision by a key of the tenant that created the case (its
// organisation decides nothing it claimed), and by the principal or person that created it.
func (s *Server) checkDuties(ctx context.Context, p Principal, id string) error {
	tenant, createdBy, found, err := s.CaseOwner(ctx, id)
	if err != nil {
		return fmt.Errorf("read case owner: %w", err)
	}
	if !found {
		return nil // a case without an owner (an account) was created by nobody who decides
	}
	switch {
	case tenant == p.Tenant:
		return errDuties{"a key of the tenant that created this case cannot decide it"}
	case createdBy == p.ID || createdBy == StaffIdentity(p):
		return errDuties{"the principal that created this case cannot decide it"}
	}
	return nil
}

// relationKey is the case_owners item that records a tenant's relationship with a
// taxpayer: keyed by the subject (the keyed hash of the INN), never the INN itself.
func relationKey(tenant, subject string) string { return "taxpayer#" + tenant + "#" + subject }

// relation is a tenant's relationship with a taxpayer, recorded when the tenant starts a
// case for them or records their consent.
type relation struct {
	CaseID    string `json:"case_id"` // relationKey
	Tenant    string `json:"tenant"`
	Because   string `json:"because"` // "case" or "consent"
	CreatedAt int64  `json:"created_at"`
}

// relate records that the tenant has a relationship with the taxpayer (idempotent).
func (s *Server) relate(ctx context.Context, tenant, inn, because string) error {
	rel := relation{CaseID: relationKey(tenant, s.Subject(inn)), Tenant: tenant, Because: because, CreatedAt: time.Now().Unix()}
	if _, err := store.PutNew(ctx, s.DB, s.Owners, "case_id", rel); err != nil {
		return fmt.Errorf("record the tenant's relationship with the taxpayer: %w", err)
	}
	return nil
}

// registryConsent is the consent on record for a taxpayer and the tenant it came through.
type registryConsent struct {
	Consent       bool   `json:"consent"`
	ConsentTenant string `json:"consent_tenant"`
}

// related tells whether the tenant has a relationship with the taxpayer: the consent on
// record given through it, or a relation an operator recorded for it, under any version
// of the subject key. A case the tenant started is not one: starting a case asks for no
// relationship (a refund needs only an INN), so counting it would let any tenant make
// itself related to any taxpayer and then withdraw or take over another tenant's consent.
func (s *Server) related(ctx context.Context, tenant, inn string) (bool, error) {
	if tenant == "" {
		return false, nil
	}
	for _, subject := range s.Subjects.Values(inn) {
		var rel relation
		found, err := store.Get(ctx, s.DB, s.Owners, map[string]types.AttributeValue{"case_id": store.S(relationKey(tenant, subject))}, &rel)
		if err != nil {
			return false, fmt.Errorf("read relationship: %w", err)
		}
		if found && rel.Tenant == tenant && rel.Because != "case" {
			return true, nil
		}
	}
	if s.Taxpayers != "" {
		var c registryConsent
		if _, err := store.Get(ctx, s.DB, s.Taxpayers, map[string]types.AttributeValue{"inn": store.S(inn)}, &c); err != nil {
			return false, fmt.Errorf("read consent: %w", err)
		}
		if c.Consent && c.ConsentTenant == tenant {
			return true, nil
		}
	}
	return false, nil
}

// consentOpen tells whether no tenant's consent stands for the taxpayer (none, withdrawn,
// or one the registry holds from no tenant): then recording one (a signed consent
// document) is how a tenant's relationship with them begins. Consent standing through
// another tenant is that tenant's: no one else overwrites it.
func (s *Server) consentOpen(ctx context.Context, inn string) (bool, error) {
	var c registryConsent
	found, err := store.Get(ctx, s.DB, s.Taxpayers, map[string]types.AttributeValue{"inn": store.S(inn)}, &c)
	if err != nil {
		return false, fmt.Errorf("read consent: %w", err)
	}
	return found && (!c.Consent || c.ConsentTenant == ""), nil
}

// authorize is the chain of one route, built from its table entry only: the scope, then
// the object rule (and, for a decision, the separation of duties).
func (s *Server) authorize(rt route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if !p.Can(rt.scope) {
			writeError(w, http.StatusForbidden, "forbidden", "this API key lacks the scope "+rt.scope, nil)
			return
		}
		inn := r.PathValue("inn")
		err := s.checkObject(r.Context(), p, rt.rule, rt.decides, r.PathValue("id"), inn)
		if errors.Is(err, errNoObject) && rt.opensRelation && inn != "" {
			// Consent where none stands begins a relationship: the handler records it.
			open, oerr := s.consentOpen(r.Context(), inn)
			err = oerr
			if oerr == nil && !open {
				err = errNoObject
			}
		}
		if !s.objectError(w, err) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// objectError answers a refused object check: 404 as for an object that does not exist,
// 403 for a decision the separation of duties forbids, 503 when the check could not be
// made (it never passes a request it could not judge). ok is true when there was none.
func (s *Server) objectError(w http.ResponseWriter, err error) (ok bool) {
	var duties errDuties
	switch {
	case err == nil:
		return true
	case errors.Is(err, errNoObject):
		writeError(w, http.StatusNotFound, "not_found", "no such case", nil)
	case errors.As(err, &duties):
		writeError(w, http.StatusForbidden, "separation_of_duties", duties.why, nil)
	default:
		s.internal(w, "authorize", err)
	}
	return false
}

// routeRule finds a route's table entry by "METHOD /path".
func routeRule(name string) (route, bool) {
	i := slices.IndexFunc(routes, func(rt route) bool { return rt.method+" "+rt.path == name })
	if i < 0 {
		return route{}, false
	}
	return routes[i], true
}

// consoleRule is the scope and object rule of one console route. The scope of a case
// page depends on the case's process (readScopes); decisions name their own scope
// (caseAction.update): the console checks those after reading the form, through the same
// checkObject.
type consoleRule struct {
	pattern string
	scope   string // "" : the route's own check names it (per process), or none
	rule    string
	decides bool
}

// consoleRules is the console's part of the table; TestEveryRouteHasARule walks the mux.
var consoleRules = []consoleRule{
	{"GET /console/static/", "", RulePublic, false},
	{"GET /console", "", RulePublic, false},
	{"GET /console/{$}", "", RulePublic, false},
	{"GET /console/login", "", RulePublic, false},
	{"POST /console/login", "", RulePublic, false},
	{"POST /console/logout", "", RuleStaff, false},
	{"GET /console/tasks", ScopeTasksRead, RuleStaff, false},
	{"GET /console/cases/{id}", "", RuleStaff, false}, // scope: readScopes[process]
	{"GET /console/batches/{id}", ScopeOperate, RuleStaff, false},
	// The failing webhook endpoints of the tenants the staff act for.
	{"GET /console/webhooks", ScopeOperate, RuleStaff, false},
	{"POST /console/cases/{id}", "", RuleStaff, true}, // scope and duties: the action's route's (caseAction.route)
}

// lineRoutes: the route a batch line stands for, by its kind.
var lineRoutes = map[string]string{
	"refund":        "POST /v1/refunds",
	"declaration":   "POST /v1/declarations",
	"account_event": "POST /v1/accounts/{inn}/events",
}

// authorizeLine judges a batch line as the request it stands for, with the uploader's
// principal recorded when the upload URL was issued: the route's scope, then its object
// rule. It returns "" when allowed, else the reason the line's report shows.
func (s *Server) authorizeLine(ctx context.Context, up *Principal, kind, inn string) (string, error) {
	name, ok := lineRoutes[kind]
	if !ok {
		return "kind: no route takes this kind of line", nil
	}
	rt, ok := routeRule(name)
	if !ok {
		return "", fmt.Errorf("route %s is not in the table", name)
	}
	if up == nil {
		return "scope: the file carries no uploader (upload it through POST /v1/batches/upload-url); the line needs " + rt.scope, nil
	}
	if !up.Can(rt.scope) {
		return "scope: the uploader's key lacks the scope " + rt.scope + " (" + name + ")", nil
	}
	if !strings.Contains(rt.path, "{inn}") {
		inn = ""
	}
	err := s.checkObject(ctx, *up, rt.rule, rt.decides, "", inn)
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, errNoObject):
		return "inn: no such taxpayer for this tenant", nil
	}
	return "", err
}

// ownTasks is GET /v1/tasks: staff list only their own role's queue, and of it only the
// cases of the tenants they act for.
func (s *Server) ownTasks(c *call[none]) (reply, error) {
	if role := c.r.URL.Query().Get("role"); role != c.who().Role {
		return reply{}, refuse(http.StatusForbidden, "forbidden", "this API key sees only the task queue of its role ("+c.who().Role+")")
	}
	return s.tasks(c)
}

// RouteRule is one row of the authorization table as tests outside the package read it
// (the integration matrix is generated from it).
type RouteRule struct {
	Method, Path, Scope, Rule string
	Decides                   bool
}

// RouteRules lists the table's rows in route order.
func RouteRules() []RouteRule {
	out := make([]RouteRule, 0, len(routes))
	for _, rt := range routes {
		out = append(out, RouteRule{Method: rt.method, Path: rt.path, Scope: rt.scope, Rule: rt.rule, Decides: rt.decides})
	}
	return out
}

// ConsoleRule is one console row of the authorization table as tests outside the package
// read it. Scope is "" where it depends on the request: a case page needs the read
// scope of the case's process (ConsoleReadScope), a decision the scope of its action
// (ConsoleActionScope).
type ConsoleRule struct {
	Pattern, Scope, Rule string
	Decides              bool
}

// ConsoleRules lists the console's rows in table order.
func ConsoleRules() []ConsoleRule {
	out := make([]ConsoleRule, 0, len(consoleRules))
	for _, r := range consoleRules {
		out = append(out, ConsoleRule{Pattern: r.pattern, Scope: r.scope, Rule: r.rule, Decides: r.decides})
	}
	return out
}

// ConsoleProcesses are the processes whose cases the console opens, in a fixed order.
func ConsoleProcesses() []string { return []string{procRefund, procIdent, procDecl, procAccount} }

// ConsoleReadScope is the scope a case page of the process needs.
func ConsoleReadScope(process string) string { return readScopes[process] }

// ConsoleActions lists the decision actions of a process the console takes.
func ConsoleActions(process string) []string {
	var out []string
	for _, a := range []string{ActApprove, ActReject, ActRetry, ActRequest, ActDecide} {
		if _, ok := ConsoleActionScope(process, a); ok {
			out = append(out, a)
		}
	}
	return out
}

// ConsoleActionScope is the scope a decision form needs (caseAction.update's).
func ConsoleActionScope(process, action string) (string, bool) {
	_, _, _, scope, err := caseAction{Process: process, Action: action}.update(Principal{})
	return scope, err == nil
}

// ConsoleActionDecides says whether a form's action is a decision the separation of
// duties applies to: the API route it stands for says so (a payout retry is not one).
func ConsoleActionDecides(process, action string) bool {
	rt, ok := caseAction{Process: process, Action: action}.route()
	return ok && rt.decides
}
