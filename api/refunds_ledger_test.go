package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// ledgerServer has a registry and a ledger (one taxpayer who paid in 2025) and no
// Temporal: a request that got as far as starting a case would panic.
func ledgerServer(t *testing.T) (http.Handler, *storetest.DB) {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}, "ledger": {PK: "inn", SK: "entry_id"},
		OwnersTable: {PK: "case_id"}, IdempotencyTable: {PK: "key"}})
	ctx := context.Background()
	if _, err := store.PutNew(ctx, db, "taxpayers", "inn", contract.Taxpayer{INN: "500100732259", AccountState: "active"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNew(ctx, db, "taxpayers", "inn", contract.Taxpayer{INN: "7707083893"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNew(ctx, db, "ledger", "entry_id", contract.LedgerEntry{INN: "500100732259", EntryID: "2025#ndfl#1", Kind: "payment",
		Tax: "ndfl", Period: 2025, Amount: 100}); err != nil {
		t.Fatal(err)
	}
	keys := &MemoryKeys{}
	keys.Add("integrator-key", Principal{ID: "cabinet", Tenant: "alpha", Role: RoleIntegrator, Scopes: []string{ScopeRefundsRead, ScopeRefundsWrite}})
	keys.Add("operator-key", Principal{ID: "operator", Tenant: "tax-office", Role: RoleOperator, Scopes: []string{ScopeOperate}})
	keys.Add("backoffice-key", Principal{ID: "back-office", Tenant: "tax-office", Role: RoleOperator, Scopes: []string{ScopeRequisites}})
	s := &Server{Keys: keys, Log: zerolog.Nop(), Policy: workflows.DefaultRefundPolicy(), DB: db, Taxpayers: "taxpayers", Ledger: "ledger",
		Owners: OwnersTable, Idempotency: IdempotencyTable}
	// the case the free-text test addresses belongs to the integrator's tenant
	if _, err := store.PutNew(ctx, db, OwnersTable, "case_id", caseOwner{CaseID: "refund-0c6f6f9e-0000-4000-8000-000000000001", Tenant: "alpha", CreatedBy: "cabinet"}); err != nil {
		t.Fatal(err)
	}
	return s.Handler(), db
}

// Bad input is a 4xx naming the field, before anything is reserved or started.
func TestCreateRefundBadInputNamesTheField(t *testing.T) {
	h, db := ledgerServer(t)
	// business records: the idempotency wrapper may note a refused key (marked failed,
	// never replayed), but no registry or ledger item changes and nothing starts (the
	// server has no Temporal client: a start would panic)
	records := func() string {
		var all []string
		for _, table := range []string{"taxpayers", "ledger"} {
			var items []map[string]any
			if err := store.UnmarshalList(db.Items(table), &items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				b, _ := json.Marshal(it) // map keys sorted
				all = append(all, table+" "+string(b))
			}
		}
		slices.Sort(all)
		return strings.Join(all, "\n")
	}
	before := records()
	nextYear := time.Now().In(time.FixedZone("MSK", 3*3600)).Year() + 1
	cases := []struct {
		name, body string
		want       int
		field      string
	}{
		{"negative", `{"inn":"500100732259","period":2025,"amount_kopecks":-100,"reason":"overpaid"}`, 400, "amount_kopecks"},
		{"zero", `{"inn":"500100732259","period":2025,"amount_kopecks":0,"reason":"overpaid"}`, 400, "amount_kopecks"},
		{"fractional kopecks", `{"inn":"500100732259","period":2025,"amount_kopecks":1.5,"reason":"overpaid"}`, 400, "amount_kopecks"},
		{"exponent", `{"inn":"500100732259","period":2025,"amount_kopecks":1e3,"reason":"overpaid"}`, 400, "amount_kopecks"},
		{"too large", `{"inn":"500100732259","period":2025,"amount_kopecks":1000000000001,"reason":"overpaid"}`, 400, "amount_kopecks"},
		{"future period", `{"inn":"500100732259","period":` + strconv.Itoa(nextYear) + `,"amount_kopecks":100,"reason":"overpaid"}`, 400, "period"},
		{"long reason", `{"inn":"500100732259","period":2025,"amount_kopecks":100,"reason":"` + strings.Repeat("я", 501) + `"}`, 400, "reason"},
		{"unknown taxpayer", `{"inn":"772936354469","period":2025,"amount_kopecks":100,"reason":"overpaid"}`, 422, "inn"},
		{"period without payments (another taxpayer's)", `{"inn":"500100732259","period":2024,"amount_kopecks":100,"reason":"overpaid"}`, 422, "period"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := do(h, "POST", "/v1/refunds", "integrator-key", c.body, "Idempotency-Key", "k-"+c.name)
			if rec.Code != c.want {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			var fields []string
			for _, f := range errorOf(t, rec).Fields {
				fields = append(fields, f.Field)
			}
			if !slices.Contains(fields, c.field) {
				t.Fatalf("fields %v, want %s: %s", fields, c.field, rec.Body)
			}
		})
	}
	if records() != before {
		t.Fatal("a refused claim wrote something")
	}
}

// The last day of a year in Moscow is already the next year's first day there.
func TestPeriodIsJudgedInMoscowTime(t *testing.T) {
	req := CreateRefundRequest{INN: "500100732259", Period: 2027, Amount: 100, Reason: "x"}
	utcEve := time.Date(2026, 12, 31, 22, 0, 0, 0, time.UTC) // 01:00 on 1 January 2027 in Moscow
	if errs := req.Validate(utcEve); len(errs) != 0 {
		t.Fatalf("2027 refused on 1 January 2027 in Moscow: %v", errs)
	}
	if errs := req.Validate(utcEve.Add(-2 * time.Hour)); len(errs) != 1 || errs[0].Field != "period" {
		t.Fatalf("2027 accepted on 31 December 2026 in Moscow: %v", errs)
	}
}

func TestFreeTextIsLimitedAtTheAPI(t *testing.T) {
	h, _ := ledgerServer(t)
	long := `{"reason":"` + strings.Repeat("я", workflows.MaxReasonChars+1) + `"}`
	id := "/v1/refunds/refund-0c6f6f9e-0000-4000-8000-000000000001"
	for _, c := range []struct{ path, key, body string }{
		{id + "/withdraw", "integrator-key", long},
		{id + "/retry-payout", "operator-key", long},
		{"/v1/taxpayers/500100732259/requisites/verification", "backoffice-key", `{"verified":false,"reason":"` + strings.Repeat("я", 501) + `"}`},
	} {
		rec := do(h, "POST", c.path, c.key, c.body)
		if rec.Code != http.StatusBadRequest || len(errorOf(t, rec).Fields) != 1 || errorOf(t, rec).Fields[0].Field != "reason" {
			t.Errorf("%s: %d %s", c.path, rec.Code, rec.Body)
		}
	}
}

func TestRequisitesVerdictRefusals(t *testing.T) {
	h, db := ledgerServer(t)
	path := "/v1/taxpayers/500100732259/requisites/verification"
	cases := []struct {
		name, key, body string
		want            int
	}{
		{"no scope", "integrator-key", `{"verified":true}`, 403},
		{"no verdict", "backoffice-key", `{}`, 400},
		{"rejection without reason", "backoffice-key", `{"verified":false}`, 400},
		{"nothing pending", "backoffice-key", `{"verified":true}`, 409},
	}
	for _, c := range cases {
		if rec := do(h, "POST", path, c.key, c.body); rec.Code != c.want {
			t.Errorf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
	}
	if rec := do(h, "POST", "/v1/taxpayers/772936354469/requisites/verification", "backoffice-key", `{"verified":true}`); rec.Code != 404 {
		t.Errorf("unknown taxpayer: %d", rec.Code)
	}
	// a pending change to a legal entity's account fails the bank check: 422, nothing changes
	bik := "044525225"
	db.Replace("taxpayers", "inn", contract.Taxpayer{INN: "500100732259", PendingBank: &contract.BankRequisites{BIK: bik,
		Account: domain.CompleteAccount("40702810000000012345", bik)}})
	writes := db.Writes
	rec := do(h, "POST", path, "backoffice-key", `{"verified":true}`)
	if rec.Code != 422 || errorOf(t, rec).Fields[0].Field != "pending_bank.account" || db.Writes != writes {
		t.Fatalf("legal entity's account: %d %s", rec.Code, rec.Body)
	}
}

func TestCheckPayoutAccount(t *testing.T) {
	bik := "044525225"
	for account, ok := range map[string]bool{
		domain.CompleteAccount("40817810000000012345", bik): true,
		domain.CompleteAccount("40820810000000012345", bik): true,
		domain.CompleteAccount("42305810000000012345", bik): true,
		domain.CompleteAccount("40817840000000012345", bik): false, // dollars
		domain.CompleteAccount("40702810000000012345", bik): false, // a company's
		domain.CompleteAccount("42309810000000012345", bik): false,
		"40817810000000012345":                              false, // control key
	} {
		errs := CheckPayoutAccount("", contract.BankRequisites{BIK: bik, Account: account})
		if (len(errs) == 0) != ok {
			t.Errorf("%s: %v", account, errs)
		}
	}
}
