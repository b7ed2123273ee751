//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// recordStep is a status change of a case at seq, with its projection and notification.
func recordStep(caseID string, seq int64, from, to string) contract.RecordInput {
	at := time.Now().UTC().Truncate(time.Millisecond)
	return contract.RecordInput{CaseID: caseID, Seq: seq,
		Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "status_changed", From: from, To: to}},
		Case:    &contract.CaseRecord{Process: "refund", Status: to, Label: to, Version: seq, UpdatedAt: at},
		Notifications: []contract.Notification{{Recipient: "supervisor", Template: "refund." + to, At: at,
			Params: map[string]string{"label": to}}},
	}
}

// invokeRecord calls record-transition through the Lambda host (the real binary); it
// returns the result or the function's error type.
func invokeRecord(t *testing.T, in contract.RecordInput) (contract.RecordResult, string) {
	t.Helper()
	payload, _ := json.Marshal(in)
	out, err := shared.clients.Lambda.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String(shared.cfg.Name(contract.FnRecordTransition)), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil {
		var fe struct {
			Type string `json:"errorType"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		return contract.RecordResult{}, fe.Type
	}
	var res contract.RecordResult
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		t.Fatal(err)
	}
	return res, ""
}

// record-transition on DynamoDB Local, through the Lambda host: one transaction per step;
// a retried step is a no-op; a step reusing a seq with other content is KeyReused; a step
// over a stale version is a Conflict; nothing refused leaves a trace.
func TestRecordTransitionOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	id := "refund-" + uuid.NewString()
	if res, typ := invokeRecord(t, recordStep(id, 1, "", "received")); typ != "" || res.Duplicate {
		t.Fatalf("step 1: %+v %s", res, typ)
	}
	if res, typ := invokeRecord(t, recordStep(id, 2, "received", "in_review")); typ != "" || res.Duplicate {
		t.Fatalf("step 2: %+v %s", res, typ)
	}
	// The retry of step 2 (the workflow clock moved on: other times, same decisions).
	retry := recordStep(id, 2, "received", "in_review")
	retry.Entries[0].At = retry.Entries[0].At.Add(time.Second)
	if res, typ := invokeRecord(t, retry); typ != "" || !res.Duplicate || res.Key != id+"/2" {
		t.Fatalf("retry of step 2: %+v %s", res, typ)
	}
	// Step 2 again with other content: the key names another fact.
	if _, typ := invokeRecord(t, recordStep(id, 2, "received", "rejected")); typ != fnerr.TypeKeyReused {
		t.Fatalf("seq 2 reused with other content: %q, want KeyReused", typ)
	}
	// A projection-only step over version 1 while the case is at version 2: stale.
	stale := contract.RecordInput{CaseID: id, Seq: 2, Case: &contract.CaseRecord{Status: "in_review", UpdatedAt: time.Now(), Escalated: true}}
	if _, typ := invokeRecord(t, stale); typ != fnerr.TypeKeyReused {
		t.Fatalf("stale projection at seq 2: %q, want KeyReused (the seq is step 2's)", typ)
	}
	// A step that skips one (version 3 missing) and one over a stale version.
	if _, typ := invokeRecord(t, recordStep(id, 4, "approved", "paid")); typ != fnerr.TypeConflict {
		t.Fatalf("step 4 after step 2: %q, want Conflict", typ)
	}
	if res, typ := invokeRecord(t, recordStep(id, 3, "in_review", "approved")); typ != "" || res.Duplicate {
		t.Fatalf("step 3: %+v %s", res, typ)
	}
	h := transition.Handler{DB: shared.clients.DynamoDB, Journal: shared.cfg.Name(audit.Table), Cases: shared.cfg.Name(cases.Table),
		Outbox: shared.cfg.Name(notify.Table)}
	staleAt2 := contract.RecordInput{CaseID: id, Seq: 3, Case: &contract.CaseRecord{Status: "approved", UpdatedAt: time.Now(), Escalated: true}}
	if _, err := h.Record(ctx, staleAt2); errTypeOf(err) != fnerr.TypeKeyReused {
		t.Fatalf("projection-only seq 3: %v, want KeyReused", err)
	}
	other := "refund-" + uuid.NewString()
	if _, err := h.Record(ctx, recordStep(other, 1, "", "received")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Record(ctx, contract.RecordInput{CaseID: other, Seq: 3, Case: &contract.CaseRecord{Status: "x", UpdatedAt: time.Now()}}); errTypeOf(err) != fnerr.TypeConflict {
		t.Fatalf("step 3 over version 1: %v, want Conflict", err)
	}

	journal, err := audit.Journal(ctx, shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	var tos []string
	for i, e := range journal {
		if e.Seq != int64(i+1) || e.EntryID != contract.RecordKey(id, int64(i+1))+"/1" {
			t.Errorf("entry %d: %+v", i, e)
		}
		tos = append(tos, e.To)
	}
	if len(journal) != 3 || tos[2] != "approved" {
		t.Fatalf("journal %v", tos)
	}
	rec, _, err := cases.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
	if err != nil || rec.Version != 3 || rec.Status != "approved" || rec.Escalated {
		t.Fatalf("projection %+v %v", rec, err)
	}
	for seq := int64(1); seq <= 4; seq++ {
		if has := outboxHas(t, contract.RecordKey(id, seq)+"/1"); has != (seq <= 3) {
			t.Fatalf("notification of step %d in the outbox: %v", seq, has)
		}
	}
	var n contract.Notification
	if found, err := store.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(notify.Table),
		map[string]ddbtypes.AttributeValue{"notification_id": store.S(id + "/2/1")}, &n); err != nil || !found || n.Template != "refund.in_review" || n.State != "pending" {
		t.Fatalf("notification of step 2: %+v %v", n, err)
	}
}

func errTypeOf(err error) string {
	var fe *fnerr.Error
	if errors.As(err, &fe) {
		return fe.Type
	}
	return ""
}
