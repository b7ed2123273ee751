//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// Tax Code art. 78 p.6, art. 88: a refund the desk review confirms is paid. The ledger
// holds the employer's figures (tax charged = tax paid = 156 000 ₽); the declaration
// (salary 1.2M ₽, withheld 156 000 ₽, treatment 100 000 ₽) is filed through the API and
// confirmed by an inspector; the decision writes its reduction of the tax charged with
// its step, and the refund it starts pays 13 000 ₽ (plus interest, if it were late)
// without a second review (13 000 ₽ is above the automatic limit).
func TestDeclarationConfirmedRefundPaidOverHTTP(t *testing.T) {
	ctx := context.Background()
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	ck, _ := keys.Create(ctx, api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite}})
	ik, _ := keys.Create(ctx, api.Principal{ID: "e2e-inspector", Tenant: "tax-office", Role: api.RoleInspector, Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsReview, api.ScopeTasksRead}})
	cabinet, inspector := &apiClient{t, base + "|" + ck}, &apiClient{t, base + "|" + ik}

	// An eligible taxpayer and the employer's figures for 2025, as the seed ledger writes
	// them: the tax withheld charged and paid, month by month.
	inn := domain.CompleteINN12(fmt.Sprintf("67%08d", rand.IntN(100_000_000)))
	bik := "044525225"
	tp := contract.Taxpayer{INN: inn, Name: "СИДОРОВ ПЁТР ИВАНОВИЧ", AccountState: "active", Confirmed: true, INNLinked: true,
		Bank: &contract.BankRequisites{BIK: bik, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rand.Int64N(1e12)), bik)}}
	if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		t.Fatal(err)
	}
	entries := []contract.LedgerEntry{{INN: inn, EntryID: "2025#ndfl#001", Kind: contract.LedgerCharge, Tax: "ndfl", Period: 2025, Amount: 15_600_000,
		Date: time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)}}
	for m := 1; m <= 12; m++ {
		entries = append(entries, contract.LedgerEntry{INN: inn, EntryID: fmt.Sprintf("2025#ndfl#%03d", m+1), Kind: contract.LedgerPayment, Tax: "ndfl",
			Period: 2025, Amount: 1_300_000, Date: time.Date(2025, time.Month(m), 28, 9, 0, 0, 0, time.UTC)})
	}
	for _, e := range entries {
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(overpayment.Table), "entry_id", e); err != nil {
			t.Fatal(err)
		}
	}

	code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, 14_300_000), "Idempotency-Key", uuid.NewString(),
		"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-check-1")
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, out)
	}
	var created struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &created)
	id := created.CaseID
	st := cabinet.waitDeclaration(id, workflows.DeclarationInReview)
	if st.Computed == nil || st.Computed.Refund != 1_300_000 {
		t.Fatalf("computed %+v", st.Computed)
	}
	code, out = inspector.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"чеки подтверждают социальный вычет на лечение"}`))
	if code != http.StatusOK {
		t.Fatalf("decision: %d %s", code, out)
	}
	st = poll(t, id+" to start its refund", func() workflows.DeclarationStatus { return cabinet.declaration(id) },
		func(st workflows.DeclarationStatus) bool { return st.RefundCase != "" })
	if st.Status != workflows.DeclarationDecided || st.ConfirmedRefund != 1_300_000 {
		t.Fatalf("decided: %s, confirmed %d", st.Status, st.ConfirmedRefund)
	}

	// The ledger holds the decision's reduction of the tax charged.
	var all []contract.LedgerEntry
	if err := store.QueryAll(ctx, shared.clients.DynamoDB, shared.cfg.Name(overpayment.Table), "inn", inn, &all); err != nil {
		t.Fatal(err)
	}
	var reductions []contract.LedgerEntry
	for _, e := range all {
		if e.Kind == contract.LedgerReduction {
			reductions = append(reductions, e)
		}
	}
	if len(reductions) != 1 || reductions[0].Amount != 1_300_000 || reductions[0].CaseID != id {
		t.Fatalf("ledger reductions %+v", reductions)
	}

	// The refund: paid, no second review; the treasury holds 13 000 ₽ (plus interest).
	refund := poll(t, st.RefundCase+" to end", func() workflows.RefundStatus {
		v, err := shared.temporal.QueryWorkflow(ctx, st.RefundCase, "", workflows.RefundQueryStatus)
		if err != nil {
			t.Fatalf("query %s: %v", st.RefundCase, err)
		}
		var rs workflows.RefundStatus
		if err := v.Get(&rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}, func(rs workflows.RefundStatus) bool {
		return rs.Status == workflows.RefundPaid || rs.Status == workflows.RefundRejected || rs.Status == workflows.RefundInReview
	})
	if refund.Status != workflows.RefundPaid || refund.Paid != 1_300_000+refund.Interest {
		t.Fatalf("refund %s: %s, paid %d, interest %d: %+v", refund.CaseID, refund.Status, refund.Paid, refund.Interest, refund.History)
	}
	for _, tr := range refund.History {
		if tr.To == workflows.RefundInReview {
			t.Fatalf("the confirmed refund was reviewed again: %+v", refund.History)
		}
	}
	recs := treasuryByCase(t)[st.RefundCase]
	if len(recs) != 1 || recs[0].Principal != 1_300_000 || recs[0].Amount != 1_300_000+recs[0].Interest {
		t.Fatalf("treasury for %s: %+v", st.RefundCase, recs)
	}
	t.Logf("declaration %s confirmed 13 000 ₽; refund %s paid %d kopecks (interest %d) to the treasury, transfer %s",
		id, st.RefundCase, recs[0].Amount, recs[0].Interest, recs[0].TransferID)
}
