//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/tasks"
)

// crashTemporal starts the case and loses the answer: an API process that died between
// the start and its answer.
type crashTemporal struct{ client.Client }

func (c crashTemporal) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	if _, err := c.Client.ExecuteWorkflow(ctx, o, wf, args...); err != nil {
		return nil, err
	}
	return nil, errors.New("connection reset: the process died after the start")
}

func refundBody(inn string, amount int64) []byte {
	b, _ := json.Marshal(map[string]any{"inn": inn, "period": 2025, "amount_kopecks": amount, "reason": "overpaid income tax"})
	return b
}

// The start of a case is its create's idempotency check, on the real server: the owner
// reads the case right after the 201 and another tenant gets 404; the same key and body
// again is the original answer; twenty retries at once make one case; another body is 422.
func TestIdempotentCreateStartIsTheCheck(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	first, _, _ := startAPI(t, queue)
	base, _, _ := strings.Cut(first.base, "|")
	otherKey, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(),
		api.Principal{ID: "e2e-idem-other", Tenant: "e2e-idem-other", Role: api.RoleIntegrator})
	if err != nil {
		t.Fatal(err)
	}
	other := &apiClient{t, base + "|" + otherKey}
	inn := newTaxpayer(t, 1_000_000)
	key := uuid.NewString()
	code, created := first.do("POST", "/v1/refunds", refundBody(inn, 100_000), "Idempotency-Key", key)
	var res struct {
		CaseID string `json:"case_id"`
	}
	if err := json.Unmarshal(created, &res); err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, created)
	}
	if code, body := first.do("GET", "/v1/refunds/"+res.CaseID, nil); code != http.StatusOK {
		t.Fatalf("the owner reads its case right after the 201: %d %s", code, body)
	}
	if code, _ := other.do("GET", "/v1/refunds/"+res.CaseID, nil); code != http.StatusNotFound {
		t.Fatalf("another tenant reads the case: %d", code)
	}
	if code, again := first.do("POST", "/v1/refunds", refundBody(inn, 100_000), "Idempotency-Key", key); code != http.StatusCreated || string(again) != string(created) {
		t.Fatalf("same key and body: %d %s, want %s", code, again, created)
	}
	if code, body := first.do("POST", "/v1/refunds", refundBody(inn, 100_001), "Idempotency-Key", key); code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "idempotency_key_reused") {
		t.Fatalf("same key, other body: %d %s", code, body)
	}
	// Twenty at once with a new key: one case, one answer.
	many := uuid.NewString()
	var wg sync.WaitGroup
	answers := make([]string, 20)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := first.do("POST", "/v1/refunds", refundBody(inn, 200_000), "Idempotency-Key", many)
			answers[i] = http.StatusText(code) + " " + string(body)
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a != answers[0] || !strings.HasPrefix(a, "Created ") {
			t.Fatalf("twenty retries at once: %q and %q", answers[0], a)
		}
	}
	// The first step wrote the case's owner row (its first record).
	var manyRes struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal([]byte(strings.TrimPrefix(answers[0], "Created ")), &manyRes)
	deadline := time.Now().Add(time.Minute)
	for {
		tenant, _, found, err := tasks.CaseOwner(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(api.OwnersTable), manyRes.CaseID)
		if err == nil && found && tenant == "e2e-cabinet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("owner row of %s: %q %v %v", manyRes.CaseID, tenant, found, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The process died between the start and its answer, before any worker took the case: a
// retry gets the 201 the first request would have had, from the case; another body 422.
func TestIdempotentCreateAfterACrashBetweenStartAndAnswer(t *testing.T) {
	idle := "e2e-idle-" + uuid.NewString() // no worker polls it: the case never takes a task
	crashing := api.New(shared.cfg, shared.clients, crashTemporal{shared.temporal}, zerolog.Nop())
	crashing.TaskQueue = idle
	dying, _, _ := startAPIServer(t, newServer(t, crashing))
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerolog.Nop())
	s.TaskQueue = idle
	living, _, _ := startAPIServer(t, newServer(t, s))
	inn := newTaxpayer(t, 1_000_000)
	key := uuid.NewString()
	if code, body := dying.do("POST", "/v1/refunds", refundBody(inn, 100_000), "Idempotency-Key", key); code != http.StatusServiceUnavailable {
		t.Fatalf("the dying request: %d %s", code, body)
	}
	code, body := living.do("POST", "/v1/refunds", refundBody(inn, 100_000), "Idempotency-Key", key)
	var res struct {
		CaseID   string `json:"case_id"`
		Status   string `json:"status"`
		Deadline int    `json:"deadline_days"`
	}
	if err := json.Unmarshal(body, &res); err != nil || code != http.StatusCreated || res.Status != "received" || res.Deadline == 0 {
		t.Fatalf("the retry after the crash: %d %s", code, body)
	}
	t.Cleanup(func() { _ = shared.temporal.TerminateWorkflow(context.Background(), res.CaseID, "", "test over") })
	d, err := shared.temporal.DescribeWorkflowExecution(context.Background(), res.CaseID, "")
	if err != nil || d.GetWorkflowExecutionInfo().GetHistoryLength() > 3 {
		t.Fatalf("the case: %v, %d events (want it untouched by any worker)", err, d.GetWorkflowExecutionInfo().GetHistoryLength())
	}
	if code, again := living.do("POST", "/v1/refunds", refundBody(inn, 100_000), "Idempotency-Key", key); code != http.StatusCreated || string(again) != string(body) {
		t.Fatalf("and again: %d %s, want %s", code, again, body)
	}
	if code, _ := living.do("POST", "/v1/refunds", refundBody(inn, 100_001), "Idempotency-Key", key); code != http.StatusUnprocessableEntity {
		t.Fatalf("another body: %d", code)
	}
}
