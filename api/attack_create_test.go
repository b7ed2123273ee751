package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
)

// barrierTemporal holds the first n Describes until n have arrived: n requests with one
// key all look their case up before any of them starts it (retries sent at once, as a
// client that timed out and retried while its first request was still running).
type barrierTemporal struct {
	*startTemporal
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (b *barrierTemporal) DescribeWorkflowExecution(ctx context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	res, err := b.startTemporal.DescribeWorkflowExecution(ctx, id, run)
	b.mu.Lock()
	if b.waiting > 0 {
		b.waiting--
		if b.waiting == 0 {
			close(b.release)
		}
		b.mu.Unlock()
		<-b.release
	} else {
		b.mu.Unlock()
	}
	return res, err
}

// Retries of one identity create sent at once are one attempt: they make one case and
// count one attempt against the taxpayer, like retries sent one after the other — else a
// client's retries exhaust the taxpayer's attempts and refuse its next, real one.
func TestIdentityConcurrentRetriesCountOneAttempt(t *testing.T) {
	const n = 3
	e := fuzzEnv(t)
	tmp := &barrierTemporal{startTemporal: newStartTemporal(), waiting: n, release: make(chan struct{})}
	e.s.Temporal = tmp
	body := mustJSON(map[string]any{"method": "documents", "person": victimPerson(victimSNILS)})
	answers := make([]string, n)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", "idv-at-once")
			answers[i] = http.StatusText(rec.Code) + " " + rec.Body.String()
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if !strings.HasPrefix(a, "Created ") || a != answers[0] {
			t.Fatalf("retries at once: %q and %q", answers[0], a)
		}
	}
	counted := 0
	for _, item := range e.db.Items("idempotency") {
		if strings.HasPrefix(attrString(item["key"]), "rate#") {
			counted += int(numberOf(item["attempts"]))
		}
	}
	if counted != 1 || tmp.starts.Load() != 1 {
		t.Fatalf("%d retries at once counted %d attempts and made %d cases, want 1 and 1", n, counted, tmp.starts.Load())
	}
	// Another request (another key) for the same taxpayer is an attempt of its own.
	if rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", "idv-next"); rec.Code != http.StatusCreated {
		t.Fatalf("the next request: %d %s", rec.Code, rec.Body)
	}
	counted = 0
	for _, item := range e.db.Items("idempotency") {
		if strings.HasPrefix(attrString(item["key"]), "rate#") {
			counted += int(numberOf(item["attempts"]))
		}
	}
	if counted != 2 {
		t.Fatalf("after another request: %d attempts counted, want 2", counted)
	}
}
