//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// journalLines is a case's journal as "<seq> <entry id> <action> <to>", checked to be in
// step order with no entry twice and no step past the projection's version (a step may
// write no journal entry — a notification or a refreshed projection only — so the
// journal's seqs may skip one; the projection's version is the last step).
func journalLines(t *testing.T, id string) []string {
	t.Helper()
	ctx := context.Background()
	j, err := audit.Journal(ctx, shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := cases.Get(ctx, shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	seen := map[string]bool{}
	var top int64
	for _, e := range j {
		if seen[e.EntryID] {
			t.Fatalf("%s: entry %s twice", id, e.EntryID)
		}
		seen[e.EntryID] = true
		if e.Seq < top || e.Seq < 1 {
			t.Fatalf("%s: step %d after step %d", id, e.Seq, top)
		}
		top = e.Seq
		lines = append(lines, fmt.Sprintf("%d %s %s %s", e.Seq, e.EntryID, e.Action, e.To))
	}
	if top > rec.Version {
		t.Fatalf("%s: journal at step %d, projection at version %d", id, top, rec.Version)
	}
	return append(lines, fmt.Sprintf("projection v%d %s", rec.Version, rec.Status))
}

// stableJournal is the journal once the case has written what its waiting state writes
// (the status shows a step before the notification steps that follow it).
func stableJournal(t *testing.T, id string) []string {
	t.Helper()
	last := journalLines(t, id)
	for i := 0; i < 60; i++ {
		time.Sleep(500 * time.Millisecond)
		now := journalLines(t, id)
		if strings.Join(now, "\n") == strings.Join(last, "\n") {
			return now
		}
		last = now
	}
	t.Fatalf("%s: the journal does not settle", id)
	return nil
}

// resetTo resets a running case with the Temporal CLI to its first (or last) workflow task
// (the reset run decides every step after it again, and the signals and updates after that
// point are applied again), and waits for the new run to be the running one.
func resetTo(t *testing.T, id, point string) {
	t.Helper()
	before, err := shared.temporal.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	old := before.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	out := temporalCLI(t, "workflow", "reset", "--workflow-id", id, "--type", point, "--reason", "e2e: an operator reset")
	t.Logf("%s: %s", id, strings.TrimSpace(out))
	poll(t, id+" reset", func() string {
		d, err := shared.temporal.DescribeWorkflowExecution(context.Background(), id, "")
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return old
		}
		return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}, func(run string) bool { return run != old })
}

// An operator reset of a running case of each process (to its first workflow task: every
// step decided again, later, with the messages applied again) writes the same steps —
// the deadlines in them run from the events that caused them, not from the reset run's
// clock — so the record function answers each as a duplicate: no KeyReused, the case's
// journal unchanged (1..N, no gap, no entry twice), the case back in its waiting state,
// and it goes on from there (one more step, N+1).
func TestOperatorResetOfEachProcessKeepsTheJournal(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	key := func(p api.Principal) *apiClient {
		k, err := keys.Create(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	cabinet := key(api.Principal{ID: "reset-cabinet", Tenant: "reset-cabinet", Role: api.RoleIntegrator, Scopes: []string{
		api.ScopeRefundsRead, api.ScopeRefundsWrite, api.ScopeIdentityRead, api.ScopeIdentityWrite, api.ScopeConsent,
		api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite}})
	reviewer := key(api.Principal{ID: "reset-reviewer", Tenant: "tax-office", Role: api.RoleReviewer, Scopes: []string{api.ScopeRefundsRead,
		api.ScopeRefundsDecide, api.ScopeIdentityRead, api.ScopeIdentityReview}})
	inspector := key(api.Principal{ID: "reset-inspector", Tenant: "tax-office", Role: api.RoleInspector, Scopes: []string{
		api.ScopeDeclarationsRead, api.ScopeDeclarationsReview, api.ScopeTasksRead}})
	auth := key(api.Principal{ID: "reset-auth", Tenant: "reset-auth", Role: api.RoleAuthSystem, Scopes: []string{
		api.ScopeAccountEvents, api.ScopeAccountRead, api.ScopeAccountUnblock}})

	// checkAt resets the case to the point, then checks its journal is what it was and that
	// the case took up its waiting state again; next makes one more step, and the journal
	// grows by it.
	var checkAt func(t *testing.T, id, point string, waiting func(), next func())
	// check resets the case to its first workflow task.
	check := func(t *testing.T, id string, waiting func(), next func()) {
		checkAt(t, id, "FirstWorkflowTask", waiting, next)
	}
	checkAt = func(t *testing.T, id, point string, waiting func(), next func()) {
		before := stableJournal(t, id)
		if len(before) == 0 {
			t.Fatalf("%s: no journal before the reset", id)
		}
		time.Sleep(2 * time.Second) // the reset run's tasks start measurably later
		resetTo(t, id, point)
		waiting()
		after := stableJournal(t, id)
		if strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Fatalf("%s: the journal changed with the reset:\nbefore %v\nafter  %v", id, before, after)
		}
		next()
		grown := journalLines(t, id)
		if len(grown) <= len(before) {
			t.Fatalf("%s: the case did not go on after the reset: %v", id, grown)
		}
		t.Logf("%s: %d journal entries kept through the reset, %d after the next step", id, len(before), len(grown))
	}

	t.Run("refund", func(t *testing.T) {
		cabinet.t, reviewer.t = t, t
		code, id := cabinet.create(newTaxpayer(t, 3_000_000), 2_500_000, uuid.NewString())
		if code != http.StatusCreated {
			t.Fatalf("claim: %d", code)
		}
		if code, out := cabinet.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code/100 != 2 {
			t.Fatalf("upload: %d %s", code, out)
		}
		cabinet.waitStatus(id, workflows.RefundInReview)
		// To its last workflow task: a reset to the first would apply the document update
		// again in the first task, ahead of the reads, whose answer now comes in that task
		// (local activities, change refund-folded-steps) — so the reset run would find the
		// document there and never record the awaiting_info step the case had recorded: a
		// different decision, which the record refuses as KeyReused (the case fails for an
		// operator, the journal unchanged). What this test shows, the content a decision
		// derives from time written byte for byte again, a reset to the last task shows.
		checkAt(t, id, "LastWorkflowTask", func() { cabinet.waitStatus(id, workflows.RefundInReview) }, func() {
			if code, out := reviewer.do("POST", "/v1/refunds/"+id+"/decision", []byte(`{"approve":true,"reason":"statement confirms it"}`)); code != http.StatusOK {
				t.Fatalf("decision after the reset: %d %s", code, out)
			}
			cabinet.waitStatus(id, workflows.RefundPaid)
		})
	})

	t.Run("identity", func(t *testing.T) {
		cabinet.t, reviewer.t = t, t
		code, id := cabinet.startIdentity(contract.MethodVideo, newPerson(t, true), nil)
		if code != http.StatusCreated {
			t.Fatalf("start: %d", code)
		}
		st := cabinet.waitIdentity(id, status(workflows.IdentityManualReview), "manual review")
		check(t, id, func() {
			again := cabinet.waitIdentity(id, status(workflows.IdentityManualReview), "manual review again")
			if again.ReviewDue == nil || st.ReviewDue == nil || !again.ReviewDue.Equal(*st.ReviewDue) {
				t.Fatalf("review due %v, was %v", again.ReviewDue, st.ReviewDue)
			}
		}, func() {
			if code, out := reviewer.do("POST", "/v1/identity-verifications/"+id+"/review", []byte(`{"approve":true}`)); code != http.StatusOK {
				t.Fatalf("review after the reset: %d %s", code, out)
			}
			cabinet.waitIdentity(id, status(workflows.IdentityVerified), "verified")
		})
	})

	t.Run("declaration", func(t *testing.T) {
		cabinet.t, inspector.t = t, t
		inn := domain.CompleteINN12(fmt.Sprintf("66%08d", rand.IntN(100_000_000)))
		code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, 14_300_000), "Idempotency-Key", uuid.NewString(),
			"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-reset-1")
		var created struct {
			CaseID string `json:"case_id"`
		}
		if code != http.StatusCreated || json.Unmarshal(out, &created) != nil {
			t.Fatalf("submit: %d %s", code, out)
		}
		id := created.CaseID
		cabinet.waitDeclaration(id, workflows.DeclarationInReview)
		check(t, id, func() { cabinet.waitDeclaration(id, workflows.DeclarationInReview) }, func() {
			if code, out := inspector.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"документы подтверждают вычет"}`)); code != http.StatusOK {
				t.Fatalf("decision after the reset: %d %s", code, out)
			}
			cabinet.waitDeclaration(id, workflows.DeclarationDecided)
		})
	})

	t.Run("account", func(t *testing.T) {
		auth.t = t
		inn := newPerson(t, true).INN
		for range s.AccountPolicy.Threshold + 1 { // more than the threshold locks
			body, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: contract.EventLoginFailed})
			if code, out := auth.do("POST", "/v1/accounts/"+inn+"/events", body); code != http.StatusAccepted {
				t.Fatalf("event: %d %s", code, out)
			}
		}
		lock := func() workflows.AccountStatus {
			return poll(t, "the account to be locked", func() workflows.AccountStatus {
				var st workflows.AccountStatus
				_, out := auth.do("GET", "/v1/accounts/"+inn+"/lock", nil)
				_ = json.Unmarshal(out, &st)
				return st
			}, func(st workflows.AccountStatus) bool { return st.Status == workflows.AccountAutoUnlockPending })
		}
		st := lock()
		check(t, workflows.AccountID(s.Subject(inn)), func() {
			again := lock()
			if again.Until == nil || st.Until == nil || !again.Until.Equal(*st.Until) {
				t.Fatalf("lock until %v, was %v", again.Until, st.Until)
			}
		}, func() {
			if code, out := auth.do("POST", "/v1/accounts/"+inn+"/unblock/specialist-request", nil); code != http.StatusOK {
				t.Fatalf("specialist request after the reset: %d %s", code, out)
			}
		})
	})
}

// A refund read answers from the case's record when the case's run is behind it. An
// operator resets a case in review to its first workflow task while no worker runs, and
// the reset run is terminated before it takes a step: a closed run whose state is its
// first task's (received, version 0) while the record holds the steps the case committed.
// The read must say what the record says (in review, at its version), never "received";
// the journal is untouched.
func TestRefundReadOfARunEndedBehindItsRecordAnswersTheRecord(t *testing.T) {
	queue := "e2e-behind-" + uuid.NewString()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	k, err := keys.Create(context.Background(), api.Principal{ID: "behind-cabinet", Tenant: "behind-cabinet", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	cabinet := &apiClient{t, base + "|" + k}
	worker := startWorkerProcess(t, queue)
	code, id := cabinet.create(newTaxpayer(t, 3_000_000), 2_500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("claim: %d", code)
	}
	if code, out := cabinet.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code/100 != 2 {
		t.Fatalf("upload: %d %s", code, out)
	}
	inReview := cabinet.waitStatus(id, workflows.RefundInReview)
	before := stableJournal(t, id)
	rec, found, err := cases.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
	if err != nil || !found {
		t.Fatalf("projection: %v %v", found, err)
	}
	if inReview.Version != rec.Version || rec.Version < 2 {
		t.Fatalf("a live run answers its own version: %d, the record %d", inReview.Version, rec.Version)
	}

	_ = syscall.Kill(-worker.Process.Pid, syscall.SIGKILL) // no worker: the reset run takes no step
	_ = worker.Wait()
	resetTo(t, id, "FirstWorkflowTask")
	if err := shared.temporal.TerminateWorkflow(context.Background(), id, "", "e2e: the reset run ends before its first step"); err != nil {
		t.Fatal(err)
	}
	startWorkerProcess(t, queue) // a query of a closed run replays it on a worker
	if _, err := shared.temporal.QueryWorkflow(context.Background(), id, "", workflows.RefundQueryStatus); err != nil {
		t.Logf("the run's own answer: %T %v", err, err)
	}

	st := cabinet.status(id)
	if st.Status != rec.Status || st.Version != rec.Version || st.Label != rec.Label {
		t.Fatalf("read after a reset run ended behind the record: %s v%d %q, the record %s v%d %q", st.Status, st.Version, st.Label, rec.Status, rec.Version, rec.Label)
	}
	if len(st.History) != len(inReview.History) || st.History[len(st.History)-1].To != workflows.RefundInReview {
		t.Fatalf("the history is the journal's: %+v, the live run said %+v", st.History, inReview.History)
	}
	if st.Claimed != inReview.Claimed || st.CaseID != id {
		t.Fatalf("the run's own facts are lost: %+v", st)
	}
	if after := journalLines(t, id); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the journal changed:\nbefore %v\nafter  %v", before, after)
	}
	t.Logf("%s: the run ended at version 0, the read answered the record: %s v%d", id, st.Status, st.Version)
}
