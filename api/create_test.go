package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// startTemporal is Temporal as the create path sees it: a workflow id starts once (a
// second start is WorkflowExecutionAlreadyStarted, running or closed), and Describe
// answers the memo the case started with, before any worker ran it.
type startTemporal struct {
	client.Client
	mu        sync.Mutex
	memos     map[string]*commonpb.Memo
	inputs    map[string]any
	starts    atomic.Int64 // accepted starts
	attempts  atomic.Int64 // every ExecuteWorkflow
	describes atomic.Int64
	// gate, when set, holds every start until it is closed (concurrent retries).
	gate chan struct{}
	// onStart, when set, is called at each start.
	onStart func()
}

func newStartTemporal() *startTemporal {
	return &startTemporal{memos: map[string]*commonpb.Memo{}, inputs: map[string]any{}}
}

func (f *startTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.attempts.Add(1)
	if f.onStart != nil {
		f.onStart()
	}
	if o.WorkflowIDReusePolicy != 3 /* REJECT_DUPLICATE */ || o.WorkflowIDConflictPolicy != 1 /* FAIL */ || !o.WorkflowExecutionErrorWhenAlreadyStarted {
		panic("a create must start with REJECT_DUPLICATE, FAIL and an error when already started")
	}
	memo := &commonpb.Memo{Fields: map[string]*commonpb.Payload{}}
	for k, v := range o.Memo {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		if err != nil {
			return nil, err
		}
		memo.Fields[k] = p
	}
	f.mu.Lock()
	_, taken := f.memos[o.ID]
	if !taken {
		f.memos[o.ID] = memo
		if len(args) > 0 {
			f.inputs[o.ID] = args[0]
		}
		f.starts.Add(1)
	}
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if taken {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("workflow already started", "", "")
	}
	return nil, nil
}

func (f *startTemporal) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.describes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.memos[id]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id}, Memo: m}}, nil
}

// createServer is a server whose refund claims for victimINN in 2025 pass, with keys of
// two tenants (tenantServer) and a Temporal that starts each id once.
func createServer(t *testing.T) (*Server, http.Handler, *startTemporal) {
	t.Helper()
	s, _ := tenantServer(t)
	fake := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"},
		"taxpayers": {PK: "inn"}, "ledger": {PK: "inn", SK: "entry_id"}})
	ctx := context.Background()
	if _, err := store.PutNew(ctx, fake, "taxpayers", "inn", contract.Taxpayer{INN: victimINN, AccountState: "active",
		Bank: &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925982"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNew(ctx, fake, "ledger", "entry_id", contract.LedgerEntry{INN: victimINN, EntryID: "2025#ndfl#1", Kind: "payment", Tax: "ndfl", Period: 2025, Amount: 100_000}); err != nil {
		t.Fatal(err)
	}
	tmp := newStartTemporal()
	s.DB, s.Taxpayers, s.Ledger, s.Temporal = fake, "taxpayers", "ledger", tmp
	return s, s.Handler(), tmp
}

func claimBody(amount int) string {
	return `{"inn":"` + victimINN + `","period":2025,"amount_kopecks":` + itoa(amount) + `,"reason":"overpaid"}`
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// Same key and body: the original answer, byte for byte, from the case's memo; another
// body: 422; another tenant's same key: its own case.
// The case is its owner's at once, another tenant's read is 404, and the case id is a
// UUID that says nothing of the key.
func TestIdempotencyKeyPerTenant(t *testing.T) {
	s, h, tmp := createServer(t)
	first := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "k-1")
	if first.Code != http.StatusCreated || first.Header().Get("Location") == "" {
		t.Fatalf("create: %d %s", first.Code, first.Body)
	}
	id := strings.TrimPrefix(first.Header().Get("Location"), "/v1/refunds/")
	// Right after the 201: the owner comes from the case until its row is written.
	if rec := do(h, "GET", "/v1/refunds/"+id, "beta-integrator", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("another tenant reads the new case: %d %s", rec.Code, rec.Body)
	}
	if tenant, by, found, err := s.CaseOwner(context.Background(), id); err != nil || !found || tenant != "alpha" || by != "alpha/integrator" {
		t.Fatalf("owner right after the 201: %q %q %v %v", tenant, by, found, err)
	}
	again := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "k-1")
	if again.Code != http.StatusCreated || again.Body.String() != first.Body.String() ||
		again.Header().Get("Location") != first.Header().Get("Location") || again.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s / %d %s", first.Code, first.Body, again.Code, again.Body)
	}
	if n := tmp.starts.Load(); n != 1 {
		t.Fatalf("%d cases for one key", n)
	}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(501), "Idempotency-Key", "k-1"); rec.Code != http.StatusUnprocessableEntity || errorOf(t, rec).Code != "idempotency_key_reused" {
		t.Fatalf("same key, other body: %d %s", rec.Code, rec.Body)
	}
	other := do(h, "POST", "/v1/refunds", "beta-integrator", claimBody(500), "Idempotency-Key", "k-1")
	otherID := strings.TrimPrefix(other.Header().Get("Location"), "/v1/refunds/")
	if other.Code != http.StatusCreated || tmp.starts.Load() != 2 || otherID == id || other.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("other tenant: %d %s", other.Code, other.Body)
	}
	for i, c := range []struct{ id, tenant string }{{id, "alpha"}, {otherID, "beta"}} {
		// No owner row yet (the case's first step writes it): the owner is the memo's.
		tenant, by, found, err := s.CaseOwner(context.Background(), c.id)
		if err != nil || !found || tenant != c.tenant || by != c.tenant+"/integrator" {
			t.Fatalf("owner %d of %s: %q %q %v %v", i, c.id, tenant, by, found, err)
		}
		if _, _, found, _ := tasksOwner(s, c.id); found {
			t.Fatal("the API wrote an owner row: a create writes nothing to the store")
		}
		if _, err := uuid.Parse(strings.TrimPrefix(c.id, "refund-")); err != nil || strings.Contains(c.id, "k-1") {
			t.Fatalf("case id %s is not an opaque UUID", c.id)
		}
	}
	// Another operation with the same key is another case.
	if s.caseKeyFor("alpha", "POST /v1/refunds", "k-1") == s.caseKeyFor("alpha", "POST /v1/declarations", "k-1") {
		t.Fatal("one key names the same case id on two operations")
	}
}

// tasksOwner reads the owner row only (no fallback to the case).
func tasksOwner(s *Server, id string) (string, string, bool, error) {
	var o caseOwner
	found, err := store.Get(context.Background(), s.DB, s.Owners, map[string]types.AttributeValue{"case_id": store.S(id)}, &o)
	return o.Tenant, o.CreatedBy, found, err
}

// A refused request starts nothing: its key stays free for the corrected request. A
// request refused after its key named a case (its claim's facts changed since) is
// answered as the retry it is.
func TestIdempotencyRefusedAttemptReleasesTheKey(t *testing.T) {
	s, h, tmp := createServer(t)
	bad := `{"inn":"` + victimINN + `","period":2024,"amount_kopecks":500,"reason":"overpaid"}` // nothing paid in 2024
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", bad, "Idempotency-Key", "k"); rec.Code != http.StatusUnprocessableEntity || errorOf(t, rec).Code != "no_payments_in_period" {
		t.Fatalf("refused claim: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", `{"inn":"1"}`, "Idempotency-Key", "k"); rec.Code != http.StatusBadRequest {
		t.Fatalf("invalid claim: %d %s", rec.Code, rec.Body)
	}
	if tmp.attempts.Load() != 0 {
		t.Fatalf("a refused request reached Temporal: %d starts", tmp.attempts.Load())
	}
	first := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "k")
	if first.Code != http.StatusCreated {
		t.Fatalf("a corrected request after refused ones: %d %s", first.Code, first.Body)
	}
	// The taxpayer's verified requisites change: the same claim with its account would be
	// refused now, yet the same request is still the case it made.
	withAccount := `{"inn":"` + victimINN + `","period":2025,"amount_kopecks":500,"reason":"overpaid","bik":"044525225","account":"40817810938160925982"}`
	made := do(h, "POST", "/v1/refunds", "alpha-integrator", withAccount, "Idempotency-Key", "k2")
	if made.Code != http.StatusCreated {
		t.Fatalf("claim with its account: %d %s", made.Code, made.Body)
	}
	item, _ := store.Marshal(contract.Taxpayer{INN: victimINN, AccountState: "active",
		Bank: &contract.BankRequisites{BIK: "044525225", Account: "40817810938160925983"}})
	if _, err := s.DB.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("taxpayers"), Item: item}); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", withAccount, "Idempotency-Key", "other"); rec.Code != http.StatusConflict {
		t.Fatalf("a new claim with the old account: %d %s", rec.Code, rec.Body)
	}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", withAccount, "Idempotency-Key", "k2"); rec.Code != http.StatusCreated || rec.Body.String() != made.Body.String() ||
		rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retry whose claim would be refused now: %d %s", rec.Code, rec.Body)
	}
	if tmp.starts.Load() != 2 {
		t.Fatal(tmp.starts.Load())
	}
}

// Twenty retries at once: one case, and every answer is the original one.
func TestIdempotencyConcurrentRetriesMakeOneCase(t *testing.T) {
	_, h, tmp := createServer(t)
	tmp.gate = make(chan struct{})
	const n = 20
	answers := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "many")
			answers <- itoa(rec.Code) + " " + rec.Header().Get("Location") + " " + rec.Body.String()
		}()
	}
	for tmp.attempts.Load() < n {
		time.Sleep(time.Millisecond)
	}
	close(tmp.gate)
	wg.Wait()
	close(answers)
	var first string
	for a := range answers {
		if first == "" {
			first = a
		}
		if a != first || !strings.HasPrefix(a, "201 /v1/refunds/refund-") {
			t.Fatalf("answers differ: %q / %q", first, a)
		}
	}
	if tmp.starts.Load() != 1 {
		t.Fatalf("%d cases for one key", tmp.starts.Load())
	}
}

// The process died between the start and its answer (the case exists, its answer was
// never sent): a retry gets the answer the first request would have had, byte for byte,
// even from a server whose configuration changed meanwhile; a case whose memo carries no
// answer (a batch line's) is answered as a create of today would be.
func TestIdempotencyCrashBetweenStartAndAnswer(t *testing.T) {
	s, h, tmp := createServer(t)
	ref, _, _ := createServer(t)
	// The answer a request that lived would have had, from another server (same keys).
	want := do(ref.Handler(), "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "crash")
	// "Start the workflow directly": the same start this server would make, nothing else.
	id := strings.TrimPrefix(want.Header().Get("Location"), "/v1/refunds/")
	tmp.memos[id] = ref.Temporal.(*startTemporal).memos[id]
	s.Policy.DeadlineDays++ // the configuration changed since
	got := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "crash")
	if got.Code != http.StatusCreated || got.Body.String() != want.Body.String() || got.Header().Get("Location") != want.Header().Get("Location") ||
		got.Header().Get("Idempotent-Replayed") != "true" || tmp.starts.Load() != 0 {
		t.Fatalf("retry after a crash: %d %s (want %s), %d new starts", got.Code, got.Body, want.Body, tmp.starts.Load())
	}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(9), "Idempotency-Key", "crash"); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("another body after a crash: %d", rec.Code)
	}
	// A memo without its answer.
	p, _ := converter.GetDefaultDataConverter().ToPayload(createMemo{RequestSHA256: "x", Tenant: "alpha", CreatedBy: "alpha/batch"})
	bare := "refund-" + s.caseKeyFor("alpha", "POST /v1/refunds", "bare")
	tmp.memos[bare] = &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoCreate: p}}
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "bare"); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("another request's case without an answer: %d %s", rec.Code, rec.Body)
	}
	m, _, _ := s.createMemoOf(context.Background(), id)
	m.Answer = nil
	p, _ = converter.GetDefaultDataConverter().ToPayload(m)
	tmp.memos[id] = &commonpb.Memo{Fields: map[string]*commonpb.Payload{memoCreate: p}}
	rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "crash")
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != want.Header().Get("Location") || !strings.Contains(rec.Body.String(), `"deadline_days":`+itoa(s.Policy.DeadlineDays)) {
		t.Fatalf("a case without its answer: %d %s", rec.Code, rec.Body)
	}
}

// A revoked key creates nothing once CreateKeyRevocationBound has passed since it was
// last read; reads refuse it at once.
func TestRevokedKeyRefusedOnCreatesWithinTheBound(t *testing.T) {
	s, h, _ := createServer(t)
	now := time.Now()
	s.hot().keys.now = func() time.Time { return now }
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "before"); rec.Code != http.StatusCreated {
		t.Fatal(rec.Code, rec.Body)
	}
	keys := s.Keys.(*MemoryKeys)
	keys.mu.Lock()
	delete(keys.keys, HashKey("alpha-integrator"))
	keys.mu.Unlock()
	if rec := do(h, "GET", "/v1/refunds/refund-"+uuid.NewString(), "alpha-integrator", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a read with a revoked key: %d", rec.Code)
	}
	now = now.Add(CreateKeyRevocationBound)
	if rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "after"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a create %s after the revocation: %d %s", CreateKeyRevocationBound, rec.Code, rec.Body)
	}
	if CreateKeyRevocationBound > 10*time.Second {
		t.Fatalf("the bound is %s: a revoked key must stop creating within seconds", CreateKeyRevocationBound)
	}
}

// A handler that panics before the start leaves the key free.
func TestIdempotencyPanickedRequestLeavesTheKeyFree(t *testing.T) {
	s, _ := tenantServer(t)
	s.Temporal = newStartTemporal()
	panicNow := true
	h := s.authenticate(s.idempotent("POST /v1/refunds", "refund-", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if panicNow {
			panic("handler bug")
		}
		res, err := startCreate(s, &call[none]{w: w, r: r}, newCase{id: "refund-" + caseKey(r), process: procRefund}, refundCreated(s, "refund-"+caseKey(r)))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeReply(w, res)
	})))
	func() {
		defer func() { _ = recover() }()
		do(h, "POST", "/v1/refunds", "alpha-integrator", `{"amount_kopecks":2}`, "Idempotency-Key", "boom")
	}()
	panicNow = false
	if got := do(h, "POST", "/v1/refunds", "alpha-integrator", `{"amount_kopecks":2}`, "Idempotency-Key", "boom"); got.Code != http.StatusCreated {
		t.Fatalf("after a handler panicked, the key answers %d %s (want it free)", got.Code, got.Body)
	}
}

// The started case carries its request's hash and owner (the memo) and its id is the
// key's: the workflow's own input names the same case.
func TestCreateStartsUnderTheKeysID(t *testing.T) {
	s, h, tmp := createServer(t)
	rec := do(h, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "named")
	id := "refund-" + s.caseKeyFor("alpha", "POST /v1/refunds", "named")
	if rec.Code != http.StatusCreated || rec.Header().Get("Location") != "/v1/refunds/"+id {
		t.Fatalf("%d %s, want case %s", rec.Code, rec.Header().Get("Location"), id)
	}
	if in, ok := tmp.inputs[id].(workflows.RefundWorkflowInput); !ok || in.CaseID != id || in.CreatedBy != "alpha/integrator" ||
		in.Owner == nil || *in.Owner != (contract.CaseOwner{Tenant: "alpha", CreatedBy: "alpha/integrator"}) {
		t.Fatalf("input %+v", tmp.inputs[id])
	}
	m, found, err := s.createMemoOf(context.Background(), id)
	if err != nil || !found || m.Tenant != "alpha" || m.CreatedBy != "alpha/integrator" || len(m.RequestSHA256) != 64 {
		t.Fatalf("memo %+v %v %v", m, found, err)
	}
}

// The test fakes that record starts without their memos answer Describe as Temporal does
// for an id no case has (a create looks its key's case up when its handler refused, and
// identity and declaration creates before their checks).
func notFound() (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, serviceerror.NewNotFound("workflow not found")
}

func (f *listTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return notFound()
}

func (f *caseTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return notFound()
}

func (f *hookTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return notFound()
}

func (f *accountCases) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return notFound()
}

// An identity create counts an attempt and may spend a nonce before its start: its retry
// is answered from the case first, so it counts and spends nothing, even past the rate
// limit; another body is 422 and changes nothing either.
func TestIdentityRetryChangesNothing(t *testing.T) {
	e := fuzzEnv(t)
	tmp := newStartTemporal()
	e.s.Temporal = tmp
	body := mustJSON(map[string]any{"method": "documents", "person": victimPerson(victimSNILS)})
	first := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", "idv")
	if first.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", first.Code, first.Body)
	}
	counted := func() int {
		n := 0
		for _, item := range e.db.Items("idempotency") {
			if strings.HasPrefix(attrString(item["key"]), "rate#") {
				n += int(numberOf(item["attempts"]))
			}
		}
		return n
	}
	before := counted()
	for range IdentityAttemptsPerWindow + 1 {
		again := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", "idv")
		if again.Code != http.StatusCreated || again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry: %d %s", again.Code, again.Body)
		}
	}
	other := mustJSON(map[string]any{"method": "documents", "person": victimPerson(attackerSNILS)})
	if rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", other, "Idempotency-Key", "idv"); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("another body: %d %s", rec.Code, rec.Body)
	}
	if n := counted(); n != before || tmp.starts.Load() != 1 {
		t.Fatalf("retries counted %d attempts and made %d cases", n-before, tmp.starts.Load())
	}
}

func numberOf(v types.AttributeValue) int64 {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		var x int64
		for _, c := range n.Value {
			x = 10*x + int64(c-'0')
		}
		return x
	}
	return 0
}

// A batch line starts its case as a create does: the start is the check, the case carries
// the line's hash and owner (memo, and the input its first step writes the owner row
// from); the same line again reaches the same case, the same external id with other
// content is an error line that starts nothing.
func TestBatchLineStartIsItsCheck(t *testing.T) {
	s, _, tmp := createServer(t)
	up := &batch.Uploader{Principal: "alpha/integrator", Tenant: "alpha", Role: RoleIntegrator, Scopes: RoleScopes[RoleIntegrator]}
	line := batch.Line{No: 2, Kind: "refund", ExternalID: "r1", Hash: "h1", Uploader: up,
		Refund: &contract.RefundRequest{INN: victimINN, Period: 2025, Amount: 100, Reason: "overpaid"}}
	ctx := context.Background()
	res, err := s.StartBatchLine(ctx, "alpha", line)
	if err != nil || res.Outcome != contract.LineCreated {
		t.Fatalf("first: %+v %v", res, err)
	}
	if m, found, err := s.createMemoOf(ctx, res.CaseID); err != nil || !found || m.Tenant != "alpha" || m.RequestSHA256 != "h1" || m.CreatedBy != "alpha/batch" {
		t.Fatalf("memo %+v %v %v", m, found, err)
	}
	if in, ok := tmp.inputs[res.CaseID].(workflows.RefundWorkflowInput); !ok || in.Owner == nil || in.Owner.Tenant != "alpha" {
		t.Fatalf("input %+v", tmp.inputs[res.CaseID])
	}
	if tenant, _, found, err := tasksOwner(s, res.CaseID); err != nil || !found || tenant != "alpha" {
		t.Fatalf("owner row: %q %v %v", tenant, found, err)
	}
	again, err := s.StartBatchLine(ctx, "alpha", line)
	if err != nil || again.Outcome != contract.LineExisting || again.CaseID != res.CaseID {
		t.Fatalf("the same line again: %+v %v", again, err)
	}
	changed := line
	changed.Hash, changed.Refund = "h2", &contract.RefundRequest{INN: victimINN, Period: 2025, Amount: 200, Reason: "overpaid"}
	if got, err := s.StartBatchLine(ctx, "alpha", changed); err != nil || got.Outcome != contract.LineError || !strings.Contains(got.Error, "external_id") {
		t.Fatalf("the same external id, other content: %+v %v", got, err)
	}
	if tmp.starts.Load() != 1 {
		t.Fatalf("%d cases", tmp.starts.Load())
	}
}
