package taxpayer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

func TestCheck(t *testing.T) {
	bank := &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	cases := []struct {
		name     string
		tp       *contract.Taxpayer
		in       string
		want     contract.TaxpayerCheckResult
		wantType string
	}{
		{"eligible", &contract.Taxpayer{INN: inn, AccountState: "active", Confirmed: true, INNLinked: true, Bank: bank}, inn,
			contract.TaxpayerCheckResult{Eligible: true, BankState: "verified", AccountLast4: "****5982", PayeeRef: PayeeRef(*bank)}, ""},
		{"pending bank", &contract.Taxpayer{INN: inn, AccountState: "active", Confirmed: true, INNLinked: true, Bank: bank, PendingBank: bank}, inn,
			contract.TaxpayerCheckResult{Eligible: true, BankState: "pending", AccountLast4: "****5982", PayeeRef: PayeeRef(*bank)}, ""},
		{"blocked", &contract.Taxpayer{INN: inn, AccountState: "blocked", Confirmed: true, INNLinked: true}, inn,
			contract.TaxpayerCheckResult{Eligible: false, Reason: "the account is not active (blocked or closed)", BankState: "none"}, ""},
		{"not confirmed", &contract.Taxpayer{INN: inn, AccountState: "active", INNLinked: true}, inn,
			contract.TaxpayerCheckResult{Eligible: false, Reason: "the profile is not confirmed: confirm the account first", BankState: "none"}, ""},
		{"inn not linked", &contract.Taxpayer{INN: inn, AccountState: "active", Confirmed: true}, inn,
			contract.TaxpayerCheckResult{Eligible: false, Reason: "the INN is not linked to the account", BankState: "none"}, ""},
		{"unknown", nil, inn, contract.TaxpayerCheckResult{}, fnerr.TypeNotFound},
		{"bad inn", nil, "500100732258", contract.TaxpayerCheckResult{}, fnerr.TypeInvalidInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := storetest.New(map[string]storetest.Key{"t": {PK: "inn"}})
			if c.tp != nil {
				if _, err := store.PutNew(context.Background(), db, "t", "inn", c.tp); err != nil {
					t.Fatal(err)
				}
			}
			h := lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "t"}.Check))
			out, err := h.Invoke(context.Background(), []byte(`{"inn":"`+c.in+`"}`))
			if c.wantType != "" {
				var ie messages.InvokeResponse_Error
				if !errors.As(err, &ie) || ie.Type != c.wantType {
					t.Fatalf("want %s, got %v", c.wantType, err)
				}
				return
			}
			var got contract.TaxpayerCheckResult
			if err != nil || json.Unmarshal(out, &got) != nil {
				t.Fatalf("got %s %v", out, err)
			}
			if got.INNLinked != c.tp.INNLinked || got.Confirmed != c.tp.Confirmed || got.Consent != c.tp.Consent {
				t.Fatalf("identity flags %+v", got)
			}
			got.INNLinked, got.Confirmed, got.Consent, got.SNILSLinked = false, false, false, false
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestPayeeRefNamesTheAccountWithoutShowingIt(t *testing.T) {
	a := contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}
	b := contract.BankRequisites{BIK: "044525225", Account: "40817810000000012345"}
	first, again := PayeeRef(a), PayeeRef(a) // the same requisites always give the same reference
	if first != again || first == PayeeRef(b) || len(first) != 24 {
		t.Fatalf("%s %s", PayeeRef(a), PayeeRef(b))
	}
	if strings.Contains(PayeeRef(a), "5982") {
		t.Fatal("the reference shows the account")
	}
}
