package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func newHandler() (lambda.Handler, *storetest.DB) {
	db := storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}})
	return lambda.NewHandler(fn.Handler(Handler{DB: db, Table: "t-audit"}.Append)), db
}

func entry(id string, at time.Time) contract.AuditEntry {
	return contract.AuditEntry{CaseID: "refund-1", EntryID: id, At: at, Actor: "system", Action: "status_changed", From: "received", To: "in_review"}
}

func payload(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppend(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", maxField+1)
	cases := []struct {
		name      string
		mutate    func(*contract.AuditEntry)
		wantField string
	}{
		{"ok", func(*contract.AuditEntry) {}, ""},
		{"no case", func(e *contract.AuditEntry) { e.CaseID = " " }, "case_id"},
		{"no entry id", func(e *contract.AuditEntry) { e.EntryID = "" }, "entry_id"},
		{"no actor", func(e *contract.AuditEntry) { e.Actor = "" }, "actor"},
		{"no action", func(e *contract.AuditEntry) { e.Action = "" }, "action"},
		{"no time", func(e *contract.AuditEntry) { e.At = time.Time{} }, "at"},
		{"reason too long", func(e *contract.AuditEntry) { e.Reason = long }, "reason"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, db := newHandler()
			e := entry("wf/1", at)
			c.mutate(&e)
			out, err := h.Invoke(context.Background(), payload(t, e))
			if c.wantField == "" {
				if err != nil || string(out) != `{"duplicate":false}` || db.Writes != 1 {
					t.Fatalf("out=%s err=%v writes=%d", out, err, db.Writes)
				}
				return
			}
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput || !strings.HasPrefix(ie.Message, c.wantField+":") {
				t.Fatalf("want InvalidInput on %s, got %v", c.wantField, err)
			}
			if db.Writes != 0 {
				t.Fatal("a refused entry changed the store")
			}
		})
	}
}

func TestAppendIsIdempotentByEntryID(t *testing.T) {
	h, db := newHandler()
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i, want := range []string{`{"duplicate":false}`, `{"duplicate":true}`} {
		out, err := h.Invoke(context.Background(), payload(t, entry("wf/5", at)))
		if err != nil || string(out) != want {
			t.Fatalf("call %d: out=%s err=%v", i, out, err)
		}
	}
	if db.Writes != 1 {
		t.Fatalf("writes=%d, want 1", db.Writes)
	}
}

func TestStoreDownIsRetryable(t *testing.T) {
	h, db := newHandler()
	db.Err = errors.New("connection refused")
	_, err := h.Invoke(context.Background(), payload(t, entry("wf/1", time.Now())))
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || fnerr.IsBusiness(ie.Type) {
		t.Fatalf("want a retryable error, got %v", err)
	}
}

func TestJournalIsOrderedByTime(t *testing.T) {
	db := storetest.New(map[string]storetest.Key{"t-audit": {PK: "case_id", SK: "entry_id"}})
	h := Handler{DB: db, Table: "t-audit"}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	// entry ids sort the other way round from their times
	for i, id := range []string{"wf/9", "wf/10", "wf/11"} {
		if _, err := h.Append(context.Background(), entry(id, t0.Add(time.Duration(i)*time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Journal(context.Background(), db, "t-audit", "refund-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].EntryID != "wf/9" || got[2].EntryID != "wf/11" {
		t.Fatalf("got %+v", got)
	}
}
