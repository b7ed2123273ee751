package payout

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

func setup(t *testing.T, tp contract.Taxpayer) (lambda.Handler, *storetest.DB) {
	db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}, "tr": {PK: "payout_key"}})
	if _, err := store.PutNew(context.Background(), db, "tp", "inn", tp); err != nil {
		t.Fatal(err)
	}
	tr := DynamoTreasury{DB: db, Table: "tr", MaxTransfer: 1_000_000, Now: func() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }}
	return lambda.NewHandler(fn.Handler(Handler{DB: db, Taxpayers: "tp", Treasury: tr}.Pay)), db
}

var bank = &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}

func TestPayExactlyOnce(t *testing.T) {
	h, db := setup(t, contract.Taxpayer{INN: inn, AccountState: "active", Bank: bank})
	in := `{"payout_key":"refund-1","case_id":"refund-1","inn":"` + inn + `","amount_kopecks":50000}`
	var first, second contract.PayoutResult
	out, err := h.Invoke(context.Background(), []byte(in))
	if err != nil || json.Unmarshal(out, &first) != nil || first.Duplicate || first.AccountLast4 != "****5982" {
		t.Fatalf("first: %s %v", out, err)
	}
	out, err = h.Invoke(context.Background(), []byte(in))
	if err != nil || json.Unmarshal(out, &second) != nil || !second.Duplicate || second.TransferID != first.TransferID {
		t.Fatalf("second: %s %v", out, err)
	}
	writesBefore := db.Writes
	// the same key for another amount is refused, and changes nothing
	_, err = h.Invoke(context.Background(), []byte(`{"payout_key":"refund-1","case_id":"refund-1","inn":"`+inn+`","amount_kopecks":70000}`))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != fnerr.TypeConflict || db.Writes != writesBefore {
		t.Fatalf("want Conflict, got %v", err)
	}
}

func TestPayRefusals(t *testing.T) {
	cases := []struct {
		name     string
		tp       contract.Taxpayer
		in       string
		wantType string
	}{
		{"requisites pending", contract.Taxpayer{INN: inn, Bank: bank, PendingBank: bank}, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":1}`, fnerr.TypeConflict},
		{"no requisites", contract.Taxpayer{INN: inn}, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":1}`, fnerr.TypeConflict},
		{"over treasury limit", contract.Taxpayer{INN: inn, Bank: bank}, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":1000001}`, fnerr.TypeRejected},
		{"zero amount", contract.Taxpayer{INN: inn, Bank: bank}, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":0}`, fnerr.TypeInvalidInput},
		{"no key", contract.Taxpayer{INN: inn, Bank: bank}, `{"inn":"` + inn + `","amount_kopecks":5}`, fnerr.TypeInvalidInput},
		{"unknown taxpayer", contract.Taxpayer{INN: "7707083893"}, `{"payout_key":"k","inn":"` + inn + `","amount_kopecks":5}`, fnerr.TypeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, db := setup(t, c.tp)
			before := db.Writes
			_, err := h.Invoke(context.Background(), []byte(c.in))
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != c.wantType {
				t.Fatalf("want %s, got %v", c.wantType, err)
			}
			if db.Writes != before {
				t.Fatal("a refused payout wrote to the treasury")
			}
		})
	}
}
