package notify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestSend(t *testing.T) {
	ok := `{"notification_id":"n1","case_id":"refund-1","inn":"500100732259","recipient":"taxpayer","template":"refund.paid","at":"2026-11-22T10:00:00Z"}`
	cases := []struct{ in, want, field string }{
		{ok, `{"duplicate":false}`, ""},
		{strings.Replace(ok, `"n1"`, `""`, 1), "", "notification_id"},
		{strings.Replace(ok, `"taxpayer"`, `"everyone"`, 1), "", "recipient"},
		{strings.Replace(ok, `"refund.paid"`, `""`, 1), "", "template"},
		{strings.Replace(ok, `"500100732259"`, `""`, 1), "", "inn"},
		{strings.Replace(ok, `"2026-11-22T10:00:00Z"`, `"0001-01-01T00:00:00Z"`, 1), "", "at"},
	}
	for _, c := range cases {
		db := storetest.New(map[string]storetest.Key{"o": {PK: "notification_id"}})
		h := lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "o"}.Send))
		out, err := h.Invoke(context.Background(), []byte(c.in))
		if c.field == "" {
			if err != nil || string(out) != c.want {
				t.Fatalf("out=%s err=%v", out, err)
			}
			out, _ = h.Invoke(context.Background(), []byte(c.in))
			if string(out) != `{"duplicate":true}` || db.Writes != 1 {
				t.Fatalf("second send: %s, writes %d", out, db.Writes)
			}
			continue
		}
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput || !strings.HasPrefix(ie.Message, c.field) || db.Writes != 0 {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
}
