package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// Attacks of the review of issue 25's implementation: each test fails while the hole is open.

// listTemporal records started cases with their subject and lists them back by subject,
// as visibility does (the taxpayer rule's "a case of the tenant for this taxpayer").
type listTemporal struct {
	client.Client
	mu      sync.Mutex
	started map[string]string // workflow id → subject
	signals int
}

func (f *listTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	subject, _ := o.TypedSearchAttributes.GetKeyword(workflows.SearchSubject)
	f.started[o.ID] = subject
	return nil, nil
}

func (f *listTemporal) ListWorkflow(_ context.Context, in *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &workflowservice.ListWorkflowExecutionsResponse{}
	for id, subject := range f.started {
		if subject != "" && strings.Contains(in.Query, subject) {
			out.Executions = append(out.Executions, &workflowpb.WorkflowExecutionInfo{Execution: &commonpb.WorkflowExecution{WorkflowId: id}})
		}
	}
	return out, nil
}

// QueryWorkflow: no account workflow yet (the lock route answers "never locked").
func (f *listTemporal) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return nil, serviceerror.NewNotFound("no such workflow")
}

func (f *listTemporal) SignalWorkflow(context.Context, string, string, string, any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals++
	return nil
}

// Tenant beta has no relationship with alpha's customer innA, so it cannot withdraw its
// consent (TestINNRoutesRefuseAnotherTenantsTaxpayer). But the relationship is "a case
// of the tenant for this taxpayer", and a create (RuleCreate) checks no relationship: one
// identity verification by the documents method — personal data only, no proof, no
// consent of beta's (createIdentity accepts consent given through any tenant) — makes
// beta "related", and the next DELETE withdraws alpha's consent (alpha's verifications
// pause, their documents are destroyed after ConsentWait). The same works with a refund
// claim (any taxpayer with a payment in the period) or a declaration (any INN).
func TestAttackCreateMakesAnyTaxpayerRelated(t *testing.T) {
	s, h, db := authzServer(t)
	tmp := &listTemporal{started: map[string]string{}}
	s.Temporal = tmp
	// innB's registry record as a verification reads it: consent through beta.
	db.Replace("taxpayers", "inn", struct {
		contract.Taxpayer
		ConsentTenant string `json:"consent_tenant"`
	}{contract.Taxpayer{INN: innA, SNILS: victimSNILS, Consent: true, INNLinked: true, SNILSLinked: true, AccountState: "active"}, "alpha"})
	if rec := do(h, "DELETE", "/v1/taxpayers/"+innA+"/consent", "beta-integrator", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("baseline: beta withdraws alpha's consent: %d %s", rec.Code, rec.Body)
	}
	person := victimPerson(victimSNILS)
	rec := do(h, "POST", "/v1/identity-verifications", "beta-integrator", mustJSON(map[string]any{"method": "documents", "person": person}),
		"Idempotency-Key", uuid.NewString())
	t.Logf("beta starts a verification of alpha's customer: %d %s", rec.Code, rec.Body)
	rec = do(h, "DELETE", "/v1/taxpayers/"+innA+"/consent", "beta-integrator", "")
	if rec.Code != http.StatusNotFound {
		t.Errorf("after one case of its own, beta withdraws the consent alpha recorded: %d %s", rec.Code, rec.Body)
	}
	var tp struct {
		Consent       bool   `json:"consent"`
		ConsentTenant string `json:"consent_tenant"`
	}
	if _, err := store.Get(context.Background(), db, "taxpayers", map[string]types.AttributeValue{"inn": store.S(innA)}, &tp); err != nil {
		t.Fatal(err)
	}
	if !tp.Consent {
		t.Errorf("alpha's customer's consent is withdrawn by beta (%+v)", tp)
	}
	if rec := do(h, "GET", "/v1/accounts/"+innA+"/lock", "beta-integrator", ""); rec.Code != http.StatusNotFound {
		t.Errorf("beta reads the lock state of alpha's customer: %d", rec.Code)
	}
	// With the consent withdrawn no consent stands, so recording one is open to anyone
	// (opensRelation): beta records a made-up one and the taxpayer is now beta's.
	if rec := do(h, "POST", "/v1/taxpayers/"+innA+"/consent", "beta-integrator", `{"channel":"cabinet","document_id":"made-up"}`); rec.Code == http.StatusOK {
		t.Errorf("beta takes alpha's customer over with a made-up consent: %d %s", rec.Code, rec.Body)
	}
}

// A console account made before accounts named their person (no person attribute in the
// table: nothing sets one later) signs in as "staff:<login>"; the same inspector's API
// key must name its person (apikey create --person), and `staff create` names new
// accounts' person after their login. So the inspector who decided a declaration in the
// console is, through their key with --person <login>, another inspector to the
// workflow, which then lets them decide its appeal.
func TestAttackLegacyConsoleAccountAndKeyAreTwoInspectors(t *testing.T) {
	legacy := StaffAccount{Login: "ivanova", Role: RoleInspector} // as stored before the person field
	key := Principal{ID: "tax-office/inspector/ivanova", Tenant: TaxOffice, Role: RoleInspector, Person: "ivanova", Scopes: RoleScopes[RoleInspector]}
	decided := StaffIdentity(legacy.Principal())
	appeal := StaffIdentity(key)
	if decided != appeal {
		t.Errorf("one inspector is two for the appeal: decided as %q (console), decides the appeal as %q (key)", decided, appeal)
	}
}

// disableRacesSignIn runs `staff disable` at the moment a sign-in that has already read
// the (still enabled) account writes its session: the interleaving of an operator
// disabling a member of staff while they sign in.
type disableRacesSignIn struct {
	*storetest.DB
	st   *StaffStore
	once sync.Once
}

func (d *disableRacesSignIn) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if aws.ToString(in.TableName) == d.st.Sessions {
		d.once.Do(func() {
			if _, err := d.st.Disable(ctx, "anna"); err != nil {
				panic(err)
			}
		})
	}
	return d.DB.PutItem(ctx, in, o...)
}

// `staff disable` ends the sessions that exist when it scans; a sign-in in flight writes
// its session after the scan, and nothing on a request reads the account again (the
// session carries login, role and tenant), so the disabled account works for a whole
// SessionTTL.
func TestAttackDisabledAccountKeepsASessionOpenedDuringDisable(t *testing.T) {
	st, _, db := newStaffStore(t)
	ctx := context.Background()
	if _, err := st.Create(ctx, "anna", RoleReviewer, "", testPassword); err != nil {
		t.Fatal(err)
	}
	race := &disableRacesSignIn{DB: db, st: st}
	st.DB = race
	cookie, _, err := st.SignIn(ctx, "anna", testPassword)
	if err != nil {
		t.Logf("sign-in refused: %v", err)
		return
	}
	if _, ok, _ := st.Session(ctx, cookie); ok {
		t.Errorf("a session of a disabled account is live after `staff disable` returned")
	}
}
