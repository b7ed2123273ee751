package selfcheck

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestCheck(t *testing.T) {
	var slept []time.Duration
	db := storetest.New(map[string]storetest.Key{"t-idem": {PK: "key"}})
	h := lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "t-idem", Sleep: func(d time.Duration) { slept = append(slept, d) }}.Check))
	ctx := context.Background()

	// slow for the first attempt only
	for i, want := range []string{`{"attempt":1}`, `{"attempt":2}`} {
		out, err := h.Invoke(ctx, []byte(`{"key":"k","slow_attempts":1,"sleep_ms":50}`))
		if err != nil || string(out) != want {
			t.Fatalf("attempt %d: %s %v", i+1, out, err)
		}
	}
	if len(slept) != 1 || slept[0] != 50*time.Millisecond {
		t.Fatalf("slept %v", slept)
	}

	cases := []struct{ in, wantType string }{
		{`{"key":"k2","fail":"Rejected"}`, fnerr.TypeRejected},
		{`{"key":""}`, fnerr.TypeInvalidInput},
		{`{"key":"k3","fail":"Boom"}`, fnerr.TypeInvalidInput},
		{`{"key":"k4","sleep_ms":-1}`, fnerr.TypeInvalidInput},
	}
	for _, c := range cases {
		_, err := h.Invoke(ctx, []byte(c.in))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != c.wantType {
			t.Errorf("%s: got %v, want %s", c.in, err, c.wantType)
		}
	}
}
