package api

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/taxflow/taxflow/internal/tasks"
)

// Roles of API keys. Integrators (tenants' systems) see their own cases only; staff of
// the tax office (reviewer, inspector, specialist, operator) work on every tenant's
// cases — or on one tenant's, when their key or account is bound to it — but only
// through the scopes and the task queue of their role (authz.go).
const (
	RoleIntegrator = "integrator"
	RoleAuthSystem = "auth-system" // the cabinet's authentication system: login events
	RoleReviewer   = "reviewer"
	RoleInspector  = "inspector"
	RoleSpecialist = "specialist"
	RoleOperator   = "operator"
)

// RoleScopes is what each role may hold; a key holds its role's scopes unless its creator
// names fewer.
var RoleScopes = map[string][]string{
	RoleIntegrator: {ScopeRefundsRead, ScopeRefundsWrite, ScopeIdentityRead, ScopeIdentityWrite, ScopeConsent,
		ScopeAccountRead, ScopeAccountUnblock, ScopeDeclarationsRead, ScopeDeclarationsWrite, ScopeBatchesRead, ScopeBatchesWrite, ScopeEventsRead,
		ScopeWebhooksRead, ScopeWebhooksWrite},
	RoleAuthSystem: {ScopeAccountEvents, ScopeAccountRead, ScopeAccountUnblock},
	RoleReviewer:   {ScopeRefundsRead, ScopeRefundsDecide, ScopeIdentityRead, ScopeIdentityReview, ScopeTasksRead},
	RoleInspector:  {ScopeDeclarationsRead, ScopeDeclarationsReview, ScopeTasksRead},
	RoleSpecialist: {ScopeAccountRead, ScopeAccountSpecialist, ScopeTasksRead},
	RoleOperator:   {ScopeRefundsRead, ScopeOperate, ScopeIdentityRead, ScopeTasksRead, ScopeRequisites},
}

// Staff tells whether the principal works for the tax office (sees every tenant's cases).
func (p Principal) Staff() bool {
	switch p.Role {
	case RoleReviewer, RoleInspector, RoleSpecialist, RoleOperator:
		return true
	}
	return false
}

var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidatePrincipal checks a key's principal before it is stored: a tenant name, a known
// role, scopes within the role (its scopes when none are named), an id (tenant/role by
// default).
func ValidatePrincipal(p Principal) (Principal, error) {
	if !tenantRE.MatchString(p.Tenant) {
		return p, fmt.Errorf("tenant %q: want 2-63 lower-case letters, digits and '-'", p.Tenant)
	}
	allowed, ok := RoleScopes[p.Role]
	if !ok {
		roles := make([]string, 0, len(RoleScopes))
		for r := range RoleScopes {
			roles = append(roles, r)
		}
		slices.Sort(roles)
		return p, fmt.Errorf("role %q: want one of %s", p.Role, strings.Join(roles, ", "))
	}
	if len(p.Scopes) == 0 {
		p.Scopes = slices.Clone(allowed)
	}
	for _, s := range p.Scopes {
		if !slices.Contains(allowed, s) {
			return p, fmt.Errorf("scope %q is not one of role %s: %s", s, p.Role, strings.Join(allowed, ", "))
		}
	}
	staff := p.Staff()
	switch {
	case staff && p.Tenant != TaxOffice:
		// A tenant's own key never decides its tenant's cases: staff keys are the tax
		// office's, bound to a tenant when they should act on its cases only.
		return p, fmt.Errorf("role %s: staff keys belong to tenant %s (bind one to a tenant with bound_to)", p.Role, TaxOffice)
	case !staff && p.Tenant == TaxOffice && p.Role != RoleAuthSystem:
		return p, fmt.Errorf("tenant %s: only staff roles and the authentication system", TaxOffice)
	case p.BoundTo != "" && (!staff || !tenantRE.MatchString(p.BoundTo) || p.BoundTo == TaxOffice):
		return p, fmt.Errorf("bound_to %q: a tenant name, for a staff key only", p.BoundTo)
	case p.Person != "" && !personRE.MatchString(p.Person):
		return p, fmt.Errorf("person %q: want 2-63 lower-case letters, digits, '.', '_' and '-'", p.Person)
	}
	if p.ID == "" {
		p.ID = p.Tenant + "/" + p.Role
		if p.Person != "" {
			p.ID += "/" + p.Person
		}
	}
	if len(p.ID) > 100 {
		return p, fmt.Errorf("principal: at most 100 characters")
	}
	return p, nil
}

// Tables of tenancy: who owns a case, and the API's own short-lived records (challenge
// nonces, attempt counters; the Idempotency-Key records of creates are gone: a create's
// case is its record, create.go).
const (
	OwnersTable      = "case_owners"
	IdempotencyTable = "api_idempotency"
	// IdempotencyTTL is how long a webhook registration's answer is replayed (Stripe keeps
	// 24 h); a create's key names its case for as long as the case lives.
	IdempotencyTTL = 24 * time.Hour
)

// caseOwner is who created a case; reads of the case by other tenants answer 404.
type caseOwner struct {
	CaseID    string `json:"case_id"`
	Tenant    string `json:"tenant"`
	CreatedBy string `json:"created_by"`
	KeyID     string `json:"key_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// CaseOwner returns the tenant and principal that created a case. A refund started by a
// declaration belongs to the declaration's owner. The rule is tasks.CaseOwner's, which
// the record-transition function also reads to put a case in its tenant's task list.
//
// A case made by a create has its owner row from its first step on (the record-transition
// function writes it); before it, the owner is the one the case carries in its memo
// (ownerFromCase): a read right after the 201 finds its case, and another tenant's read is
// 404 all the same.
func (s *Server) CaseOwner(ctx context.Context, id string) (tenant, createdBy string, found bool, err error) {
	tenant, createdBy, found, err = tasks.CaseOwner(ctx, s.DB, s.Owners, id)
	if err != nil || found {
		return tenant, createdBy, found, err
	}
	return s.ownerFromCase(ctx, id)
}
