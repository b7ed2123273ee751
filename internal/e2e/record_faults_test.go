//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// tryTemporalCLI runs the pinned Temporal CLI against the stack (see temporalCLI) and
// returns its error instead of failing the test.
func tryTemporalCLI(args ...string) (string, error) {
	tools := os.Getenv("TAXFLOW_TOOLS")
	if tools == "" {
		tools = filepath.Join(moduleDir(), ".tools")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "--address", shared.cfg.Temporal.Address, "--namespace", shared.cfg.Temporal.Namespace)
	cmd := exec.CommandContext(ctx, filepath.Join(tools, "bin", "temporal"), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_CODEC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// scanAll reads a whole table (DynamoDB Local; the test's own cases are picked out after).
func scanAll(t *testing.T, table string) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	var out []map[string]ddbtypes.AttributeValue
	var start map[string]ddbtypes.AttributeValue
	for {
		res, err := shared.clients.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(shared.cfg.Name(table)),
			ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Items...)
		if start = res.LastEvaluatedKey; len(start) == 0 {
			return out
		}
	}
}

func attrS(av map[string]ddbtypes.AttributeValue, name string) string {
	if s, ok := av[name].(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// transferOf is the treasury's transfer id of a payout key ("" when none was made).
func transferOf(t *testing.T, payoutKey string) string {
	t.Helper()
	out, err := shared.clients.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(shared.cfg.Name(payout.Table)),
		Key: map[string]ddbtypes.AttributeValue{"payout_key": &ddbtypes.AttributeValueMemberS{Value: payoutKey}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("treasury record of %s: %v", payoutKey, err)
	}
	return attrS(out.Item, "transfer_id")
}

// decidedSteps is what the case's histories decided: for each seq, the digests of the
// record steps its runs scheduled (every run of the chain: continued as new, reset from).
func decidedSteps(t *testing.T, id string) (map[int64]map[string]bool, int) {
	t.Helper()
	ctx := context.Background()
	codec, err := temporalclient.PayloadCodec(shared.cfg.Temporal)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]map[string]bool{}
	runs := 0
	seen := map[string]bool{}
	for run := ""; ; {
		h, err := histories.Fetch(ctx, shared.temporal, id, run)
		if err != nil {
			t.Fatalf("%s run %q: %v", id, run, err)
		}
		if err := histories.Decode(h, codec.Decode); err != nil {
			t.Fatal(err)
		}
		runs++
		prev := ""
		for _, ev := range h.Events {
			if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil && a.GetContinuedExecutionRunId() != "" {
				prev = a.GetContinuedExecutionRunId()
			}
			if f := ev.GetWorkflowTaskFailedEventAttributes(); f != nil && f.GetBaseRunId() != "" {
				prev = f.GetBaseRunId()
			}
			a := ev.GetActivityTaskScheduledEventAttributes()
			for _, p := range a.GetInput().GetPayloads() {
				var in contract.RecordInput
				switch a.GetActivityType().GetName() {
				case "RecordTransition":
					if err := json.Unmarshal(p.GetData(), &in); err != nil {
						t.Fatalf("%s: record input: %v", id, err)
					}
				case "Reserve", "Payout", "CancelPayout":
					// A step that rides in the reservation or the payout's posting
					// (refund-folded-steps), the transfer id filled in as the payout does.
					var op struct {
						PayoutKey string                `json:"payout_key"`
						Step      *contract.RecordInput `json:"step"`
					}
					if err := json.Unmarshal(p.GetData(), &op); err != nil {
						t.Fatalf("%s: %s input: %v", id, a.GetActivityType().GetName(), err)
					}
					if op.Step == nil {
						continue
					}
					in = *op.Step
					if op.PayoutKey != "" {
						in = contract.FillTransfer(in, transferOf(t, op.PayoutKey))
					}
				default:
					continue
				}
				d, err := transition.Digest(in)
				if err != nil {
					t.Fatal(err)
				}
				if out[in.Seq] == nil {
					out[in.Seq] = map[string]bool{}
				}
				out[in.Seq][d] = true
			}
		}
		if prev == "" || seen[prev] {
			return out, runs
		}
		seen[prev], run = true, prev
	}
}

// A randomized fault test of the record path (seeded: TAXFLOW_FAULT_SEED repeats a run):
// refunds (paid automatically) and accounts (login events; continue-as-new every few) run
// while, at random points, the worker is killed (its workflow tasks time out), the
// Temporal server is restarted, a refund is cancelled, and a running refund or account is
// reset to its first workflow task. Afterwards, for every case: its journal is in step
// order with no entry twice and no step past the projection's version; every journal
// entry, projection and notification is the step one of its runs' histories decided (its
// digest); the projection's status is the journal's last status change; every outbox
// notification belongs to a committed step and, once the relay has run, was delivered
// once; and the treasury's transfers are the ledger's paid: one per paid refund, none
// for any other.
func TestFaultsRecordPathRandomized(t *testing.T) {
	seed := uint64(envInt("TAXFLOW_FAULT_SEED", int(time.Now().UnixNano()%1_000_000_000)))
	t.Logf("seed %d (repeat with TAXFLOW_FAULT_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	nRefunds := envInt("TAXFLOW_FAULT_RECORD_REFUNDS", 100)
	nAccounts := envInt("TAXFLOW_FAULT_RECORD_ACCOUNTS", 20)
	nFaults := envInt("TAXFLOW_FAULT_RECORD_FAULTS", 10)
	st, err := stack.FromEnv(os.Getenv, filepath.Join(moduleDir(), "bin", "taxflow"))
	if err != nil {
		t.Fatal(err)
	}
	queue := "e2e-rfault-" + uuid.NewString()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	s.AccountPolicy.ContinueAfter = 6 // accounts continue as new under the faults
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	key := func(p api.Principal) *apiClient {
		k, err := keys.Create(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return &apiClient{t, base + "|" + k}
	}
	cabinet := key(api.Principal{ID: "rfault-cabinet", Tenant: "rfault-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	auth := key(api.Principal{ID: "rfault-auth", Tenant: "rfault-auth", Role: api.RoleAuthSystem, Scopes: []string{api.ScopeAccountEvents, api.ScopeAccountRead}})

	var mu sync.Mutex
	worker := startWorkerProcess(t, queue)
	refunds := make([]string, nRefunds)
	refundINNs := map[string]bool{}
	for i := range refunds {
		inn := newTaxpayer(t, 600_000)
		refundINNs[inn] = true
		code, id := cabinet.create(inn, 500_000, uuid.NewString())
		if code != http.StatusCreated {
			t.Fatalf("create %d: %d", i, code)
		}
		refunds[i] = id
	}
	var wg sync.WaitGroup
	for _, id := range refunds { // a document is an update: answered once the worker takes it
		wg.Add(1)
		go func() {
			defer wg.Done()
			for try := 0; try < 40; try++ {
				code, _ := cabinet.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
				if code/100 == 2 || code == http.StatusConflict { // a cancelled case refuses it
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	accounts := make([]string, nAccounts)
	inns := make([]string, nAccounts)
	sent := make([]int, nAccounts)
	for i := range accounts {
		inns[i] = newPerson(t, true).INN
		accounts[i] = workflows.AccountID(s.Subject(inns[i]))
	}
	plan := make([][]string, nAccounts) // each account's events, decided by the seed
	for i := range plan {
		for range 8 + rng.IntN(12) {
			typ := contract.EventLoginFailed
			if rng.IntN(4) == 0 {
				typ = contract.EventLoginSucceeded
			}
			plan[i] = append(plan[i], typ)
		}
	}
	for i := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, typ := range plan[i] {
				body, _ := json.Marshal(contract.AccountEvent{EventID: uuid.NewString(), Type: typ})
				for try := 0; try < 60; try++ { // 503 while the server restarts: retried
					if code, _ := auth.do("POST", "/v1/accounts/"+inns[i]+"/events", body); code == http.StatusAccepted {
						mu.Lock()
						sent[i]++
						mu.Unlock()
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
			}
		}()
	}

	running := func(id string) bool {
		d, err := shared.temporal.DescribeWorkflowExecution(context.Background(), id, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	}
	var faults []string
	cancelled := map[string]bool{}
	for k := 0; k < nFaults; k++ {
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		switch f := rng.IntN(5); f {
		case 0: // the worker killed mid-task: its workflow tasks time out, its activities too
			_ = syscall.Kill(-worker.Process.Pid, syscall.SIGKILL)
			_ = worker.Wait()
			worker = startWorkerProcess(t, queue)
			faults = append(faults, "worker killed")
		case 1: // the Temporal server restarted (its SQLite file kept)
			if err := st.Stop("temporal"); err != nil {
				t.Fatal(err)
			}
			if err := st.Up(context.Background(), func(string) {}); err != nil {
				t.Fatal(err)
			}
			faults = append(faults, "server restarted")
		case 2: // a refund cancelled wherever it is
			id := refunds[rng.IntN(len(refunds))]
			if running(id) {
				_ = shared.temporal.CancelWorkflow(context.Background(), id, "")
				cancelled[id] = true
				faults = append(faults, "cancelled "+id)
			}
		default: // a running refund or account reset to its first workflow task
			id := refunds[rng.IntN(len(refunds))]
			if f == 4 {
				id = accounts[rng.IntN(len(accounts))]
			}
			if running(id) {
				// A run that has not completed a workflow task yet (one just continued as
				// new) cannot be reset: the operator's command is refused, nothing changes.
				if out, err := tryTemporalCLI("workflow", "reset", "--workflow-id", id, "--type", "FirstWorkflowTask", "--reason", "e2e: randomized faults"); err != nil {
					faults = append(faults, "reset refused "+id)
					t.Logf("reset of %s refused: %v %s", id, err, strings.TrimSpace(out))
				} else {
					faults = append(faults, "reset "+id)
				}
			}
		}
	}
	t.Logf("faults: %s", strings.Join(faults, "; "))
	wg.Wait()

	// Every refund ends; every account has taken each event sent to it.
	statuses := map[string]workflows.RefundStatus{}
	for _, id := range refunds {
		var resent time.Time
		statuses[id] = poll(t, id+" to end", func() workflows.RefundStatus {
			st := cabinet.status(id)
			// A reset to the first workflow task drops an update that task had accepted
			// (Temporal reapplies the signals and updates that came after it, not that
			// one): the upload is lost and the case asks for documents; the taxpayer sends
			// it again.
			if st.Status == workflows.RefundAwaitingInfo && time.Since(resent) > 3*time.Second {
				resent = time.Now()
				cabinet.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
			}
			return st
		}, func(st workflows.RefundStatus) bool {
			switch st.Status {
			case workflows.RefundPaid, workflows.RefundRejected, workflows.RefundCancelled, workflows.RefundWithdrawn:
				return !running(id)
			}
			// A case that failed (a reset run that decided a step otherwise than the run
			// it was reset from: KeyReused, for an operator) has ended too; the checks
			// below hold for it as for any other.
			d, err := shared.temporal.DescribeWorkflowExecution(context.Background(), id, "")
			return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED
		})
	}
	var failed []string
	for _, id := range refunds {
		d, err := shared.temporal.DescribeWorkflowExecution(context.Background(), id, "")
		if err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED {
			failed = append(failed, id+" ("+statuses[id].Status+")")
		}
	}
	if len(failed) > 0 {
		t.Logf("failed for an operator: %s", strings.Join(failed, ", "))
	}
	for i, inn := range inns {
		poll(t, accounts[i]+" to take its events", func() int {
			var st workflows.AccountStatus
			_, out := auth.do("GET", "/v1/accounts/"+inn+"/lock", nil)
			_ = json.Unmarshal(out, &st)
			return st.EventsSeen
		}, func(n int) bool { return n >= sent[i] })
		stableJournal(t, accounts[i])
	}

	// The relay delivers every pending notification.
	for {
		out, err := (delivery.Handler{DB: shared.clients.DynamoDB, Outbox: shared.cfg.Name(notify.Table), Now: time.Now,
			Channel: delivery.Deliveries{DB: shared.clients.DynamoDB, Table: shared.cfg.Name(delivery.Table), Now: time.Now}}).Sweep(context.Background(), contract.SweepPage{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if out.Processed == 0 {
			break
		}
	}

	all := append(append([]string{}, refunds...), accounts...)
	ours := map[string]bool{}
	for _, id := range all {
		ours[id] = true
	}
	// journal items by case, with their digests
	type item struct {
		seq    int64
		digest string
		id     string
	}
	journal := map[string][]item{}
	for _, it := range scanAll(t, audit.Table) {
		var e contract.AuditEntry
		if err := store.Unmarshal(it, &e); err != nil {
			t.Fatal(err)
		}
		if ours[e.CaseID] {
			journal[e.CaseID] = append(journal[e.CaseID], item{e.Seq, attrS(it, transition.AttrDigest), e.EntryID})
		}
	}
	delivered := map[string]bool{}
	for _, it := range scanAll(t, delivery.Table) {
		delivered[attrS(it, "notification_id")] = true
	}
	notes := map[string][]contract.Notification{}
	noteDigest := map[string]string{}
	for _, it := range scanAll(t, notify.Table) {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil {
			t.Fatal(err)
		}
		if ours[n.CaseID] {
			notes[n.CaseID] = append(notes[n.CaseID], n)
			noteDigest[n.NotificationID] = attrS(it, transition.AttrDigest)
		}
	}
	byCase := treasuryByCase(t)
	steps, entries, notifications, runs := 0, 0, 0, 0
	for _, id := range all {
		decided, n := decidedSteps(t, id)
		runs += n
		rec, found, err := cases.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(cases.Table), id)
		if err != nil {
			t.Fatal(err)
		}
		if !found { // an account no event has moved yet: no step at all
			if len(journal[id]) != 0 || len(notes[id]) != 0 || len(decided) != 0 {
				t.Fatalf("%s: no projection, yet %d journal entries, %d notifications, %d steps decided", id, len(journal[id]), len(notes[id]), len(decided))
			}
			continue
		}
		raw, err := shared.clients.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(shared.cfg.Name(cases.Table)),
			Key: map[string]ddbtypes.AttributeValue{"case_id": store.S(id)}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if !decided[rec.Version][attrS(raw.Item, transition.AttrDigest)] {
			t.Fatalf("%s: the projection (version %d) is no step its history decided", id, rec.Version)
		}
		if st, ok := statuses[id]; ok && (st.Status != rec.Status || st.Version < rec.Version) {
			// The read answers what the case recorded, also for a run that failed (or was
			// reset) behind its record: a paid case never reads "received".
			t.Fatalf("%s: the API reads %s v%d, the record %s v%d", id, st.Status, st.Version, rec.Status, rec.Version)
		}
		steps += int(rec.Version)
		items := journal[id]
		sort.Slice(items, func(a, b int) bool { return items[a].id < items[b].id })
		digestOf := map[int64]string{}
		for _, e := range items {
			if e.seq < 1 || e.seq > rec.Version {
				t.Fatalf("%s: journal step %d, projection at version %d", id, e.seq, rec.Version)
			}
			if d, ok := digestOf[e.seq]; ok && d != e.digest {
				t.Fatalf("%s: step %d written with two contents", id, e.seq)
			}
			digestOf[e.seq] = e.digest
			if !decided[e.seq][e.digest] {
				t.Fatalf("%s: journal entry %s is no step its history decided", id, e.id)
			}
			entries++
		}
		j, err := audit.Journal(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
		if err != nil {
			t.Fatal(err)
		}
		last := ""
		for _, e := range j {
			if e.Action == "status_changed" {
				last = e.To
			}
		}
		if last != "" && last != rec.Status {
			t.Fatalf("%s: the projection says %s, the journal's last status change %s", id, rec.Status, last)
		}
		for _, n := range notes[id] {
			var seq int64
			if _, err := fmt.Sscanf(strings.TrimPrefix(n.NotificationID, id+"/"), "%d/", &seq); err != nil || seq < 1 || seq > rec.Version {
				t.Fatalf("%s: notification %s is no committed step", id, n.NotificationID)
			}
			if !decided[seq][noteDigest[n.NotificationID]] {
				t.Fatalf("%s: notification %s is no step its history decided", id, n.NotificationID)
			}
			if n.State != notify.StateSent || !delivered[n.NotificationID] {
				t.Fatalf("%s: notification %s %s, delivered %v", id, n.NotificationID, n.State, delivered[n.NotificationID])
			}
			notifications++
		}
	}
	paid := 0
	for _, id := range refunds {
		st := statuses[id]
		transferred := 0
		for _, r := range byCase[id] {
			if r.Transferred() {
				transferred++
			}
		}
		want := 0
		if st.Status == workflows.RefundPaid {
			want, paid = 1, paid+1
		}
		if transferred != want {
			t.Fatalf("%s ended %s with %d transfers (cancelled %v)", id, st.Status, transferred, cancelled[id])
		}
	}
	// the ledger: one posted reservation per paid case, nothing held by any other, and its
	// paid the treasury's sum
	var paidStatuses []workflows.RefundStatus
	for _, id := range refunds {
		if statuses[id].Status == workflows.RefundPaid {
			paidStatuses = append(paidStatuses, statuses[id])
		}
	}
	if n, total := checkPaidOnce(t, refundINNs, paidStatuses); n != paid || total != int64(paid)*500_000 {
		t.Fatalf("paid %d cases, %d kopecks", n, total)
	}
	t.Logf("seed %d: %d refunds (%d paid, %d cancelled by a fault), %d accounts; %d runs, %d steps, %d journal entries, %d notifications delivered once; treasury = ledger paid",
		seed, nRefunds, paid, len(cancelled), nAccounts, runs, steps, entries, notifications)
}
