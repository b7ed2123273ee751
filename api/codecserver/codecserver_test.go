package codecserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/codec"
)

const (
	token  = "local-ui-token-0123456789abcdefghijklmnop"
	origin = "http://127.0.0.1:8233"
	inn    = "500100732259"
)

type fixture struct {
	h     http.Handler
	codec *codec.Codec
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	c, err := codec.New(k)
	if err != nil {
		t.Fatal(err)
	}
	keys := &api.MemoryKeys{}
	keys.Add("operator-key", api.Principal{ID: "ops", Scopes: []string{api.ScopeOperate}})
	keys.Add("integrator-key", api.Principal{ID: "cabinet", Scopes: []string{api.ScopeRefundsRead}})
	logs := &bytes.Buffer{}
	h := Handler(Options{Codec: c, Keys: keys, Token: token, Origins: []string{origin, "http://localhost:8233"}, Log: zerolog.New(logs)})
	return fixture{h: h, codec: c, logs: logs}
}

// encrypted is what a workflow's history holds: a JSON value, encrypted by the codec.
func (f fixture) encrypted(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := codec.DataConverter(f.codec).ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func body(t *testing.T, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f fixture) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func decoded(t *testing.T, rec *httptest.ResponseRecorder) []*commonpb.Payload {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer is not Payloads JSON: %v: %s", err, rec.Body)
	}
	return out.Payloads
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error api.Error `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body is not JSON: %s", rec.Body)
	}
	return e.Error.Code
}

func TestDecodeWithEitherCredentialGivesPlaintext(t *testing.T) {
	f := newFixture(t)
	in := body(t, f.encrypted(t, map[string]string{"inn": inn}))
	if strings.Contains(in, inn) {
		t.Fatal("the fixture is not encrypted")
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"token":   f.do("POST", "/codec/"+token+"/decode", in),
		"api key": f.do("POST", "/decode", in, "Authorization", "Bearer operator-key"),
		"scheme":  f.do("POST", "/decode", in, "Authorization", "bearer operator-key"),
	} {
		ps := decoded(t, rec)
		if len(ps) != 1 || string(ps[0].Metadata["encoding"]) != "json/plain" || string(ps[0].Data) != `{"inn":"`+inn+`"}` {
			t.Fatalf("%s: decoded %v", name, ps)
		}
	}
}

func TestEncodeThenDecodeRoundTrips(t *testing.T) {
	f := newFixture(t)
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	enc := decoded(t, f.do("POST", "/codec/"+token+"/encode", body(t, plain)))
	if string(enc[0].Metadata["encoding"]) != "binary/encrypted" || bytes.Contains(enc[0].Data, []byte("hello")) {
		t.Fatalf("not encrypted: %v", enc[0])
	}
	dec := decoded(t, f.do("POST", "/codec/"+token+"/decode", body(t, enc...)))
	if string(dec[0].Data) != `"hello"` {
		t.Fatalf("round trip: %v", dec[0])
	}
}

func TestNoOrWrongCredentialIs401(t *testing.T) {
	f := newFixture(t)
	in := body(t, f.encrypted(t, map[string]string{"inn": inn}))
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"no header":       f.do("POST", "/decode", in),
		"not bearer":      f.do("POST", "/decode", in, "Authorization", "Basic b3BlcmF0b3Ita2V5"),
		"unknown key":     f.do("POST", "/decode", in, "Authorization", "Bearer guessed"),
		"wrong token":     f.do("POST", "/codec/"+strings.ToUpper(token)+"/decode", in),
		"token as bearer": f.do("POST", "/decode", in, "Authorization", "Bearer "+token),
	} {
		if rec.Code != http.StatusUnauthorized || errorCode(t, rec) != "unauthenticated" || strings.Contains(rec.Body.String(), inn) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if rec := f.do("POST", "/decode", in, "Authorization", "Bearer integrator-key"); rec.Code != http.StatusForbidden || errorCode(t, rec) != "forbidden" {
		t.Errorf("a key without the operate scope: %d %s", rec.Code, rec.Body)
	}
}

func TestNoTokenConfiguredRefusesTheTokenRoute(t *testing.T) {
	c, _ := codec.New(make([]byte, 32))
	h := Handler(Options{Codec: c, Log: zerolog.Nop()})
	for _, path := range []string{"/codec/x/decode", "/decode"} {
		req := httptest.NewRequest("POST", path, strings.NewReader(`{"payloads":[]}`))
		req.Header.Set("Authorization", "Bearer anything")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a configured credential: %d", path, rec.Code)
		}
	}
}

func TestUndecryptablePayloadIsAnErrorNotPlaintext(t *testing.T) {
	f := newFixture(t)
	good := f.encrypted(t, map[string]string{"inn": inn})

	tampered := f.encrypted(t, map[string]string{"inn": inn})
	tampered.Data[len(tampered.Data)-1] ^= 1

	k := make([]byte, 32)
	_, _ = rand.Read(k)
	other, _ := codec.New(k)
	foreign, _ := codec.DataConverter(other).ToPayload(map[string]string{"inn": inn})

	truncated := f.encrypted(t, "x")
	truncated.Data = truncated.Data[:4]

	for name, p := range map[string]*commonpb.Payload{"tampered": tampered, "unknown key": foreign, "truncated": truncated} {
		// One bad payload among good ones fails the request: the UI keeps showing ciphertext.
		rec := f.do("POST", "/codec/"+token+"/decode", body(t, good, p))
		if rec.Code < 400 || strings.Contains(rec.Body.String(), inn) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	// A payload without taxflow's encryption metadata was never encrypted: it passes as is.
	plain, _ := converter.GetDefaultDataConverter().ToPayload("not secret")
	if ps := decoded(t, f.do("POST", "/codec/"+token+"/decode", body(t, plain))); string(ps[0].Data) != `"not secret"` {
		t.Fatalf("plain payload: %v", ps)
	}
}

func TestCORSAllowsOnlyTheWebUI(t *testing.T) {
	f := newFixture(t)
	pre := f.do("OPTIONS", "/codec/"+token+"/decode", "", "Origin", origin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-namespace")
	if pre.Code != http.StatusNoContent || pre.Header().Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("preflight from the UI: %d %v", pre.Code, pre.Header())
	}
	for _, h := range []string{"Content-Type", "Authorization", "X-Namespace"} {
		if !strings.Contains(pre.Header().Get("Access-Control-Allow-Headers"), h) {
			t.Errorf("preflight does not allow %s: %v", h, pre.Header())
		}
	}
	if !strings.Contains(pre.Header().Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight does not allow POST: %v", pre.Header())
	}
	// The answer itself, and a 401, are readable by the UI.
	in := body(t, f.encrypted(t, "x"))
	if rec := f.do("POST", "/codec/"+token+"/decode", in, "Origin", origin); rec.Code != 200 || rec.Header().Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("decode from the UI: %d %v", rec.Code, rec.Header())
	}
	if rec := f.do("POST", "/decode", in, "Origin", "http://localhost:8233"); rec.Code != 401 || rec.Header().Get("Access-Control-Allow-Origin") != "http://localhost:8233" {
		t.Errorf("401 from the UI: %d %v", rec.Code, rec.Header())
	}
	// Another origin gets neither the preflight nor an answer.
	for _, rec := range []*httptest.ResponseRecorder{
		f.do("OPTIONS", "/codec/"+token+"/decode", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST"),
		f.do("POST", "/codec/"+token+"/decode", in, "Origin", "http://evil.example"),
		f.do("POST", "/codec/"+token+"/decode", in, "Origin", "http://127.0.0.1:8234"),
	} {
		if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" || errorCode(t, rec) != "origin_not_allowed" {
			t.Errorf("another origin: %d %v %s", rec.Code, rec.Header(), rec.Body)
		}
	}
}

func TestBodyIsBounded(t *testing.T) {
	f := newFixture(t)
	huge := `{"payloads":[{"data":"` + strings.Repeat("A", MaxBody) + `"}]}`
	if rec := f.do("POST", "/codec/"+token+"/decode", huge); rec.Code != http.StatusBadRequest {
		t.Fatalf("an over-long body: %d", rec.Code)
	}
}

func TestLogNeitherTokenNorPayload(t *testing.T) {
	f := newFixture(t)
	decoded(t, f.do("POST", "/codec/"+token+"/decode", body(t, f.encrypted(t, map[string]string{"inn": inn}))))
	f.do("POST", "/codec/wrong-token/decode", "{}")
	logs := f.logs.String()
	if strings.Contains(logs, token) || strings.Contains(logs, "wrong-token") || strings.Contains(logs, inn) {
		t.Fatalf("the log holds a secret: %s", logs)
	}
	if !strings.Contains(logs, `"route":"POST /codec/{token}/decode"`) || !strings.Contains(logs, `"principal":"codec-token"`) {
		t.Fatalf("the log does not say what was called and by whom: %s", logs)
	}
}

type failingKeys struct{}

func (failingKeys) Lookup(context.Context, string) (api.Principal, bool, error) {
	return api.Principal{}, false, errors.New("dynamodb down")
}

func TestKeyStoreOutageIs503(t *testing.T) {
	c, _ := codec.New(make([]byte, 32))
	h := Handler(Options{Codec: c, Keys: failingKeys{}, Log: zerolog.Nop()})
	req := httptest.NewRequest("POST", "/decode", strings.NewReader(`{"payloads":[]}`))
	req.Header.Set("Authorization", "Bearer k")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d", rec.Code)
	}
}
