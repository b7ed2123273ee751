package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
	"github.com/taxflow/taxflow/workflows"
)

func TestDecodeStrict(t *testing.T) {
	type inner struct {
		INN string `json:"inn"`
	}
	type req struct {
		Method string            `json:"method"`
		Person *inner            `json:"person"`
		List   []inner           `json:"list"`
		Extra  map[string]string `json:"extra"`
		Raw    json.RawMessage   `json:"raw"`
		At     time.Time         `json:"at"`
		Amount int64             `json:"amount"`
	}
	for body, want := range map[string]string{
		`{"method":"a"}`: "",
		`{"method":"a","person":{"inn":"1"},"list":[{"inn":"2"}],"extra":{"k":"v"},"raw":{"x":[1]},"amount":5}`: "",
		`{"m\u0065thod":"a"}`:              "", // an escape names the same field for every reader
		`{"method":"a"}}`:                  "after the JSON value",
		`{"method":"a"}]`:                  "after the JSON value",
		`{"method":"a"} {"method":"b"}`:    "after the JSON value",
		`{"method":"a"} x`:                 "after the JSON value",
		"\xEF\xBB\xBF{}":                   "byte order mark",
		"{\"method\":\"\xff\"}":            "not valid UTF-8",
		``:                                 "empty",
		` `:                                "empty",
		`{"method":"a","method":"b"}`:      "method: appears twice",
		`{"person":{"inn":"1","inn":"2"}}`: "person.inn: appears twice",
		`{"list":[{"inn":"1"},{"inn":"1","inn":"2"}]}`: "list[1].inn: appears twice",
		`{"extra":{"k":"1","k":"2"}}`:                  "extra.k: appears twice",
		`{"raw":{"x":1,"x":2}}`:                        "raw.x: appears twice",
		`{"Method":"a"}`:                               "Method: unknown field: field names are case-sensitive (did you mean method?)",
		`{"person":{"INN":"1"}}`:                       "person.INN: unknown field",
		`{"other":1}`:                                  "other: unknown field",
		`{"amount":"5"}`:                               "amount: must be a whole number",
		`{"amount":1.5}`:                               "amount: must be a whole number",
		`{"method":"a"`:                                "ends before",
		`[{"method":"a"}]`:                             "must be",
	} {
		var v req
		err := DecodeStrict([]byte(body), &v)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", body, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: got %v, want %q", body, err, want)
		}
	}
}

// Every route with a JSON body decodes it strictly, through the one decoder: malformed,
// ambiguous or trailing bodies are refused with 400 invalid_json and reach nothing.
func TestEveryJSONRouteDecodesStrictly(t *testing.T) {
	e := newProofEnv(t)
	// Routes whose body is not JSON (a file) or that take none.
	notJSON := map[string]bool{
		"POST /v1/refunds/{id}/documents":                    true,
		"POST /v1/identity-verifications/{id}/documents":     true,
		"POST /v1/declarations":                              true,
		"POST /v1/declarations/{id}/correction":              true,
		"POST /v1/declarations/{id}/documents":               true,
		"POST /v1/identity-verifications/challenges":         true,
		"POST /v1/accounts/{inn}/unblock/specialist-request": true,
		"DELETE /v1/taxpayers/{inn}/consent":                 true,
		"POST /v1/refunds/{id}/documents/{doc}/complete":     true,
		"DELETE /v1/webhooks/{id}":                           true,
		"POST /v1/webhooks/{id}/rotate-secret":               true,
		"POST /v1/webhooks/{id}/enable":                      true,
		"POST /v1/webhooks/{id}/deliveries/{delivery}/retry": true,
	}
	checked := 0
	for _, rt := range routes {
		name := rt.method + " " + rt.path
		if rt.method == "GET" || notJSON[name] {
			continue
		}
		key := ""
		for role, scopes := range RoleScopes {
			if slices.Contains(scopes, rt.scope) && (key == "" || role == RoleIntegrator) {
				key = "alpha-" + role
			}
		}
		path := pathFor(t, e.s, rt.path, true)
		for _, body := range []string{`{}}`, `{"reason":"a","reason":"b"}`, "\xEF\xBB\xBF{}", `{} {}`} {
			rec := do(e.h, rt.method, path, key, body, "Idempotency-Key", "k-"+body)
			if rec.Code != http.StatusBadRequest || errorOf(t, rec).Code != "invalid_json" {
				t.Errorf("%s %q: %d %s", name, body, rec.Code, rec.Body)
			}
		}
		checked++
	}
	if starts, updates := e.tmp.counts(); starts+updates != 0 || checked < 15 {
		t.Fatalf("%d routes checked; %d starts and %d updates from refused bodies", checked, starts, updates)
	}
}

// An e-signature certificate enters a workflow submission in one place only
// (esignSubmission, with the verifier's proof): no other code of the API sets it.
func TestOnlyTheVerifierPutsACertificateInASubmission(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if fd, ok := n.(*ast.FuncDecl); ok && fd.Name.Name == "esignSubmission" {
				return false
			}
			switch x := n.(type) {
			case *ast.CompositeLit:
				if sel, ok := x.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "IdentitySubmission" {
					return true
				}
				for _, el := range x.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if id, ok := kv.Key.(*ast.Ident); ok && (id.Name == "Certificate" || id.Name == "ESignProof") {
							t.Errorf("%s: sets %s outside esignSubmission", fset.Position(kv.Pos()), id.Name)
						}
					}
				}
			case *ast.SelectorExpr:
				if x.Sel.Name == "ESignProof" {
					t.Errorf("%s: touches ESignProof outside esignSubmission", fset.Position(x.Pos()))
				}
			case *ast.AssignStmt:
				for _, l := range x.Lhs {
					if s, ok := l.(*ast.SelectorExpr); ok && s.Sel.Name == "Certificate" {
						t.Errorf("%s: assigns Certificate outside esignSubmission", fset.Position(x.Pos()))
					}
				}
			}
			return true
		})
	}
}

// fuzzNonce is the challenge the fuzz environment has issued to tenant alpha.
const fuzzNonce = "fuzz-nonce-0001"

// fuzzEnv is a fresh API over in-memory stores, with the victim in the registry and
// fuzzNonce issued: every input is judged from the same state, so a failure reproduces.
func fuzzEnv(t *testing.T) *proofEnv {
	t.Helper()
	s, _ := tenantServer(t)
	db := storetest.New(map[string]storetest.Key{"owners": {PK: "case_id"}, "idempotency": {PK: "key"}, "taxpayers": {PK: "inn"}})
	tmp := &caseTemporal{}
	s.DB, s.Taxpayers, s.Temporal = db, "taxpayers", tmp
	ctx := context.Background()
	if _, err := store.PutNew(ctx, db, "taxpayers", "inn", contract.Taxpayer{INN: victimINN, SNILS: victimSNILS, Consent: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNew(ctx, db, "idempotency", "key", challenge{Key: "nonce#" + fuzzNonce, Tenant: "alpha", ExpiresAt: time.Now().Add(time.Hour).Unix()}); err != nil {
		t.Fatal(err)
	}
	return &proofEnv{s: s, h: s.Handler(), db: db, tmp: tmp}
}

// reference reads a body the other way: into generic JSON (numbers kept as written),
// then the fields by their exact names. It is what a second, independent reader of the
// request would take it to say.
type reference struct {
	Method, INN, Nonce string
	Certificate        []byte
	Signature          []byte
}

func referenceOf(body []byte) (reference, bool) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return reference{}, false
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	var ref reference
	ref.Method, ref.Nonce = str(m, "method"), str(m, "nonce")
	if p, ok := m["person"].(map[string]any); ok {
		ref.INN = str(p, "inn")
	}
	var err error
	if c := str(m, "certificate"); c != "" {
		if ref.Certificate, err = decodeB64(c); err != nil {
			return reference{}, false
		}
	}
	if s := str(m, "signature"); s != "" {
		if ref.Signature, err = decodeB64(s); err != nil {
			return reference{}, false
		}
	}
	return ref, true
}

func decodeB64(s string) ([]byte, error) {
	var b []byte
	err := json.Unmarshal([]byte(`"`+s+`"`), &b)
	return b, err
}

// FuzzOneParse feeds bodies to POST /v1/identity-verifications through the whole chain
// (authentication, idempotency, the handler's rate limit, proof and start) and asserts
// that every check and the handler saw the same request, the one an independent reader
// finds in the body — or that the body was refused (400) and nothing happened: no
// attempt counted, no nonce spent, no key kept, nothing started.
func FuzzOneParse(f *testing.F) {
	f.Add([]byte(mustJSON(map[string]any{"method": "documents", "person": victimPerson(victimSNILS)})))
	f.Fuzz(func(t *testing.T, body []byte) {
		e := fuzzEnv(t)
		var strict CreateIdentityRequest
		strictErr := DecodeStrict(body, &strict)
		rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", string(body), "Idempotency-Key", "fuzz")
		starts, _ := e.tmp.counts()
		var used, counted, kept int
		for _, item := range e.db.Items("idempotency") {
			switch k := attrString(item["key"]); {
			case strings.HasPrefix(k, "used#"):
				used++
			case strings.HasPrefix(k, "rate#"):
				counted++
			case strings.HasPrefix(k, "alpha#"):
				if attrString(item["state"]) != "failed" {
					kept++
				}
			}
		}
		if strictErr != nil {
			if rec.Code != http.StatusBadRequest || errorOf(t, rec).Code != "invalid_json" || starts+used+counted+kept != 0 {
				t.Fatalf("a body the decoder refuses (%v): %d %s; %d starts, %d nonces spent, %d attempts counted, %d keys kept",
					strictErr, rec.Code, rec.Body, starts, used, counted, kept)
			}
			return
		}
		// Accepted: an independent reader finds the same request, and so would the lenient
		// decoder the old middleware used (no body means one thing to one reader and
		// another to the next).
		ref, ok := referenceOf(body)
		if !ok || ref.Method != strict.Method || ref.INN != strict.Person.INN || ref.Nonce != strict.Nonce ||
			!bytes.Equal(ref.Certificate, strict.Certificate) || !bytes.Equal(ref.Signature, strict.Signature) {
			t.Fatalf("the decoder took %+v, an independent reader %+v (%v)", strict, ref, ok)
		}
		var lenient CreateIdentityRequest
		if err := json.Unmarshal(body, &lenient); err != nil || !reflect.DeepEqual(lenient, strict) {
			t.Fatalf("json.Unmarshal reads %+v (%v), the decoder %+v", lenient, err, strict)
		}
		// The idempotency hash covers the decoded request.
		canonical, _ := canonicalJSON(&strict)
		h := sha256.New()
		h.Write([]byte("\x00\x00\x00"))
		h.Write(canonical)
		// A started case carries the hash in its memo; a refused request keeps nothing.
		if starts == 1 {
			m, _ := e.tmp.memos[0][memoCreate].(createMemo)
			if m.RequestSHA256 != hex.EncodeToString(h.Sum(nil)) || m.Tenant != "alpha" || m.Answer == nil || m.Answer.Status != http.StatusCreated {
				t.Fatalf("the case's memo %+v: not the hash of the decoded request, or no answer", m)
			}
		}

		// The rate limit counted the decoded request's taxpayer, if it got that far.
		for _, item := range e.db.Items("idempotency") {
			if k := attrString(item["key"]); strings.HasPrefix(k, "rate#") && !strings.HasPrefix(k, "rate#identity#"+e.s.Subject(ref.INN)+"#") {
				t.Fatalf("an attempt counted for another taxpayer than the request's")
			}
		}
		// A started case carries the decoded request; an e-signature one the proof of the
		// decoded nonce, and only the certificate of the body.
		if starts == 1 {
			in := e.tmp.starts[0].(workflows.IdentityWorkflowInput)
			if in.Method != ref.Method || in.Submission.Person.INN != ref.INN {
				t.Fatalf("started %+v for a body saying %+v", in, ref)
			}
			if ref.Method == contract.MethodESignature {
				if in.Submission.ESignProof == nil || in.Submission.ESignProof.Nonce != ref.Nonce || !bytes.Equal(in.Submission.Certificate, ref.Certificate) || used != 1 {
					t.Fatalf("an e-signature case started without the decoded proof: %+v", in.Submission)
				}
			}
		}
	})
}

// fuzzKey reads the victim's key the fuzz seeds were signed with.
func fuzzKey(t testing.TB) *ecdsa.PrivateKey {
	b, err := os.ReadFile("testdata/proof/victim.key")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The seed corpus holds a valid e-signature body: its proof verifies in the fuzz
// environment, so the fuzzer starts from a request that reaches the workflow.
func TestFuzzSeedStartsAVerification(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzOneParse/valid-esignature")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSuffix(strings.SplitN(string(b), "\n", 2)[1], "\n")
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(body, "[]byte("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	e := fuzzEnv(t)
	if rec := do(e.h, "POST", "/v1/identity-verifications", "alpha-integrator", s, "Idempotency-Key", "seed"); rec.Code != http.StatusCreated {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	in := e.tmp.starts[0].(workflows.IdentityWorkflowInput)
	cert, _ := esign.Parse(in.Submission.Certificate)
	if err := esign.CheckPossession(cert, []byte(fuzzNonce), in.Submission.ESignProof.Signature); err != nil || !fuzzKey(t).PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("the seed's proof: %v", err)
	}
}
