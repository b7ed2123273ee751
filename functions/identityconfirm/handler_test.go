package identityconfirm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestConfirmSetsMarkWithTimeAndMethod(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}})
	if _, err := store.PutNew(context.Background(), db, "tp", "inn", contract.Taxpayer{INN: "500100732259", Name: "X"}); err != nil {
		t.Fatal(err)
	}
	h := lambda.NewHandler(fn.Handler(Handler{DB: db, Taxpayers: "tp"}.Confirm))
	in := `{"inn":"500100732259","method":"esignature","case_id":"identity-1","at":"2026-11-22T10:00:00Z"}`
	for i := 0; i < 2; i++ { // a retry writes the same values
		if out, err := h.Invoke(context.Background(), []byte(in)); err != nil || string(out) != `{"confirmed":true}` {
			t.Fatalf("%s %v", out, err)
		}
	}
	tp, _, _ := taxpayer.Lookup(context.Background(), db, "tp", "500100732259")
	if !tp.Confirmed || tp.ConfirmedMethod != "esignature" || !tp.ConfirmedAt.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) || tp.Name != "X" {
		t.Fatalf("%+v", tp)
	}
	for _, bad := range []string{
		`{"inn":"500100732259","method":"telepathy","case_id":"c","at":"2026-11-22T10:00:00Z"}`,
		`{"inn":"7707083893","method":"bank","case_id":"c","at":"2026-11-22T10:00:00Z"}`,
	} {
		_, err := h.Invoke(context.Background(), []byte(bad))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput {
			t.Errorf("%s: %v", bad, err)
		}
	}
	_, err := h.Invoke(context.Background(), []byte(`{"inn":"770708389301","method":"bank","case_id":"c","at":"2026-11-22T10:00:00Z"}`))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || (ie.Type != fnerr.TypeNotFound && ie.Type != fnerr.TypeInvalidInput) {
		t.Errorf("unknown taxpayer: %v", err)
	}
}
