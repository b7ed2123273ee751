//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// captured names the histories this run has taken, for the check that recording
// covered every waiting state.
var captured = map[string]bool{}

// capture takes the history of a case in a waiting state, decodes its payloads, replays
// it against the current code (so the recorder itself proves it replays) and, when
// TAXFLOW_RECORD_HISTORIES names a directory (`make histories`), stores it there as
// <name>.json for the replay test in workflows/.
func capture(t *testing.T, name, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := histories.Fetch(ctx, shared.temporal, id, "")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c, err := temporalclient.PayloadCodec(shared.cfg.Temporal)
	if err != nil {
		t.Fatal(err)
	}
	if err := histories.Decode(h, c.Decode); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := histories.Replay(h, nil); err != nil {
		t.Fatalf("%s (%s, %d events) does not replay against the code that recorded it: %v", name, histories.WorkflowType(h), len(h.Events), err)
	}
	captured[name] = true
	t.Logf("%s: %s, %d events", name, histories.WorkflowType(h), len(h.Events))
	if dir := os.Getenv("TAXFLOW_RECORD_HISTORIES"); dir != "" {
		if err := histories.Write(filepath.Join(dir, name+".json"), h); err != nil {
			t.Fatal(err)
		}
	}
}

// Every waiting state of every workflow, reached through the API on the real stack (the
// Lambda host runs the function binaries), its history captured and replayed. With
// TAXFLOW_RECORD_HISTORIES set the histories land in workflows/testdata/histories.
func TestRecordWaitingStateHistories(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	// A short run, so that the account's continue-as-new is reached with a few events.
	s.AccountPolicy.ContinueAfter = 12
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	key := func(p api.Principal) *apiClient {
		k, err := keys.Create(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	cabinet := key(api.Principal{ID: "rec-cabinet", Tenant: "rec-cabinet", Role: api.RoleIntegrator, Scopes: []string{
		api.ScopeRefundsRead, api.ScopeRefundsWrite, api.ScopeIdentityRead, api.ScopeIdentityWrite, api.ScopeConsent,
		api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite}})
	reviewer := key(api.Principal{ID: "rec-reviewer", Tenant: "tax-office", Role: api.RoleReviewer, Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsDecide}})
	inspector := key(api.Principal{ID: "rec-inspector", Tenant: "tax-office", Role: api.RoleInspector, Scopes: []string{
		api.ScopeDeclarationsRead, api.ScopeDeclarationsReview, api.ScopeTasksRead}})
	auth := key(api.Principal{ID: "rec-auth", Tenant: "rec-auth", Role: api.RoleAuthSystem, Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})

	t.Run("refund", func(t *testing.T) {
		cabinet.t, reviewer.t = t, t
		wait := func(id string, what string, done func(workflows.RefundStatus) bool) workflows.RefundStatus {
			return poll(t, id+" "+what, func() workflows.RefundStatus { return cabinet.status(id) }, done)
		}
		claim := func(inn string, amount int64) string {
			code, id := cabinet.create(inn, amount, uuid.NewString())
			if code != http.StatusCreated {
				t.Fatalf("claim: %d", code)
			}
			return id
		}
		upload := func(id string) {
			if code, out := cabinet.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code/100 != 2 {
				t.Fatalf("upload: %d %s", code, out)
			}
		}

		// Awaiting documents: a claim without any.
		waiting := claim(newTaxpayer(t, 300_000), 200_000)
		cabinet.waitStatus(waiting, workflows.RefundAwaitingInfo)
		capture(t, "refund-awaiting-documents", waiting)

		// In review: above the automatic limit, so a reviewer decides.
		review := claim(newTaxpayer(t, 3_000_000), 2_500_000)
		upload(review)
		cabinet.waitStatus(review, workflows.RefundInReview)
		capture(t, "refund-in-review", review)

		// Approved and held: a change of bank requisites is being verified.
		inn := newTaxpayer(t, 500_000)
		setBank(t, inn, func(tp contract.Taxpayer) map[string]any {
			return map[string]any{"pending_bank": contract.BankRequisites{BIK: tp.Bank.BIK, Account: domain.CompleteAccount("40817810000000054321", tp.Bank.BIK)}}
		})
		held := claim(inn, 400_000)
		upload(held)
		wait(held, "held for requisites", func(st workflows.RefundStatus) bool { return st.BankHold && st.RequisitesDue != nil })
		capture(t, "refund-held-for-requisites", held)

		// Payout failed: the verified account is a company's, which cannot receive a refund.
		inn = newTaxpayer(t, 500_000)
		setBank(t, inn, func(tp contract.Taxpayer) map[string]any {
			return map[string]any{"bank": contract.BankRequisites{BIK: tp.Bank.BIK, Account: domain.CompleteAccount("40702810000000012345", tp.Bank.BIK)}}
		})
		failed := claim(inn, 400_000)
		upload(failed)
		cabinet.waitStatus(failed, workflows.RefundPayoutFailed)
		capture(t, "refund-payout-failed", failed)

		// Paid: the whole run to its end.
		paid := claim(newTaxpayer(t, 500_000), 400_000)
		upload(paid)
		cabinet.waitStatus(paid, workflows.RefundPaid)
		capture(t, "refund-paid", paid)
	})

	t.Run("identity", func(t *testing.T) {
		cabinet.t = t
		code, id := cabinet.startIdentity(contract.MethodDocuments, newPerson(t, true), nil)
		if code != http.StatusCreated {
			t.Fatalf("start: %d", code)
		}
		cabinet.waitIdentity(id, status(workflows.IdentityNeedsDocuments), "a request for documents")
		capture(t, "identity-needs-documents", id)

		// Video: an operator decides.
		code, id = cabinet.startIdentity(contract.MethodVideo, newPerson(t, true), nil)
		if code != http.StatusCreated {
			t.Fatalf("start: %d", code)
		}
		cabinet.waitIdentity(id, status(workflows.IdentityManualReview), "manual review")
		capture(t, "identity-manual-review", id)
	})

	t.Run("declaration", func(t *testing.T) {
		cabinet.t, inspector.t = t, t
		submit := func(declared int64) (string, string) {
			inn := domain.CompleteINN12(fmt.Sprintf("66%08d", rand.IntN(100_000_000)))
			code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, declared), "Idempotency-Key", uuid.NewString(),
				"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-rec-1")
			var created struct {
				CaseID string `json:"case_id"`
			}
			if code != http.StatusCreated || json.Unmarshal(out, &created) != nil {
				t.Fatalf("submit: %d %s", code, out)
			}
			return inn, created.CaseID
		}
		// A declared tax that does not add up: the taxpayer is asked to clarify.
		_, id := submit(14_000_000)
		cabinet.waitDeclaration(id, workflows.DeclarationClarification)
		capture(t, "declaration-clarification", id)

		inn, id := submit(14_300_000)
		cabinet.waitDeclaration(id, workflows.DeclarationInReview)
		capture(t, "declaration-in-review", id)
		_ = inn
		if code, out := inspector.do("POST", "/v1/declarations/"+id+"/decision", []byte(`{"decision":"confirmed","grounds":"документы подтверждают вычет"}`)); code != http.StatusOK {
			t.Fatalf("decision: %d %s", code, out)
		}
		cabinet.waitDeclaration(id, workflows.DeclarationDecided)
		capture(t, "declaration-decided-appeal-window", id)
	})

	t.Run("account", func(t *testing.T) {
		auth.t = t
		event := func(inn, typ string) {
			body, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: typ})
			if code, out := auth.do("POST", "/v1/accounts/"+inn+"/events", body); code != http.StatusAccepted {
				t.Fatalf("event: %d %s", code, out)
			}
		}
		lock := func(inn, want string) workflows.AccountStatus {
			return poll(t, inn[:2]+"… to be "+want, func() workflows.AccountStatus {
				var st workflows.AccountStatus
				_, out := auth.do("GET", "/v1/accounts/"+inn+"/lock", nil)
				_ = json.Unmarshal(out, &st)
				return st
			}, func(st workflows.AccountStatus) bool { return st.Status == want })
		}
		inn := newPerson(t, true).INN
		for range s.AccountPolicy.Threshold + 1 { // more than the threshold locks [001:175]
			event(inn, contract.EventLoginFailed)
		}
		lock(inn, workflows.AccountAutoUnlockPending)
		capture(t, "account-auto-unlock-pending", workflows.AccountID(s.Subject(inn)))

		inn = newPerson(t, true).INN
		event(inn, contract.EventDataIncorrect)
		lock(inn, workflows.AccountAwaitingSpecialist)
		capture(t, "account-awaiting-specialist", workflows.AccountID(s.Subject(inn)))

		// More events than a run takes: the workflow continues as new and goes on
		// in the new run (the capture is of that run).
		inn = newPerson(t, true).INN
		for range s.AccountPolicy.ContinueAfter + 3 {
			event(inn, contract.EventLoginFailed)
		}
		event(inn, contract.EventLoginSucceeded)
		poll(t, "a second run", func() int { return len(accountRuns(t, workflows.AccountID(s.Subject(inn)))) }, func(n int) bool { return n >= 2 })
		// Locked before the boundary (more than the threshold failed), and the lock
		// carried into the new run with its timer.
		lock(inn, workflows.AccountAutoUnlockPending)
		capture(t, "account-after-continue-as-new", workflows.AccountID(s.Subject(inn)))
	})

	t.Run("sweep", func(t *testing.T) {
		for _, job := range []string{workflows.JobReminders, workflows.JobOutbox} {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			id := "rec-sweep-" + job + "-" + uuid.NewString()
			run, err := shared.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
				workflows.Sweep, workflows.SweepWorkflowInput{Job: job})
			if err != nil {
				t.Fatal(err)
			}
			var res contract.SweepResult
			if err := run.Get(ctx, &res); err != nil {
				t.Fatalf("%s: %v", job, err)
			}
			cancel()
			capture(t, "sweep-"+job, id)
		}
	})

	t.Run("events", func(t *testing.T) {
		// The relay job between two invocations of the relay, after some completed.
		id := "rec-event-relay-" + uuid.NewString()
		if _, err := shared.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: queue},
			workflows.EventRelay, workflows.EventRelayInput{WaitMillis: 300}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = shared.temporal.TerminateWorkflow(context.Background(), id, "", "recorded") }()
		poll(t, "two relay invocations", func() int {
			h, err := histories.Fetch(context.Background(), shared.temporal, id, "")
			if err != nil {
				return 0
			}
			n := 0
			for _, ev := range h.Events {
				if ev.GetActivityTaskCompletedEventAttributes() != nil {
					n++
				}
			}
			return n
		}, func(n int) bool { return n >= 2 })
		capture(t, "event-relay-waiting", id)
	})

	t.Run("batch", func(t *testing.T) {
		// A small file through the real path (MinIO's notification → Lambda host → intake
		// → BatchImport), its lines starting cases on a queue no worker polls.
		w := batchWorker(t, "rec-batch-idle-"+uuid.NewString())
		defer w.Stop()
		tenant := "rec-" + uuid.NewString()[:8]
		inn := newTaxpayer(t, 600_000)
		file := fmt.Sprintf("schema_version,kind,external_id,inn,period,amount_kopecks,reason\n"+
			"1,refund,rec-1,%s,2025,100000,overpaid\n1,refund,rec-2,%s,2025,-1,overpaid\n1,refund,rec-1,%s,2025,100000,overpaid\n", inn, inn, inn)
		id := putInbox(t, batch.InboxPrefix+tenant+"/rec.csv", []byte(file))
		waitReport(t, tenant, id, 2*time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := shared.temporal.GetWorkflow(ctx, id, "").Get(ctx, nil); err != nil {
			t.Fatalf("batch %s: %v", id, err)
		}
		capture(t, "batch-done", id)
	})

	t.Run("webhook", recordWebhookDisabled)

	var missing []string
	for _, names := range histories.WaitingStates {
		for _, n := range names {
			if !captured[n] {
				missing = append(missing, n)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("waiting states not captured: %s", strings.Join(missing, ", "))
	}
	t.Logf("captured and replayed %d histories", len(captured))
}

// setBank changes a registered taxpayer's bank fields.
func setBank(t *testing.T, inn string, change func(contract.Taxpayer) map[string]any) {
	t.Helper()
	var tp contract.Taxpayer
	tbl := shared.cfg.Name(taxpayer.Table)
	k := map[string]ddbtypes.AttributeValue{"inn": store.S(inn)}
	if _, err := store.Get(context.Background(), shared.clients.DynamoDB, tbl, k, &tp); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetFields(context.Background(), shared.clients.DynamoDB, tbl, k, change(tp)); err != nil {
		t.Fatal(err)
	}
}
