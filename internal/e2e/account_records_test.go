//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// 3,000 events through one account workflow that continues as new every 1,000: every
// transition is in the journal once (steps 1..N, no gap, each status change following
// the last), the projection is at the last step with the current status, and every
// notification is in the outbox once and delivered once — also when the relay delivers
// some of them again after a crash.
//
// The events run in cycles: two failed logins lock the account, suspicious activity
// asks for identity, incorrect data for a specialist, then login events that change
// nothing; a specialist unblocks (every tenth cycle after refusing once).
func TestAccountRecordAcrossContinueAsNew(t *testing.T) {
	const events, perCycle, continueAfter = 3000, 12, 1000
	ctx := context.Background()
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	s.AccountPolicy.Threshold = 1             // more than one failure in a row locks: two failed logins lock
	s.AccountPolicy.SpecialistAfter = 1 << 30 // locks by failures never need a specialist here
	s.AccountPolicy.ContinueAfter = continueAfter
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	authKey, err := keys.Create(ctx, api.Principal{ID: "e2e-auth", Tenant: "e2e-cabinet", Role: api.RoleAuthSystem, Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})
	if err != nil {
		t.Fatal(err)
	}
	specKey, err := keys.Create(ctx, api.Principal{ID: "e2e-specialist", Tenant: "tax-office", Role: api.RoleSpecialist, Scopes: []string{api.ScopeAccountSpecialist, api.ScopeAccountRead}})
	if err != nil {
		t.Fatal(err)
	}
	auth, specialist := &apiClient{t, base + "|" + authKey}, &apiClient{t, base + "|" + specKey}
	inn := newTaxpayer(t, 0)
	id := workflows.AccountID(s.Subject(inn))

	lock := func() workflows.AccountStatus {
		code, out := auth.do("GET", "/v1/accounts/"+inn+"/lock", nil)
		var st workflows.AccountStatus
		if code != http.StatusOK || json.Unmarshal(out, &st) != nil {
			t.Fatalf("lock: %d %s", code, out)
		}
		return st
	}
	waitFor := func(what string, done func(workflows.AccountStatus) bool) workflows.AccountStatus {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := lock()
			if done(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited for %s; last seen %+v", what, st.AccountState)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	send := func(typ string) {
		body, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: typ})
		if code, out := auth.do("POST", "/v1/accounts/"+inn+"/events", body); code != http.StatusAccepted {
			t.Fatalf("event: %d %s", code, out)
		}
	}
	decide := func(approve bool, reason string) {
		body, _ := json.Marshal(map[string]any{"approve": approve, "reason": reason})
		for attempt := 0; ; attempt++ {
			code, out := specialist.do("POST", "/v1/accounts/"+inn+"/unblock/specialist-decision", body)
			if code == http.StatusOK {
				return
			}
			if attempt == 5 { // an update may meet a run that is continuing as new
				t.Fatalf("decision: %d %s", code, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	start := time.Now()
	sent, transitions, refusals := 0, 0, 0
	for cycle := 0; sent < events; cycle++ {
		plan := []string{contract.EventLoginFailed, contract.EventLoginFailed, contract.EventSuspicious, contract.EventDataIncorrect}
		for len(plan) < perCycle && sent+len(plan) < events {
			plan = append(plan, []string{contract.EventLoginSucceeded, contract.EventLoginFailed}[len(plan)%2])
		}
		if sent+len(plan) > events {
			plan = plan[:events-sent]
		}
		for _, typ := range plan {
			send(typ)
		}
		sent += len(plan)
		if len(plan) < 4 { // the last, short cycle: failed logins only, no lock
			break
		}
		transitions += 3 // auto_unlock_pending, awaiting_identity, awaiting_specialist
		waitFor("cycle "+fmt.Sprint(cycle)+" to reach the specialist", func(st workflows.AccountStatus) bool {
			return st.EventsSeen == sent && st.Status == workflows.AccountAwaitingSpecialist
		})
		if cycle%10 == 9 {
			decide(false, "documents unreadable, send them again")
			refusals++
		}
		decide(true, "data checked")
		transitions++
	}
	final := waitFor("every event applied", func(st workflows.AccountStatus) bool { return st.EventsSeen == events })
	elapsed := time.Since(start)
	if final.Status != workflows.AccountActive {
		t.Fatalf("final status %s", final.Status)
	}
	// Steps: one per transition, one per refusal (journal entry and notification together).
	steps := int64(transitions + refusals)
	if final.JournalSeq != steps {
		t.Fatalf("journal sequence %d, want %d steps (%d transitions, %d refusals)", final.JournalSeq, steps, transitions, refusals)
	}

	// The runs: at least two continue-as-new boundaries; events and history size per run.
	runs := accountRuns(t, id)
	if len(runs) < 3 {
		t.Fatalf("%d runs: want at least two continue-as-new boundaries", len(runs))
	}
	for i, r := range runs {
		t.Logf("run %d: %s, %d history events (%d bytes)", i+1, r.status, r.events, r.bytes)
	}

	// The journal: steps 1..N, each once, every status change following the last.
	journal, err := audit.Journal(ctx, shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(journal)) != steps {
		t.Fatalf("%d journal entries, want %d", len(journal), steps)
	}
	status, changes, refused := workflows.AccountActive, 0, 0
	for i, e := range journal {
		if e.Seq != int64(i+1) || e.EntryID != contract.RecordKey(id, e.Seq)+"/1" {
			t.Fatalf("entry %d is step %d (%s): steps must be 1..%d, once each", i, e.Seq, e.EntryID, steps)
		}
		switch e.Action {
		case "status_changed":
			if e.From != status {
				t.Fatalf("step %d changes %s > %s, but the status was %s: a transition is missing", e.Seq, e.From, e.To, status)
			}
			status = e.To
			changes++
		case "specialist_refused":
			refused++
		default:
			t.Fatalf("step %d: unexpected %s", e.Seq, e.Action)
		}
	}
	if changes != transitions || refused != refusals || status != final.Status {
		t.Fatalf("journal: %d changes ending %s, %d refusals; want %d ending %s, %d", changes, status, refused, transitions, final.Status, refusals)
	}

	// The projection: the last step, the current status.
	rec, found, err := cases.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
	if err != nil || !found || rec.Version != steps || rec.Status != final.Status || rec.Amounts["locks_24h"] != int64(len(final.Locks)) {
		t.Fatalf("projection %+v (found %v, %v); want version %d status %s", rec, found, err, steps, final.Status)
	}

	// The outbox: one notification per step, named by the step.
	notes := map[string]contract.Notification{}
	for seq := int64(1); seq <= steps; seq++ {
		var n contract.Notification
		nid := contract.RecordKey(id, seq) + "/1"
		ok, err := store.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(notify.Table), map[string]types.AttributeValue{"notification_id": store.S(nid)}, &n)
		if err != nil || !ok || n.CaseID != id || n.Recipient != "taxpayer" {
			t.Fatalf("notification %s: %+v (found %v, %v)", nid, n, ok, err)
		}
		notes[nid] = n
	}

	// Delivery: the relay sends each once; after a crash that left some pending after they
	// were delivered, it hands them over again and the channel de-duplicates them.
	first := relay(t, queue)
	delivered := deliveries(t, notes)
	redo := 0
	for nid := range notes {
		if redo == 25 {
			break
		}
		if _, err := store.SetFields(ctx, shared.clients.DynamoDB, shared.cfg.Name(notify.Table),
			map[string]types.AttributeValue{"notification_id": store.S(nid)}, map[string]any{"state": notify.StatePending}); err != nil {
			t.Fatal(err)
		}
		redo++
	}
	second := relay(t, queue)
	if second.Duplicates < redo {
		t.Fatalf("second relay run %+v: want at least %d duplicates", second, redo)
	}
	again := deliveries(t, notes)
	for nid, d := range delivered {
		if !again[nid].DeliveredAt.Equal(d.DeliveredAt) {
			t.Fatalf("notification %s delivered twice", nid)
		}
	}
	for nid := range notes {
		var n contract.Notification
		_, _ = store.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(notify.Table), map[string]types.AttributeValue{"notification_id": store.S(nid)}, &n)
		if n.State != notify.StateSent {
			t.Fatalf("notification %s left %s", nid, n.State)
		}
	}
	t.Logf("%d events in %s (%.0f/s); %d transitions and %d refusals = %d steps in %d runs; %d notifications delivered once (relay: %+v, then %+v)",
		events, elapsed.Round(time.Millisecond), float64(events)/elapsed.Seconds(), transitions, refusals, steps, len(runs), len(delivered), first, second)
}

type runInfo struct {
	status        string
	events, bytes int
}

// accountRuns lists the runs of one workflow id, oldest first, with their history sizes.
func accountRuns(t *testing.T, id string) []runInfo {
	t.Helper()
	ctx := context.Background()
	var runIDs []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		runIDs = nil
		var token []byte
		for {
			res, err := shared.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = '%s'", id), NextPageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, ex := range res.Executions {
				runIDs = append(runIDs, ex.Execution.RunId)
			}
			if token = res.NextPageToken; len(token) == 0 {
				break
			}
		}
		if len(runIDs) >= 3 || time.Now().After(deadline) { // visibility is eventually consistent
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	var out []runInfo
	for i := len(runIDs) - 1; i >= 0; i-- { // the list is newest first
		d, err := shared.temporal.DescribeWorkflowExecution(ctx, id, runIDs[i])
		if err != nil {
			t.Fatal(err)
		}
		info := d.GetWorkflowExecutionInfo()
		out = append(out, runInfo{status: info.GetStatus().String(), events: int(info.GetHistoryLength()), bytes: int(info.GetHistorySizeBytes())})
	}
	return out
}

// relay runs the outbox job once, as its schedule would, and returns its totals.
func relay(t *testing.T, queue string) contract.SweepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := shared.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-outbox-" + uuid.NewString(), TaskQueue: queue},
		workflows.Sweep, workflows.SweepWorkflowInput{Job: workflows.JobOutbox})
	if err != nil {
		t.Fatal(err)
	}
	var res contract.SweepResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// deliveries reads what the channel received for the notifications.
func deliveries(t *testing.T, notes map[string]contract.Notification) map[string]delivery.Delivery {
	t.Helper()
	out := map[string]delivery.Delivery{}
	for nid := range notes {
		var d delivery.Delivery
		ok, err := store.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(delivery.Table),
			map[string]types.AttributeValue{"notification_id": store.S(nid)}, &d)
		if err != nil || !ok {
			t.Fatalf("notification %s not delivered (%v)", nid, err)
		}
		out[nid] = d
	}
	return out
}
