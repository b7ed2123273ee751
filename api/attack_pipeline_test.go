package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// Attacks of the review of the pipeline (pipeline.go, casesvc.go): each one a request, a
// console form or a batch line that reached a case by another rule than the route it
// stands for, or an answer that told a caller more than the route may.

// signalTemporal records the account events that reach Temporal (signal-with-start).
type signalTemporal struct {
	client.Client
	mu     sync.Mutex
	events []contract.AccountEvent
}

func (f *signalTemporal) SignalWithStartWorkflow(_ context.Context, _, _ string, arg any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, arg.(contract.AccountEvent))
	return nil, nil
}

// An account event's time is the caller's but never later than its receipt: a lock runs
// from it (the workflow's lockForFailures), so a time in the future would lock the
// account until then. POST /v1/accounts/{inn}/events clamps it; the batch line standing
// for the same request must too, or a file's `at` of 2099 locks a taxpayer for decades.
func TestBatchEventLineTimeIsClampedLikeTheRoute(t *testing.T) {
	s, h, _ := authzServer(t)
	tmp := &signalTemporal{}
	s.Temporal = tmp
	future := time.Now().UTC().AddDate(70, 0, 0)

	// The route.
	keys := s.Keys.(*MemoryKeys)
	auth, err := ValidatePrincipal(Principal{Tenant: "alpha", Role: RoleAuthSystem})
	if err != nil {
		t.Fatal(err)
	}
	keys.Add("alpha-auth", auth)
	body := mustJSON(map[string]any{"event_id": "e-route", "type": contract.EventLoginFailed, "at": future})
	if rec := do(h, "POST", "/v1/accounts/"+innA+"/events", "alpha-auth", body); rec.Code != http.StatusAccepted {
		t.Fatalf("route: %d %s", rec.Code, rec.Body)
	}

	// The batch line standing for it, from the same principal.
	line := batch.Line{No: 2, Kind: "account_event", ExternalID: "e-line", Uploader: &batch.Uploader{Principal: auth.ID, Tenant: "alpha",
		Role: RoleAuthSystem, Scopes: auth.Scopes}, Event: &batch.EventLine{INN: innA,
		Event: contract.AccountEvent{EventID: "e-line", Type: contract.EventLoginFailed, At: future}}}
	res, err := s.StartBatchLine(context.Background(), "alpha", line)
	if err != nil || res.Outcome != contract.LineDelivered {
		t.Fatalf("line: %+v %v", res, err)
	}

	tmp.mu.Lock()
	defer tmp.mu.Unlock()
	if len(tmp.events) != 2 {
		t.Fatalf("%d events delivered, want 2", len(tmp.events))
	}
	for _, e := range tmp.events {
		if e.At.IsZero() || e.At.After(time.Now().UTC()) {
			t.Errorf("event %s reached the account at %s: a time after its receipt", e.EventID, e.At)
		}
	}
}

// identityUpdate answers a re-submission with the case's status after it: the reasons of
// the mismatch before it, which name the fields that differ from the registry.
type identityUpdate struct {
	caseTemporal
}

func (f *identityUpdate) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	if _, err := f.caseTemporal.UpdateWorkflow(ctx, o); err != nil {
		return nil, err
	}
	return statusUpdate{workflows.IdentityStatus{Status: workflows.IdentityChecking, Attempts: 1,
		Reasons: []string{"passport_number: differs from the registry (registry holds 123457)"}}}, nil
}

type statusUpdate struct {
	v any
}

func (statusUpdate) WorkflowID() string { return "" }
func (statusUpdate) RunID() string      { return "" }
func (statusUpdate) UpdateID() string   { return "" }
func (u statusUpdate) Get(_ context.Context, out any) error {
	return jsonValue(u).Get(out)
}

// Which field of the person data differs from the registry (and so what the registry
// holds) stays with the staff: GET /v1/identity-verifications/{id} answers integrators
// one generic reason (redactReasons). The re-submission's answer is the same case's
// status and must say no more.
func TestResubmitAnswerRedactsTheMismatchReasons(t *testing.T) {
	e := newProofEnv(t)
	tmp := &identityUpdate{caseTemporal: caseTemporal{status: map[string]string{}}}
	e.s.Temporal = tmp
	id := ownedCase(t, e.s, "identity-", "alpha")
	body := mustJSON(map[string]any{"person": victimPerson(victimSNILS)})
	rec := do(e.h, "POST", "/v1/identity-verifications/"+id+"/resubmit", "alpha-integrator", body)
	if rec.Code != http.StatusOK {
		t.Fatalf("resubmit: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "registry holds") || !strings.Contains(rec.Body.String(), GenericMismatch) {
		t.Fatalf("the re-submission answered the integrator the staff's reasons: %s", rec.Body)
	}
}

// Free text a decision carries is bounded as the console bounds it (consoleDecide: the
// reason, the grounds, what is asked for) and as the refund routes bound theirs
// (reasonFits): a longer text is 400 naming the field, and no message reaches the case.
// The declaration's routes took any length the 128 KB body holds into the case's state.
func TestDeclarationFreeTextIsBoundedLikeTheConsole(t *testing.T) {
	s, h := tenantServer(t)
	tmp := &caseTemporal{status: map[string]string{}}
	s.Temporal = tmp
	long := strings.Repeat("я", workflows.MaxReasonChars+1)
	for _, c := range []struct {
		key, path, field string
		body             map[string]any
	}{
		{"alpha-inspector", "/decision", "grounds", map[string]any{"decision": "confirmed", "grounds": long}},
		{"alpha-inspector", "/request-documents", "what", map[string]any{"what": long, "kind": "documents"}},
		{"alpha-integrator", "/appeal", "reason", map[string]any{"reason": long}},
	} {
		id := ownedCase(t, s, "declaration-", "alpha")
		rec := do(h, "POST", "/v1/declarations/"+id+c.path, c.key, mustJSON(c.body))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"`+c.field+`"`) {
			t.Errorf("%s with %d characters of %s: %d %s", c.path, workflows.MaxReasonChars+1, c.field, rec.Code, clip(rec.Body.String()))
		}
	}
	if _, updates := tmp.counts(); updates != 0 {
		t.Fatalf("%d updates reached the cases", updates)
	}
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// A declaration the parser cannot read is refused without echoing what it holds: the
// values of a 3-НДФЛ are personal data (an INN, a passport number in a wrong element),
// and an answer is kept in integrators' logs. The JSON bodies of the API were decoded
// so (jsonProblem); the declaration's parser answered its decoder's message, value and
// all.
func TestUnreadableDeclarationIsNotEchoed(t *testing.T) {
	s, keys := newTestServer()
	keys.Add("declarant-key", Principal{ID: "cabinet", Tenant: "cabinet", Role: RoleIntegrator, Scopes: []string{ScopeDeclarationsWrite, ScopeDeclarationsRead}})
	h := s.Handler()
	const secret = "4509123456"
	for name, c := range map[string]struct{ ct, body string }{
		"xml number":  {"application/xml", `<declaration><inn>500100732259</inn><period>паспорт ` + secret + `</period></declaration>`},
		"json number": {"application/json", `{"inn":"500100732259","period":` + secret + secret + secret + `}`},
		"json string": {"application/json", `{"inn":"500100732259","period":"` + secret + `"}`},
	} {
		rec := do(h, "POST", "/v1/declarations", "declarant-key", c.body, "Idempotency-Key", "k-"+name, "Content-Type", c.ct,
			"X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-check-1")
		if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), secret) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
}
