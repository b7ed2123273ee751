package api

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

// The attacks of a review, each through the real handler chain: with nothing but the
// victim's public certificate, their personal data and an integrator key, no e-signature
// verification may start or be re-submitted, and no account lock lifted.

const (
	victimINN     = "500100732259"
	victimSNILS   = "11223344595"
	attackerSNILS = "08765430300"
)

// caseTemporal records what reaches Temporal: starts (their inputs) and updates.
type caseTemporal struct {
	client.Client
	mu      sync.Mutex
	starts  []any
	memos   []map[string]any
	updates []client.UpdateWorkflowOptions
	status  map[string]string // case or account id → its status, for QueryWorkflow
}

func (f *caseTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, args[0])
	f.memos = append(f.memos, o.Memo)
	return nil, nil
}

func (f *caseTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, o)
	return doneUpdate{}, nil
}

func (f *caseTemporal) counts() (starts, updates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts), len(f.updates)
}

// QueryWorkflow answers a status query with the status set for the case (the identity
// verification waits for a re-submission, the account for an identity unblock, unless
// the test says otherwise).
func (f *caseTemporal) QueryWorkflow(_ context.Context, id, _ string, _ string, _ ...any) (converter.EncodedValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status[id]
	if strings.HasPrefix(id, "identity-") {
		if st == "" {
			st = workflows.IdentityNeedsDocuments
		}
		return jsonValue{workflows.IdentityStatus{CaseID: id, Status: st}}, nil
	}
	if st == "" {
		st = workflows.AccountAwaitingIdentity
	}
	return jsonValue{workflows.AccountStatus{AccountState: workflows.AccountState{Status: st}}}, nil
}

type jsonValue struct{ v any }

func (j jsonValue) HasValue() bool { return true }

func (j jsonValue) Get(ptr any) error {
	b, err := json.Marshal(j.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, ptr)
}

type doneUpdate struct{ client.WorkflowUpdateHandle }

func (doneUpdate) Get(context.Context, any) error { return nil }

type proofEnv struct {
	s        *Server
	h        http.Handler
	db       *storetest.DB
	tmp      *caseTemporal
	ca       *esigntest.CA
	cert     []byte            // the victim's certificate: public
	key      *ecdsa.PrivateKey // the victim's key: the attacker has none
	attacker []byte            // a certificate naming only the attacker's SNILS
	attKey   *ecdsa.PrivateKey
}

func newProofEnv(t *testing.T) *proofEnv {
	t.Helper()
	s, _ := tenantServer(t)
	db := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"}, "taxpayers": {PK: "inn"}})
	tmp := &caseTemporal{status: map[string]string{}}
	s.DB, s.Taxpayers, s.Temporal = db, "taxpayers", tmp
	if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn", contract.Taxpayer{INN: victimINN, SNILS: victimSNILS, Consent: true,
		INNLinked: true, SNILSLinked: true, AccountState: "active"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := esigntest.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	e := &proofEnv{s: s, h: s.Handler(), db: db, tmp: tmp, ca: ca}
	// The tenant's relationship with the taxpayers its requests name (the INN routes'
	// object rule), so a test reaches what it tests.
	for _, inn := range []string{victimINN, "500100732259"} {
		if err := s.relate(context.Background(), "alpha", inn, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if e.cert, e.key, err = ca.IssueWithKey(7, victimINN, victimSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if e.attacker, e.attKey, err = ca.IssueWithKey(9, "", attackerSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	return e
}

func victimPerson(snils string) map[string]any {
	return map[string]any{"inn": victimINN, "snils": snils, "surname": "Семенов", "first_name": "Иван", "patronymic": "Петрович",
		"birth_date": "12.04.1985", "passport_series": "4509", "passport_number": "123456"}
}

func (e *proofEnv) nonce(t *testing.T, key string) string {
	t.Helper()
	rec := do(e.h, "POST", "/v1/identity-verifications/challenges", key, "")
	var out struct{ Nonce string }
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &out) != nil || out.Nonce == "" {
		t.Fatalf("challenge: %d %s", rec.Code, rec.Body)
	}
	return out.Nonce
}

func sign(t *testing.T, key *ecdsa.PrivateKey, nonce string) []byte {
	t.Helper()
	sig, err := esigntest.Sign(key, []byte(nonce))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (e *proofEnv) create(body string) *httpResult {
	rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", body, "Idempotency-Key", uuid.NewString())
	return &httpResult{rec.Code, rec.Body.String()}
}

type httpResult struct {
	code int
	body string
}

// A valid e-signature body with one extra '}' at the end (or another malformed variant)
// was skipped by the proof middleware and the rate limit (they parse with json.Unmarshal
// and let a body they cannot read through) and accepted by the handler (a Decoder reads
// the first value): cases started with the victim's certificate, no nonce, no signature,
// no 429. Every variant is now refused with 400 naming the problem, and starts nothing.
func TestMalformedBodyCannotSkipTheProofOrTheLimit(t *testing.T) {
	e := newProofEnv(t)
	bare := mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert})
	for i := range 8 {
		res := e.create(bare + "}")
		if res.code != http.StatusBadRequest || !strings.Contains(res.body, "after the JSON value") {
			t.Fatalf("attempt %d with a trailing '}': %d %s", i+1, res.code, res.body)
		}
	}
	for name, c := range map[string]struct{ body, want string }{
		"trailing ]":             {bare + "]", "after the JSON value"},
		"trailing space and }":   {bare + " \n}", "after the JSON value"},
		"a second value":         {bare + `{"method":"documents"}`, "after the JSON value"},
		"byte order mark":        {"\xEF\xBB\xBF" + bare, "byte order mark"},
		"duplicate method":       {`{"method":"documents",` + bare[1:], `"field":"method"`},
		"nested duplicate INN":   {strings.Replace(bare, `"inn":"`+victimINN+`"`, `"inn":"773301001060","inn":"`+victimINN+`"`, 1), `"field":"person.inn"`},
		"case variant of method": {strings.Replace(bare, `"method"`, `"Method"`, 1), `"field":"Method"`},
		"case variant of nonce":  {bare[:len(bare)-1] + `,"NONCE":"x"}`, `"field":"NONCE"`},
		"unknown field":          {bare[:len(bare)-1] + `,"proof":"trust me"}`, `"field":"proof"`},
		"invalid UTF-8":          {strings.Replace(bare, "Иван", "\xff\xfe", 1), "not valid UTF-8"},
		"number for a string":    {strings.Replace(bare, `"method":"esignature"`, `"method":1`, 1), `"field":"method"`},
	} {
		res := e.create(c.body)
		if res.code != http.StatusBadRequest || !strings.Contains(res.body, c.want) {
			t.Errorf("%s: %d %s", name, res.code, res.body)
		}
	}
	if starts, _ := e.tmp.counts(); starts != 0 {
		t.Fatalf("%d verifications started by malformed bodies", starts)
	}
	// A certificate with a made-up proof in a well-formed body is refused too, and counts
	// toward the limit.
	guess := mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert, "nonce": "guess", "signature": []byte("sig")})
	for i := 1; i <= IdentityAttemptsPerWindow+1; i++ {
		res := e.create(guess)
		want := http.StatusBadRequest
		if i > IdentityAttemptsPerWindow {
			want = http.StatusTooManyRequests
		}
		if res.code != want {
			t.Fatalf("bare certificate, attempt %d: %d %s", i, res.code, res.body)
		}
	}
	if starts, _ := e.tmp.counts(); starts != 0 {
		t.Fatalf("%d verifications started without a proof", starts)
	}
}

// Start with your own certificate (a mismatch), then re-submit the victim's: the
// re-submission took a certificate with no proof at all. It now needs the proof, checked
// by the same verifier, and the workflow receives the proof with the certificate.
func TestResubmitNeedsProofOfPossession(t *testing.T) {
	e := newProofEnv(t)
	path := pathFor(t, e.s, "/v1/identity-verifications/{id}/resubmit", true)
	id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/identity-verifications/"), "/resubmit")
	n := e.nonce(t, "alpha-integrator")
	for name, body := range map[string]string{
		"bare certificate":     mustJSON(map[string]any{"certificate": e.cert}),
		"made-up proof":        mustJSON(map[string]any{"certificate": e.cert, "nonce": "guess", "signature": []byte("sig")}),
		"another key's proof":  mustJSON(map[string]any{"certificate": e.cert, "nonce": n, "signature": sign(t, e.attKey, n)}),
		"proof without a cert": mustJSON(map[string]any{"nonce": n, "signature": sign(t, e.key, n)}),
	} {
		if rec := do(e.h, "POST", path, "alpha-integrator", body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if _, updates := e.tmp.counts(); updates != 0 {
		t.Fatalf("%d re-submissions reached the case without a proof", updates)
	}
	// A case that does not wait for a re-submission refuses it before the proof is
	// judged: the nonce is not spent.
	e.tmp.mu.Lock()
	e.tmp.status[id] = workflows.IdentityManualReview
	e.tmp.mu.Unlock()
	valid := mustJSON(map[string]any{"certificate": e.cert, "nonce": n, "signature": sign(t, e.key, n)})
	if rec := do(e.h, "POST", path, "alpha-integrator", valid); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"current_status":"manual_review"`) {
		t.Fatalf("a case in review: %d %s", rec.Code, rec.Body)
	}
	e.tmp.mu.Lock()
	delete(e.tmp.status, id)
	e.tmp.mu.Unlock()
	rec := do(e.h, "POST", path, "alpha-integrator", valid)
	if rec.Code != http.StatusOK {
		t.Fatalf("valid proof: %d %s", rec.Code, rec.Body)
	}
	sub, ok := e.tmp.updates[0].Args[0].(workflows.IdentitySubmission)
	if !ok || sub.ESignProof == nil || sub.ESignProof.Nonce != n || sub.ESignProof.CaseID != id || sub.ESignProof.Tenant != "alpha" || len(sub.Certificate) == 0 {
		t.Fatalf("the case got %+v", e.tmp.updates[0].Args)
	}
	// The nonce is spent for this case: another case cannot use it.
	other := pathFor(t, e.s, "/v1/identity-verifications/{id}/resubmit", true)
	if rec := do(e.h, "POST", other, "alpha-integrator", mustJSON(map[string]any{"certificate": e.cert, "nonce": n, "signature": sign(t, e.key, n)})); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "already used") {
		t.Fatalf("replayed on another case: %d %s", rec.Code, rec.Body)
	}
}

// The account's identity unblock decoded the nonce and signature and never checked them:
// a suspicious-activity lock was lifted for any INN.
func TestUnblockByIdentityChecksTheProof(t *testing.T) {
	e := newProofEnv(t)
	path := "/v1/accounts/" + victimINN + "/unblock/identity"
	n := e.nonce(t, "alpha-integrator")
	for name, body := range map[string]string{
		"made-up proof":       mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert, "nonce": "made-up", "signature": []byte("AAAA")}),
		"bare certificate":    mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert}),
		"another key's proof": mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert, "nonce": n, "signature": sign(t, e.attKey, n)}),
		"trailing }":          mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert}) + "}",
	} {
		if rec := do(e.h, "POST", path, "alpha-integrator", body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if _, updates := e.tmp.counts(); updates != 0 {
		t.Fatalf("%d identity unblocks reached the account without a proof", updates)
	}
	valid := mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert, "nonce": n, "signature": sign(t, e.key, n)})
	// An account that is not locked for identity refuses before the proof is judged.
	accountID, _, _ := e.s.AccountID(context.Background(), victimINN)
	e.tmp.mu.Lock()
	e.tmp.status[accountID] = workflows.AccountActive
	e.tmp.mu.Unlock()
	if rec := do(e.h, "POST", path, "alpha-integrator", valid); rec.Code != http.StatusConflict {
		t.Fatalf("an open account: %d %s", rec.Code, rec.Body)
	}
	e.tmp.mu.Lock()
	delete(e.tmp.status, accountID)
	e.tmp.mu.Unlock()
	rec := do(e.h, "POST", path, "alpha-integrator", valid)
	if rec.Code != http.StatusOK {
		t.Fatalf("valid proof: %d %s", rec.Code, rec.Body)
	}
	in, ok := e.tmp.updates[0].Args[0].(workflows.IdentityWorkflowInput)
	if !ok || in.Submission.ESignProof == nil || in.Submission.ESignProof.CaseID != in.CaseID || in.Submission.ESignProof.Nonce != n {
		t.Fatalf("the account got %+v", e.tmp.updates[0].Args)
	}
}

// A certificate naming only a SNILS verified its holder as any INN: it was matched with
// the SNILS the caller submitted. It is now matched with the registry's INN and SNILS.
func TestCertificateIsBoundToTheRegistrysSNILS(t *testing.T) {
	e := newProofEnv(t)
	n := e.nonce(t, "alpha-integrator")
	res := e.create(mustJSON(map[string]any{"method": "esignature", "person": victimPerson(attackerSNILS), "certificate": e.attacker,
		"nonce": n, "signature": sign(t, e.attKey, n)}))
	if res.code != http.StatusBadRequest || !strings.Contains(res.body, `"field":"certificate"`) {
		t.Fatalf("attacker's SNILS-only certificate for the victim's INN: %d %s", res.code, res.body)
	}
	if starts, _ := e.tmp.counts(); starts != 0 {
		t.Fatal("a verification started")
	}
	// The refused request spent nothing: the victim's own proof over the same nonce works.
	res = e.create(mustJSON(map[string]any{"method": "esignature", "person": victimPerson(victimSNILS), "certificate": e.cert,
		"nonce": n, "signature": sign(t, e.key, n)}))
	if res.code != http.StatusCreated {
		t.Fatalf("the victim's own proof: %d %s", res.code, res.body)
	}
	in := e.tmp.starts[0].(workflows.IdentityWorkflowInput)
	if in.Submission.ESignProof == nil || in.Submission.ESignProof.CaseID != in.CaseID {
		t.Fatalf("started without the proof: %+v", in.Submission)
	}
}
