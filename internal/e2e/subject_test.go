//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/subject"
	"github.com/taxflow/taxflow/workflows"
)

// subjectTaxpayer registers one taxpayer eligible for every process: a refundable
// overpayment and bank requisites, consent, SNILS and passport, a bank identification.
func subjectTaxpayer(t *testing.T) contract.PersonData {
	t.Helper()
	ctx := context.Background()
	inn := domain.CompleteINN12(fmt.Sprintf("52%08d", rand.IntN(100_000_000)))
	nine := fmt.Sprintf("%09d", 10_000_000+rand.IntN(900_000_000))
	snils := nine + domain.SNILSControl(nine)
	bik := "044525225"
	tp := contract.Taxpayer{INN: inn, Name: "ФЁДОРОВА АННА СЕРГЕЕВНА", AccountState: "active", Confirmed: true, INNLinked: true,
		SNILS: snils, SNILSLinked: true, Surname: "ФЁДОРОВА", FirstName: "АННА", Patronymic: "СЕРГЕЕВНА", BirthDate: "1988-09-30",
		Consent: true, BankIdentified: true,
		Passport: &contract.PassportRecord{Series: "4512", Number: fmt.Sprintf("%06d", rand.IntN(1_000_000)), IssuedOn: "2008-10-15"},
		Bank:     &contract.BankRequisites{BIK: bik, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rand.Int64N(1e12)), bik)}}
	if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		t.Fatal(err)
	}
	for _, e := range []contract.LedgerEntry{
		{INN: inn, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 5_000_000},
		{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 8_000_000},
	} {
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(overpayment.Table), "entry_id", e); err != nil {
			t.Fatal(err)
		}
	}
	return contract.PersonData{INN: inn, SNILS: domain.FormatSNILS(snils), Surname: "Федорова", FirstName: "Анна", Patronymic: "Сергеевна",
		BirthDate: "30.09.1988", PassportSeries: tp.Passport.Series, PassportNumber: tp.Passport.Number}
}

// subjectClients serves the API with s and returns a cabinet, an inspector and an
// authentication system, each with its own key.
func subjectClients(t *testing.T, s *api.Server) (cabinet, inspector, auth *apiClient) {
	t.Helper()
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	create := func(p api.Principal) *apiClient {
		k, err := keys.Create(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	cabinet = create(api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite, api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite}})
	inspector = create(api.Principal{ID: "e2e-inspector", Tenant: "tax-office", Role: api.RoleInspector,
		Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsReview}})
	auth = create(api.Principal{ID: "e2e-auth", Tenant: "e2e-auth", Role: api.RoleAuthSystem,
		Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead, api.ScopeAccountUnblock}})
	return cabinet, inspector, auth
}

// casesOf lists the workflow ids whose TaxflowSubject the query matches, each with its
// subject, polling until want are all there (visibility is eventually consistent).
func casesOf(t *testing.T, query string, want []string) map[string]string {
	t.Helper()
	return poll(t, "every case of the taxpayer in visibility", func() map[string]string {
		found := map[string]string{}
		var token []byte
		for {
			page, err := shared.temporal.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
			if err != nil {
				t.Fatalf("list %q: %v", query, err)
			}
			for _, ex := range page.Executions {
				var subj string
				if p := ex.GetSearchAttributes().GetIndexedFields()["TaxflowSubject"]; p != nil {
					_ = json.Unmarshal(p.GetData(), &subj)
				}
				found[ex.GetExecution().GetWorkflowId()] = subj
			}
			if token = page.NextPageToken; len(token) == 0 {
				return found
			}
		}
	}, func(found map[string]string) bool {
		for _, id := range want {
			if _, ok := found[id]; !ok {
				return false
			}
		}
		return true
	})
}

func sortedIDs(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// A refund, a declaration and an account case started over the API for one taxpayer,
// with their children (the refund the declaration's decision starts, the identity
// re-verification the account starts): a visibility query on TaxflowSubject finds every
// one, each carrying the same subject, which holds no INN. Then the subject key is
// rotated: the account keeps its id, a new case gets the new version, and the query
// over both versions finds old and new cases alike.
func TestSubjectFindsEveryCaseOfATaxpayerChildrenIncluded(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	cabinet, inspector, auth := subjectClients(t, s)
	p := subjectTaxpayer(t)
	inn := p.INN

	// A refund.
	code, refundID := cabinet.create(inn, 1_000_000, uuid.NewString())
	if code != http.StatusCreated || refundID == "" {
		t.Fatalf("refund: %d", code)
	}

	// A declaration, decided so that it starts its refund child.
	code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, 14_300_000), "Idempotency-Key", uuid.NewString(),
		"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-subject-1")
	var created struct {
		CaseID string `json:"case_id"`
	}
	if code != http.StatusCreated || json.Unmarshal(out, &created) != nil || created.CaseID == "" {
		t.Fatalf("declaration: %d %s", code, out)
	}
	declID := created.CaseID
	cabinet.waitDeclaration(declID, workflows.DeclarationInReview)
	if code, out := inspector.do("POST", "/v1/declarations/"+declID+"/decision", []byte(`{"decision":"confirmed","grounds":"вычет подтверждён"}`)); code != http.StatusOK {
		t.Fatalf("decision: %d %s", code, out)
	}
	st := poll(t, declID+" to start its refund", func() workflows.DeclarationStatus { return cabinet.declaration(declID) },
		func(st workflows.DeclarationStatus) bool { return st.RefundCase != "" })
	declRefundID := st.RefundCase

	// An account, locked for suspicious activity, and the identity child it starts.
	ev, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: contract.EventSuspicious})
	if code, out := auth.do("POST", "/v1/accounts/"+inn+"/events", ev); code != http.StatusAccepted {
		t.Fatalf("account event: %d %s", code, out)
	}
	poll(t, "the account to await identity", func() workflows.AccountStatus {
		var a workflows.AccountStatus
		_, out := auth.do("GET", "/v1/accounts/"+inn+"/lock", nil)
		_ = json.Unmarshal(out, &a)
		return a
	}, func(a workflows.AccountStatus) bool { return a.Status == workflows.AccountAwaitingIdentity })
	// Video: the child only has to exist here (bank now needs a partner bank's assertion).
	body, _ := json.Marshal(map[string]any{"method": contract.MethodVideo, "person": p})
	code, out = auth.do("POST", "/v1/accounts/"+inn+"/unblock/identity", body)
	var acc workflows.AccountStatus
	if code != http.StatusOK || json.Unmarshal(out, &acc) != nil || acc.IdentityCase == "" {
		t.Fatalf("account identity: %d %s", code, out)
	}
	accountID, subj, err := s.AccountID(context.Background(), inn)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{refundID, declID, declRefundID, accountID, acc.IdentityCase}
	found := casesOf(t, "TaxflowSubject = '"+subj+"'", want)
	if len(found) != len(want) {
		t.Fatalf("the subject finds %v, want exactly %v", sortedIDs(found), want)
	}
	if subj != s.Subject(inn) || strings.Contains(subj, inn) || !strings.HasPrefix(subj, "s1.") {
		t.Fatalf("subject %q: want the current version's, without the INN", subj)
	}

	// Rotate: v2 is current, the stack's v1 is kept for lookups.
	v2 := "v2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	rotated, err := subject.Parse(v2, os.Getenv(subject.VarKey))
	if err != nil {
		t.Fatal(err)
	}
	s2 := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s2.TaskQueue, s2.Subjects = queue, rotated
	cabinet2, _, auth2 := subjectClients(t, s2)
	ev, _ = json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: contract.EventLoginSucceeded})
	if code, out := auth2.do("POST", "/v1/accounts/"+inn+"/events", ev); code != http.StatusAccepted {
		t.Fatalf("account event after the rotation: %d %s", code, out)
	}
	if id, same, err := s2.AccountID(context.Background(), inn); err != nil || id != accountID || same != subj {
		t.Fatalf("after the rotation the account is %s (%s, %v), was %s", id, same, err, accountID)
	}
	if _, err := shared.temporal.DescribeWorkflowExecution(context.Background(), workflows.AccountID(s2.Subject(inn)), ""); !isNotFound(err) {
		t.Fatalf("a second account workflow under the new version: %v", err)
	}
	code, newRefund := cabinet2.create(inn, 500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("refund after the rotation: %d", code)
	}
	all := casesOf(t, rotated.Query(inn), append(want, newRefund))
	if len(all) != len(want)+1 || all[newRefund] != s2.Subject(inn) || !strings.HasPrefix(all[newRefund], "s2.") {
		t.Fatalf("after the rotation the query finds %v", all)
	}
	for _, id := range want {
		if all[id] != subj {
			t.Errorf("%s carries %q, want the subject it started with %q", id, all[id], subj)
		}
	}
}
