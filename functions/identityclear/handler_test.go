package identityclear

import (
	"context"
	"testing"

	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestClear(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}})
	if _, err := store.PutNew(context.Background(), db, "tp", "inn", contract.Taxpayer{INN: "500100732259", Confirmed: true, ConfirmedMethod: "bank"}); err != nil {
		t.Fatal(err)
	}
	h := Handler{DB: db, Taxpayers: "tp"}
	for i := 0; i < 2; i++ {
		if _, err := h.Clear(context.Background(), contract.IdentityClearInput{INN: "500100732259", CaseID: "account-x"}); err != nil {
			t.Fatal(err)
		}
	}
	tp, _, _ := taxpayer.Lookup(context.Background(), db, "tp", "500100732259")
	if tp.Confirmed || tp.ConfirmedMethod != "" {
		t.Fatalf("%+v", tp)
	}
	if _, err := h.Clear(context.Background(), contract.IdentityClearInput{INN: "770708389301"}); err == nil {
		t.Fatal("unknown or invalid INN accepted")
	}
}
