//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.temporal.io/api/workflowservice/v1"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/ledger/ledgertest"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/stack"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// The model test of the ledger and the payout against DynamoDB Local: random claims,
// approvals, rejections, withdrawals, payout failures, retries, worker restarts,
// requisites changes and sweeps, invariants checked after every step. A failure prints
// its seed; TAXFLOW_MODEL_SEED=n reruns it (TAXFLOW_MODEL_SEEDS, _STEPS widen the run).
func TestLedgerModelAgainstDynamoDBLocal(t *testing.T) {
	seeds, steps := envInt("TAXFLOW_MODEL_SEEDS", 16), envInt("TAXFLOW_MODEL_STEPS", 150)
	first := uint64(time.Now().UnixNano() % 1_000_000)
	if s := os.Getenv("TAXFLOW_MODEL_SEED"); s != "" {
		n, _ := strconv.ParseUint(s, 10, 64)
		first, seeds = n, 1
	}
	tables := ledgertest.Tables{Reservations: shared.cfg.Name(ledger.Table), Treasury: shared.cfg.Name(payout.Table),
		Entries: shared.cfg.Name(overpayment.Table), Taxpayers: shared.cfg.Name(taxpayer.Table)}
	nonce := uuid.NewString()[:8]
	start := time.Now()
	var total ledgertest.Stats
	for seed := first; seed < first+uint64(seeds); seed++ {
		st := ledgertest.Run(t, ledgertest.Config{DB: shared.clients.DynamoDB, Tables: tables, Seed: seed, Steps: steps, Nonce: nonce})
		total.Add(st)
	}
	t.Logf("seeds %d-%d × %d steps in %v: %+v", first, first+uint64(seeds)-1, steps, time.Since(start).Round(time.Second), total)
	if total.Paid == 0 || total.Capped == 0 || total.Refused == 0 || total.Voided == 0 {
		t.Fatalf("the model did not reach every outcome: %+v", total)
	}
}

// balanceOf reads the refund ledger's balance of a taxpayer's 2025.
func balanceOf(t *testing.T, inn string) ledger.Balance {
	t.Helper()
	var b ledger.Balance
	if _, err := store.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(ledger.Table),
		map[string]ddbtypes.AttributeValue{"key": store.S(ledger.BalanceKey(inn, 2025))}, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// reservationOf reads a case's reservation.
func reservationOf(t *testing.T, id string) ledger.Reservation {
	t.Helper()
	var r ledger.Reservation
	if _, err := store.Get(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(ledger.Table),
		map[string]ddbtypes.AttributeValue{"key": store.S(ledger.ReservationKey(id))}, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitSettled polls a case until it is paid or rejected (anything else at the end fails).
func (c *apiClient) waitSettled(id string, within time.Duration) workflows.RefundStatus {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		// 503 is the API's "retry later" (a store or the workers recovering from the faults
		// these tests cause): a client retries it until the deadline, as the spec says.
		code, out := c.do("GET", "/v1/refunds/"+id, nil)
		if code == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if code != http.StatusOK {
			c.t.Fatalf("GET %s: %d %s", id, code, out)
		}
		var st workflows.RefundStatus
		if err := json.Unmarshal(out, &st); err != nil {
			c.t.Fatal(err)
		}
		switch st.Status {
		case workflows.RefundPaid, workflows.RefundRejected:
			return st
		case workflows.RefundPayoutFailed, workflows.RefundCancelled:
			c.t.Fatalf("%s ended %s: %+v", id, st.Status, st)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not settled after %v: %+v", id, within, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// claimAll sends the claims at once, each with its supporting document, and waits for
// every case to settle.
func claimAll(t *testing.T, integrator *apiClient, inn string, amounts []int64) []workflows.RefundStatus {
	t.Helper()
	ids := make([]string, len(amounts))
	var wg sync.WaitGroup
	for i, amount := range amounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, id := integrator.create(inn, amount, uuid.NewString())
			if code != http.StatusCreated {
				t.Errorf("claim %d: %d", i, code)
				return
			}
			if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted {
				t.Errorf("upload %d: %d %s", i, code, out)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	out := make([]workflows.RefundStatus, len(ids))
	for i, id := range ids {
		out[i] = integrator.waitSettled(id, 3*time.Minute)
	}
	return out
}

// checkPaidOnce holds the treasury to the ledger: one transfer per paid case, for the
// approved amount, and the balance's paid is their sum.
func checkPaidOnce(t *testing.T, inns map[string]bool, cases []workflows.RefundStatus) (paid int, total int64) {
	t.Helper()
	byCase := treasuryByCase(t)
	for _, st := range cases {
		recs := byCase[st.CaseID]
		switch st.Status {
		case workflows.RefundPaid:
			if len(recs) != 1 || recs[0].Principal != st.Approved || recs[0].Amount != st.Paid || recs[0].TransferID != st.TransferID {
				t.Fatalf("%s paid %d (approved %d); the treasury holds %+v", st.CaseID, st.Paid, st.Approved, recs)
			}
			if r := reservationOf(t, st.CaseID); r.State != contract.ReservationPosted || r.Amount != st.Approved || r.PayoutKey != recs[0].PayoutKey {
				t.Fatalf("%s: reservation %+v", st.CaseID, r)
			}
			paid++
			total += st.Approved
		default:
			if len(recs) != 0 {
				t.Fatalf("%s is %s, yet the treasury holds %+v", st.CaseID, st.Status, recs)
			}
		}
	}
	var ledgerPaid int64
	for inn := range inns {
		b := balanceOf(t, inn)
		if b.Reserved != 0 || b.Paid+b.Reserved > b.Refundable {
			t.Fatalf("balance after settling: %+v", b)
		}
		ledgerPaid += b.Paid
	}
	if ledgerPaid != total {
		t.Fatalf("the ledger says %d paid, the treasury %d", ledgerPaid, total)
	}
	return paid, total
}

// N claims at once for one taxpayer and period, through the API: the total paid never
// exceeds the refundable overpayment, and the right number are paid.
func TestConcurrentClaimsPayAtMostTheOverpayment(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, _, _ := startAPI(t, queue)

	t.Run("issue 12: three claims of 9 000 ₽ against 16 990.74 ₽", func(t *testing.T) {
		inn := newTaxpayer(t, 1_699_074)
		cases := claimAll(t, integrator, inn, []int64{900_000, 900_000, 900_000})
		paid, total := checkPaidOnce(t, map[string]bool{inn: true}, cases)
		capped, refused := 0, 0
		for _, st := range cases {
			if st.Capped {
				capped++
				if !strings.Contains(st.CapReason, "capped to 7990.74 ₽") {
					t.Errorf("cap reason %q", st.CapReason)
				}
			}
			if st.Status == workflows.RefundRejected {
				refused++
				if st.Reservation != contract.ReservationRefused || !strings.Contains(st.Reason, "nothing left to refund") {
					t.Errorf("refused %+v", st)
				}
			}
		}
		if paid != 2 || total != 1_699_074 || capped != 1 || refused != 1 {
			t.Fatalf("paid %d for %d kopecks, %d capped, %d refused", paid, total, capped, refused)
		}
		t.Logf("3 × 900 000 against 1 699 074: paid %d cases, %d kopecks (1 capped, 1 refused)", paid, total)
	})

	t.Run("ten claims of 3 000 ₽ against 16 990.74 ₽", func(t *testing.T) {
		inn := newTaxpayer(t, 1_699_074)
		amounts := make([]int64, 10)
		for i := range amounts {
			amounts[i] = 300_000
		}
		cases := claimAll(t, integrator, inn, amounts)
		paid, total := checkPaidOnce(t, map[string]bool{inn: true}, cases)
		// 5 full claims (1 500 000) and one capped to the remaining 199 074; 4 refused
		if paid != 6 || total != 1_699_074 {
			t.Fatalf("paid %d cases for %d kopecks, want 6 for 1699074", paid, total)
		}
		t.Logf("10 × 300 000 against 1 699 074: paid %d cases, %d kopecks; %d refused", paid, total, len(cases)-paid)
	})
}

// Bad input is a 4xx naming the field; nothing is reserved and no case starts.
func TestBadClaimsStartNothing(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, _, _ := startAPI(t, queue)
	inn := newTaxpayer(t, 500_000)
	other := newTaxpayer(t, 500_000)
	nextYear := time.Now().In(time.FixedZone("MSK", 3*3600)).Year() + 1
	body := func(inn string, period int, amount string) []byte {
		return []byte(fmt.Sprintf(`{"inn":%q,"period":%d,"amount_kopecks":%s,"reason":"overpaid income tax"}`, inn, period, amount))
	}
	// 2024 has payments of another taxpayer only
	if _, err := store.PutNew(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(overpayment.Table), "entry_id",
		contract.LedgerEntry{INN: other, EntryID: "2024#ndfl#1", Kind: "payment", Tax: "ndfl", Period: 2024, Amount: 100_000}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		body  []byte
		want  int
		field string
	}{
		{"negative", body(inn, 2025, "-100"), 400, "amount_kopecks"},
		{"zero", body(inn, 2025, "0"), 400, "amount_kopecks"},
		{"fractional kopecks", body(inn, 2025, "1.5"), 400, "amount_kopecks"},
		{"period in the future", body(inn, nextYear, "100"), 400, "period"},
		{"another taxpayer's period", body(inn, 2024, "100"), 422, "period"},
	} {
		key := uuid.NewString()
		code, out := integrator.do("POST", "/v1/refunds", c.body, "Idempotency-Key", key)
		if code != c.want || !strings.Contains(string(out), `"field":"`+c.field+`"`) {
			t.Errorf("%s: %d %s", c.name, code, out)
		}
	}
	// no refund case of either taxpayer exists (case ids are random: found by subject)
	srv := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	for _, who := range []string{inn, other} {
		q := fmt.Sprintf("TaxflowProcess = 'refund' AND TaxflowSubject = '%s'", srv.Subject(who))
		res, err := shared.temporal.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil || res.GetCount() != 0 {
			t.Errorf("refused claims started cases: %d (%v)", res.GetCount(), err)
		}
	}
	// the same Idempotency-Key with another body: 422 naming the key, the first case untouched
	key := uuid.NewString()
	code, id := integrator.create(inn, 400_000, key)
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	code, out := integrator.do("POST", "/v1/refunds", body(inn, 2025, "450000"), "Idempotency-Key", key)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(out), `"field":"Idempotency-Key"`) {
		t.Fatalf("reused key: %d %s", code, out)
	}
	if st := integrator.status(id); st.Claimed != 400_000 {
		t.Fatalf("the first case changed: %+v", st)
	}
	if b := balanceOf(t, inn); b.Reserved != 0 || b.Paid != 0 {
		t.Fatalf("something was reserved: %+v", b)
	}
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// The back office's verdict reaches a held refund through the API and ends the hold at
// once: paid long before the 5 working days are up.
func TestRequisitesVerdictEndsTheHoldEarly(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, _, _ := startAPI(t, queue)
	base, _, _ := strings.Cut(integrator.base, "|")
	bk, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(), api.Principal{ID: "e2e-back-office", Tenant: "tax-office", Role: api.RoleOperator, Scopes: []string{api.ScopeRequisites}})
	if err != nil {
		t.Fatal(err)
	}
	backOffice := &apiClient{t, base + "|" + bk}

	inn := newTaxpayer(t, 500_000)
	var tp contract.Taxpayer
	tbl := shared.cfg.Name(taxpayer.Table)
	if _, err := store.Get(context.Background(), shared.clients.DynamoDB, tbl, map[string]ddbtypes.AttributeValue{"inn": store.S(inn)}, &tp); err != nil {
		t.Fatal(err)
	}
	newAccount := domain.CompleteAccount("40817810000000054321", tp.Bank.BIK)
	if _, err := store.SetFields(context.Background(), shared.clients.DynamoDB, tbl, map[string]ddbtypes.AttributeValue{"inn": store.S(inn)},
		map[string]any{"pending_bank": contract.BankRequisites{BIK: tp.Bank.BIK, Account: newAccount}}); err != nil {
		t.Fatal(err)
	}
	code, id := integrator.create(inn, 400_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
	held := poll(t, "the payout held", func() workflows.RefundStatus { return integrator.status(id) },
		func(st workflows.RefundStatus) bool { return st.BankHold && st.RequisitesDue != nil })
	if held.Status != workflows.RefundApproved || held.Reservation != contract.ReservationReserved {
		t.Fatalf("held %+v", held)
	}
	heldAt := time.Now()
	code, out := backOffice.do("POST", "/v1/taxpayers/"+inn+"/requisites/verification", []byte(`{"verified":true,"reason":"statement checked"}`))
	var verdict struct {
		Refunds []api.HeldRefund `json:"refunds"`
	}
	if code != http.StatusOK || json.Unmarshal(out, &verdict) != nil || len(verdict.Refunds) != 1 || verdict.Refunds[0].CaseID != id || verdict.Refunds[0].BankHold {
		t.Fatalf("verdict: %d %s", code, out)
	}
	verdictAt := time.Now()
	st := integrator.waitSettled(id, time.Minute)
	paidAt := st.History[len(st.History)-1].At
	if st.Status != workflows.RefundPaid || !paidAt.Before(*held.RequisitesDue) || st.RequisitesEscalated {
		t.Fatalf("paid at %v, hold due %v: %+v", paidAt, held.RequisitesDue, st)
	}
	recs := treasuryByCase(t)[id]
	if len(recs) != 1 || recs[0].Account != newAccount {
		t.Fatalf("transfers %+v", recs)
	}
	t.Logf("held; the verdict answered %v later with the case released; paid %v after the verdict; the hold was due %v",
		verdictAt.Sub(heldAt).Round(time.Millisecond), time.Since(verdictAt).Round(time.Millisecond), held.RequisitesDue.Format(time.DateOnly))
	// a second verdict: nothing is pending any more
	if code, _ := backOffice.do("POST", "/v1/taxpayers/"+inn+"/requisites/verification", []byte(`{"verified":true}`)); code != http.StatusConflict {
		t.Fatalf("second verdict: %d", code)
	}
}

// Faults with real money at stake: at least 50 refunds reach the payout; the worker is
// killed (SIGKILL) in the middle and DynamoDB Local is stopped for 30 s while a new
// worker runs against the outage; then it comes back. Every case ends paid exactly once,
// the treasury holds one transfer per case, and the sums match the ledger.
func TestFaultsWorkerKilledAndDynamoDBStoppedPayEachRefundOnce(t *testing.T) {
	n := envInt("TAXFLOW_FAULT_REFUNDS", 50)
	outage := 30 * time.Second
	st, err := stack.FromEnv(os.Getenv, filepath.Join(moduleDir(), "bin", "taxflow"))
	if err != nil {
		t.Fatal(err)
	}
	queue := "e2e-fault-" + uuid.NewString()
	integrator, _, _ := startAPI(t, queue)
	ids := make([]string, n)
	inns := map[string]bool{}
	for i := range ids {
		inn := newTaxpayer(t, 600_000)
		inns[inn] = true
		code, id := integrator.create(inn, 500_000, uuid.NewString())
		if code != http.StatusCreated {
			t.Fatalf("create %d: %d", i, code)
		}
		ids[i] = id
	}
	// A document is an update the case answers: the uploads wait for the worker.
	codes := make([]int, n)
	var uploads sync.WaitGroup
	for i, id := range ids {
		uploads.Add(1)
		go func() {
			defer uploads.Done()
			codes[i], _ = integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
		}()
	}
	start := time.Now()
	first := startWorkerProcess(t, queue)
	uploads.Wait()
	for i, code := range codes {
		if code != http.StatusAccepted {
			t.Fatalf("upload %d: %d", i, code)
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for transfers(t, ids) < n/5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	_ = first.Wait()
	killedAt := time.Now()
	paidBefore := transfers(t, ids)
	if paidBefore >= n {
		t.Fatalf("every payout was done before the kill (%d): nothing was in the middle", paidBefore)
	}
	if err := st.Stop("dynamodb"); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	t.Cleanup(func() { _ = st.Up(context.Background(), func(string) {}) }) // whatever happens, the stack gets its store back
	startWorkerProcess(t, queue)                                           // works against the outage
	time.Sleep(time.Until(stoppedAt.Add(outage)))
	if err := st.Up(context.Background(), func(string) {}); err != nil {
		t.Fatal(err)
	}
	upAt := time.Now()
	statuses := make([]workflows.RefundStatus, n)
	for i, id := range ids {
		statuses[i] = integrator.waitSettled(id, 6*time.Minute)
		if statuses[i].Status != workflows.RefundPaid || statuses[i].Paid != 500_000 {
			t.Fatalf("%s: %+v", id, statuses[i])
		}
	}
	done := time.Now()
	paid, total := checkPaidOnce(t, inns, statuses)
	byCase := treasuryByCase(t)
	for _, id := range ids {
		if len(byCase[id]) != 1 {
			t.Fatalf("%s: %d transfers", id, len(byCase[id]))
		}
	}
	if paid != n || total != int64(n)*500_000 {
		t.Fatalf("paid %d cases, %d kopecks", paid, total)
	}
	t.Logf("%d refunds: %d paid when the worker was killed at %v; DynamoDB Local down %v; all %d paid once %v after it came back (%v in all); treasury %d transfers, %d kopecks = ledger paid",
		n, paidBefore, killedAt.Sub(start).Round(time.Millisecond), upAt.Sub(stoppedAt).Round(time.Millisecond), n,
		done.Sub(upAt).Round(time.Millisecond), done.Sub(start).Round(time.Millisecond), paid, total)
}
