package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/subject"
)

// The case-id key is pinned: the first create records the anchor's fingerprint; a
// process whose anchor moved (the anchor's version dropped, or an older one added back)
// refuses creates, starting nothing, while its reads go on; removing the pin on purpose
// is the operator's (docs/operators.md), not the API's.
func TestCaseIDKeyIsPinnedAcrossKeyrings(t *testing.T) {
	a, _, tmp := createServer(t)
	a.Subjects = testSubjects(2) // v2 current, v1 previous: the anchor is v1
	ha := a.Handler()
	if rec := do(ha, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "pin-1"); rec.Code != http.StatusCreated {
		t.Fatalf("first create: %d %s", rec.Code, rec.Body)
	}
	var pin anchorPin
	key := map[string]types.AttributeValue{"key": store.S(anchorPinKey)}
	if found, err := store.Get(context.Background(), a.DB, a.Idempotency, key, &pin); err != nil || !found || pin.Version != 1 || len(pin.Fingerprint) != 32 {
		t.Fatalf("the pin after the first create: %+v %v %v", pin, found, err)
	}
	if strings.Contains(pin.Fingerprint, "01010101") {
		t.Fatalf("the pin shows the key: %+v", pin)
	}

	// Another process on the same tables whose keyring lost v1: its anchor is v2.
	b := sharing(t, a)
	v2, err := subject.Parse(keyVersion(2), "")
	if err != nil {
		t.Fatal(err)
	}
	b.Subjects = v2
	hb := b.Handler()
	starts := tmp.starts.Load()
	rec := do(hb, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "pin-1")
	if rec.Code != http.StatusServiceUnavailable || tmp.starts.Load() != starts {
		t.Fatalf("a create under a moved anchor: %d %s, %d starts", rec.Code, rec.Body, tmp.starts.Load()-starts)
	}
	if err := b.caseIDKeyPinned(context.Background()); err == nil || !strings.Contains(err.Error(), "anchor v2, recorded v1") {
		t.Fatalf("the refusal: %v", err)
	}
	// A later rotation that keeps v1 among the previous keys keeps the anchor.
	older, err := subject.Parse(keyVersion(3), keyVersion(2)+","+keyVersion(1))
	if err != nil {
		t.Fatal(err)
	}
	c := sharing(t, a)
	c.Subjects = older
	if err := c.caseIDKeyPinned(context.Background()); err != nil {
		t.Fatalf("a rotation that keeps v1 (v3 current): %v", err)
	}

	// The process on the recorded anchor goes on: a retry of its key is its case's answer.
	if rec := do(ha, "POST", "/v1/refunds", "alpha-integrator", claimBody(500), "Idempotency-Key", "pin-1"); rec.Code != http.StatusCreated ||
		rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retry on the recorded anchor's process: %d %s", rec.Code, rec.Body)
	}
	// The pin moved on purpose (the operator's way: the item replaced): a process that
	// matched keeps creating until its match is due for a re-check, then is refused.
	ctx := context.Background()
	av, err := store.Marshal(anchorPin{Key: anchorPinKey, Version: 2, Fingerprint: anchorFingerprint(v2.Anchor())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(a.Idempotency), Item: av}); err != nil {
		t.Fatal(err)
	}
	if err := a.caseIDKeyPinned(ctx); err != nil {
		t.Fatalf("re-read before its time: %v", err)
	}
	a.hot().pinnedUntil.Store(time.Now().Add(-time.Second).UnixNano())
	if err := a.caseIDKeyPinned(ctx); !errors.Is(err, errAnchorMoved) {
		t.Fatalf("after the re-check interval, under a moved pin: %v", err)
	}
	if err := b.caseIDKeyPinned(ctx); err != nil {
		t.Fatalf("the process on the new anchor: %v", err)
	}
}

// sharing is another API process on a's tables and Temporal, with its own caches.
func sharing(t *testing.T, a *Server) *Server {
	s, _, _ := createServer(t)
	s.DB, s.Idempotency, s.Temporal, s.Subjects = a.DB, a.Idempotency, a.Temporal, a.Subjects
	return s
}

// Processes starting at once on a fresh table record one pin and all agree with it.
func TestCaseIDKeyPinnedOnceByConcurrentFirstCreates(t *testing.T) {
	a, _, _ := createServer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	_ = a.Handler()
	for i := 0; i < 8; i++ {
		s := sharing(t, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.caseIDKeyPinned(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
