//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/payout"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

var pdf = []byte("%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")

// newTaxpayer registers an eligible taxpayer with an overpayment of income tax for 2025.
func newTaxpayer(t *testing.T, overpaid int64) string {
	t.Helper()
	ctx := context.Background()
	inn := domain.CompleteINN12(fmt.Sprintf("77%08d", rand.IntN(100_000_000)))
	bik := "044525225"
	tp := contract.Taxpayer{INN: inn, Name: "ПЕТРОВ ИВАН СЕРГЕЕВИЧ", AccountState: "active", Confirmed: true, INNLinked: true,
		Bank: &contract.BankRequisites{BIK: bik, Account: domain.CompleteAccount(fmt.Sprintf("40817810%012d", rand.Int64N(1e12)), bik)}}
	if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		t.Fatal(err)
	}
	for i, e := range []contract.LedgerEntry{
		{INN: inn, EntryID: "2025#ndfl#1", Kind: "charge", Tax: "ndfl", Period: 2025, Amount: 5_000_000},
		{INN: inn, EntryID: "2025#ndfl#2", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 5_000_000 + overpaid},
	} {
		if _, err := store.PutNew(ctx, shared.clients.DynamoDB, shared.cfg.Name(overpayment.Table), "entry_id", e); err != nil {
			t.Fatalf("ledger %d: %v", i, err)
		}
	}
	return inn
}

type apiClient struct {
	t    *testing.T
	base string
}

// startAPI serves the real API handler over the local stack, for cases on queue.
func startAPI(t *testing.T, queue string) (integrator, reviewer *apiClient, keys [2]string) {
	t.Helper()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = queue
	return startAPIServer(t, newServer(t, s))
}

// startAPIServer makes an integrator's and a reviewer's key for the API served at url.
func startAPIServer(t *testing.T, url string) (integrator, reviewer *apiClient, keys [2]string) {
	t.Helper()
	keyStore := api.Keys(shared.cfg, shared.clients)
	ik, err := keyStore.Create(context.Background(), api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	rk, err := keyStore.Create(context.Background(), api.Principal{ID: "e2e-inspector", Tenant: "tax-office", Role: api.RoleReviewer, Scopes: []string{api.ScopeRefundsRead, api.ScopeRefundsDecide}})
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t, url + "|" + ik}, &apiClient{t, url + "|" + rk}, [2]string{ik, rk}
}

// newServer serves the API for the test and returns its base URL.
func newServer(t *testing.T, s *api.Server) string {
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }

func (c *apiClient) do(method, path string, body []byte, headers ...string) (int, []byte) {
	c.t.Helper()
	base, key, _ := strings.Cut(c.base, "|")
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// Say what the body is, as a real client would (the spec requires it).
	if len(body) > 0 && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/octet-stream")
		if json.Valid(body) {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	checkContract(c.t, req, body, resp.StatusCode, resp.Header, b)
	return resp.StatusCode, b
}

func (c *apiClient) create(inn string, amount int64, idem string) (int, string) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"inn": inn, "period": 2025, "amount_kopecks": amount, "reason": "overpaid income tax"})
	code, out := c.do("POST", "/v1/refunds", body, "Idempotency-Key", idem)
	var res struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &res)
	return code, res.CaseID
}

func (c *apiClient) status(id string) workflows.RefundStatus {
	c.t.Helper()
	code, out := c.do("GET", "/v1/refunds/"+id, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", id, code, out)
	}
	var st workflows.RefundStatus
	if err := json.Unmarshal(out, &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

func (c *apiClient) waitStatus(id, want string) workflows.RefundStatus {
	c.t.Helper()
	return poll(c.t, id+" to be "+want, func() workflows.RefundStatus { return c.status(id) },
		func(st workflows.RefundStatus) bool { return st.Status == want })
}

// poll reads until done says so, for at most 90 s; on failure it shows the last read.
func poll[T any](t *testing.T, what string, read func() T, done func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v := read()
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s; last seen %+v", what, v)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// currentStatus reads current_status from a problem document.
func currentStatus(problem []byte) string {
	var p struct {
		CurrentStatus string `json:"current_status"`
	}
	_ = json.Unmarshal(problem, &p)
	return p.CurrentStatus
}

// A document that comes after the decision, while the case still runs (its payout held
// for requisites), is refused by the case: 409 with current_status approved.
func TestRefundLateDocumentWhileRunningOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, _, _ := startAPI(t, queue)
	inn := newTaxpayer(t, 600_000)
	// a change of requisites is pending: the approved payout is held
	pendingBank := map[string]ddbtypes.AttributeValue{"bik": &ddbtypes.AttributeValueMemberS{Value: "044525225"},
		"account": &ddbtypes.AttributeValueMemberS{Value: domain.CompleteAccount("40817810000000000001", "044525225")}}
	if _, err := shared.clients.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(shared.cfg.Name(taxpayer.Table)),
		Key: map[string]ddbtypes.AttributeValue{"inn": &ddbtypes.AttributeValueMemberS{Value: inn}}, UpdateExpression: aws.String("SET pending_bank = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberM{Value: pendingBank}}}); err != nil {
		t.Fatal(err)
	}
	code, id := integrator.create(inn, 500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf); code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, out)
	}
	poll(t, id+" to be held", func() workflows.RefundStatus { return integrator.status(id) },
		func(st workflows.RefundStatus) bool { return st.Status == workflows.RefundApproved && st.BankHold })
	code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=late-statement", pdf)
	if code != http.StatusConflict || currentStatus(out) != workflows.RefundApproved {
		t.Fatalf("document after the decision: %d %s, want 409 with current_status approved", code, out)
	}
	if st := integrator.status(id); st.Status != workflows.RefundApproved || len(st.Documents) != 1 {
		t.Fatalf("after the late document: %s, documents %+v", st.Status, st.Documents)
	}
}

// Create a refund over HTTP, upload a real PDF into S3, decide, see it paid, and read
// the audit journal with every transition.
func TestRefundEndToEndOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, reviewer, _ := startAPI(t, queue)
	inn := newTaxpayer(t, 3_000_000)
	idem := uuid.NewString()

	code, id := integrator.create(inn, 2_500_000, idem)
	if code != http.StatusCreated || id == "" {
		t.Fatalf("create: %d", code)
	}
	// The same key and body: the original answer again (IETF Idempotency-Key draft).
	if code, again := integrator.create(inn, 2_500_000, idem); code != http.StatusCreated || again != id {
		t.Fatalf("same Idempotency-Key: %d %s, want the original 201 %s", code, again, id)
	}
	if code, _ := integrator.create(inn, 9_999, idem); code != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other request: %d, want 422", code)
	}
	if code, out := reviewer.do("POST", "/v1/refunds/"+id+"/decision", []byte(`{"approve":true}`)); code != http.StatusConflict ||
		(currentStatus(out) != workflows.RefundReceived && currentStatus(out) != workflows.RefundAwaitingInfo) {
		t.Fatalf("decision before review: %d %s, want 409 with the current status", code, out)
	}
	integrator.waitStatus(id, workflows.RefundAwaitingInfo)

	code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, out)
	}
	integrator.waitStatus(id, workflows.RefundInReview)
	stored, err := shared.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(shared.cfg.Name(document.Bucket)), Key: aws.String(document.StoredKey(id, "statement"))})
	if err != nil || stored.ServerSideEncryption != s3types.ServerSideEncryptionAes256 || aws.ToInt64(stored.ContentLength) != int64(len(pdf)) {
		t.Fatalf("document in S3: %+v %v", stored, err)
	}
	if code, _ := integrator.do("POST", "/v1/refunds/"+id+"/decision", []byte(`{"approve":true}`)); code != http.StatusForbidden {
		t.Fatalf("an integrator decided: %d, want 403", code)
	}
	if code, out := reviewer.do("POST", "/v1/refunds/"+id+"/decision", []byte(`{"approve":false}`)); code != http.StatusBadRequest {
		t.Fatalf("rejection without a reason: %d %s, want 400", code, out)
	}
	if code, out := reviewer.do("POST", "/v1/refunds/"+id+"/decision", []byte(`{"approve":true,"reason":"statement confirms it"}`)); code != http.StatusOK {
		t.Fatalf("decision: %d %s", code, out)
	}
	st := integrator.waitStatus(id, workflows.RefundPaid)
	if st.Paid != 2_500_000 || st.TransferID == "" || st.Label != "Перечислено" {
		t.Fatalf("paid %+v", st)
	}
	if code, out := integrator.do("POST", "/v1/refunds/"+id+"/withdraw", nil); code != http.StatusConflict || currentStatus(out) != workflows.RefundPaid {
		t.Fatalf("withdraw after payout: %d %s, want 409 with current_status paid", code, out)
	}
	// A document after the decision is answered, not dropped: 409 with the case's status,
	// and nothing of the upload stays in incoming/.
	if code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=late-statement", pdf); code != http.StatusConflict ||
		currentStatus(out) != workflows.RefundPaid {
		t.Fatalf("document after the decision: %d %s, want 409 with current_status paid", code, out)
	}
	if _, err := shared.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(shared.cfg.Name(document.Bucket)), Key: aws.String(document.IncomingKey(id, "late-statement"))}); err == nil {
		t.Fatal("the refused upload was left in incoming/")
	}
	if st := integrator.status(id); st.Status != workflows.RefundPaid || len(st.Documents) != 1 {
		t.Fatalf("after the late document: %s, documents %+v", st.Status, st.Documents)
	}

	code, out = integrator.do("GET", "/v1/refunds/"+id+"/journal", nil)
	var j struct {
		Entries []contract.AuditEntry `json:"entries"`
	}
	if code != http.StatusOK || json.Unmarshal(out, &j) != nil {
		t.Fatalf("journal: %d %s", code, out)
	}
	var transitions []string
	for _, e := range j.Entries {
		if e.Action == "status_changed" {
			transitions = append(transitions, e.From+">"+e.To)
		}
	}
	want := ">received,received>awaiting_info,awaiting_info>in_review,in_review>approved,approved>paid"
	if strings.Join(transitions, ",") != want {
		t.Fatalf("journal transitions %v, want %s", transitions, want)
	}
	if strings.Contains(string(out), inn) {
		t.Fatal("the journal holds the INN")
	}
	// Personal data rests in Temporal's history only encrypted.
	it := shared.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		if strings.Contains(ev.String(), inn) {
			t.Fatalf("history event %d (%s) holds the INN in clear text", ev.GetEventId(), ev.GetEventType())
		}
	}
	if events < 10 {
		t.Fatalf("only %d history events read", events)
	}
}

func TestPresignedUploadEnforcesSize(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	integrator, _, _ := startAPI(t, queue)
	inn := newTaxpayer(t, 500_000)
	_, id := integrator.create(inn, 400_000, uuid.NewString())
	code, out := integrator.do("POST", "/v1/refunds/"+id+"/documents/upload-url", []byte(fmt.Sprintf(`{"size_bytes":%d}`, len(pdf))))
	if code != http.StatusOK {
		t.Fatalf("upload-url: %d %s", code, out)
	}
	var ps struct {
		DocID    string              `json:"doc_id"`
		URL      string              `json:"url"`
		Headers  map[string][]string `json:"headers"`
		Complete string              `json:"complete"`
	}
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) int {
		req, _ := http.NewRequest("PUT", ps.URL, bytes.NewReader(b))
		for k, v := range ps.Headers {
			if !strings.EqualFold(k, "host") {
				req.Header[k] = v
			}
		}
		req.ContentLength = int64(len(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(append(pdf, []byte("extra bytes beyond the declared size")...)); code == http.StatusOK {
		t.Fatal("S3 accepted an upload larger than the declared size")
	}
	if code := put(pdf); code != http.StatusOK {
		t.Fatalf("upload of the declared size: %d", code)
	}
	if code, out := integrator.do("POST", ps.Complete, nil); code != http.StatusAccepted {
		t.Fatalf("complete: %d %s", code, out)
	}
	if st := integrator.waitStatus(id, workflows.RefundPaid); len(st.Documents) != 1 || !st.Documents[0].Accepted {
		t.Fatalf("documents %+v", st.Documents)
	}
	if code, _ := integrator.do("POST", "/v1/refunds/"+id+"/documents/upload-url", []byte(`{"size_bytes":10485761}`)); code != http.StatusBadRequest {
		t.Fatalf("upload-url over 10 MB: %d, want 400", code)
	}
}

// Start N refunds, kill the worker process while payouts run, start it again: every
// refund is paid and the treasury holds exactly N transfers.
func TestWorkerCrashDuringPayoutsPaysEachRefundOnce(t *testing.T) {
	const n = 12
	queue := "e2e-crash-" + uuid.NewString()
	integrator, _, _ := startAPI(t, queue)
	ids := make([]string, n)
	for i := range ids {
		inn := newTaxpayer(t, 600_000)
		code, id := integrator.create(inn, 500_000, uuid.NewString())
		if code != http.StatusCreated {
			t.Fatalf("create %d: %d", i, code)
		}
		ids[i] = id
	}
	// A document is an update the case answers, so each upload waits for a worker: they
	// run meanwhile, and all the cases go on together once the worker is up.
	codes := make([]int, n)
	var uploads sync.WaitGroup
	for i, id := range ids {
		uploads.Add(1)
		go func() {
			defer uploads.Done()
			codes[i], _ = integrator.do("POST", "/v1/refunds/"+id+"/documents?doc_id=statement", pdf)
		}()
	}
	first := startWorkerProcess(t, queue)
	// Kill it as soon as the first payouts land, while others run.
	deadline := time.Now().Add(90 * time.Second)
	for transfers(t, ids) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	_ = first.Wait()
	paidBefore := transfers(t, ids)
	startWorkerProcess(t, queue)
	uploads.Wait()
	for i, code := range codes {
		if code != http.StatusAccepted {
			t.Fatalf("upload %d: %d", i, code)
		}
	}
	for _, id := range ids {
		integrator.waitStatus(id, workflows.RefundPaid)
	}
	if got := transfers(t, ids); got != n {
		t.Fatalf("treasury holds %d transfers for %d refunds", got, n)
	}
	t.Logf("killed the worker with %d of %d payouts done; all %d paid once after restart", paidBefore, n, n)
}

// startWorkerProcess runs `taxflow worker` as its own process group on queue.
func startWorkerProcess(t *testing.T, queue string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(moduleDir(), "bin", "taxflow"), "worker")
	cmd.Env = append(append(os.Environ(), "TAXFLOW_TASK_QUEUE="+queue, "TAXFLOW_LOG_LEVEL=warn"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{&mu, &logs}, &lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker (make build first): %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("worker log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	return cmd
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// transfers counts the money that left for the given cases: transferred records of the
// treasury (cancelled keys are not transfers), whatever their payout keys.
func transfers(t *testing.T, ids []string) int {
	t.Helper()
	byCase := treasuryByCase(t)
	n := 0
	for _, id := range ids {
		n += len(byCase[id])
	}
	return n
}

// treasuryByCase reads the treasury's transfers, by case.
func treasuryByCase(t *testing.T) map[string][]payout.Record {
	t.Helper()
	out := map[string][]payout.Record{}
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := shared.clients.DynamoDB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(shared.cfg.Name(payout.Table)),
			ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		var recs []payout.Record
		if err := store.UnmarshalList(page.Items, &recs); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Transferred() {
				out[r.CaseID] = append(out[r.CaseID], r)
			}
		}
		if start = page.LastEvaluatedKey; len(start) == 0 {
			return out
		}
	}
}
