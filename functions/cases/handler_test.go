package cases

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

func TestUpdateNeverGoesBackwards(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"c": {PK: "case_id"}})
	h := lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "c"}.Update))
	rec := func(v int, status string) []byte {
		return []byte(`{"case_id":"refund-1","process":"refund","status":"` + status + `","version":` + string(rune('0'+v)) + `,"updated_at":"2026-11-22T10:00:00Z"}`)
	}
	for _, step := range []struct {
		v      int
		status string
		want   string
	}{{1, "received", `{"applied":true}`}, {3, "approved", `{"applied":true}`}, {2, "in_review", `{"applied":false}`}, {3, "approved", `{"applied":false}`}} {
		out, err := h.Invoke(context.Background(), rec(step.v, step.status))
		if err != nil || string(out) != step.want {
			t.Fatalf("v%d: %s %v", step.v, out, err)
		}
	}
	got, found, err := Get(context.Background(), db, "c", "refund-1")
	if err != nil || !found || got.Status != "approved" || got.Version != 3 || !got.UpdatedAt.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("got %+v %v", got, err)
	}
	_, err = h.Invoke(context.Background(), []byte(`{"case_id":"refund-1","status":"x","version":0,"updated_at":"2026-11-22T10:00:00Z"}`))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput {
		t.Fatalf("want InvalidInput, got %v", err)
	}
}
