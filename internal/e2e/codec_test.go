//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/workflows"
	"github.com/taxflow/taxflow/workflows/histories"
)

// The codec server as operators meet it: the real `taxflow codec-server` process, on the
// address and with the token the local stack gave the Web UI, decrypts a real refund's
// history for staff only, for the Web UI's origin only, and never passes an undecryptable
// payload through; the Temporal CLI shows the history decoded through it.
func TestCodecServerDecodesHistoryForStaffOnly(t *testing.T) {
	endpoint, token := os.Getenv("TAXFLOW_CODEC_ENDPOINT"), os.Getenv("TAXFLOW_CODEC_TOKEN")
	base := "http://" + os.Getenv("TAXFLOW_CODEC_ADDR")
	if token == "" || endpoint != base+"/codec/"+token {
		t.Fatalf("stack env: TAXFLOW_CODEC_ENDPOINT=%q is not %s/codec/<TAXFLOW_CODEC_TOKEN>", endpoint, base)
	}
	logs := startCodecServer(t, base)

	// The Web UI was started with this endpoint.
	uiOrigin := "http://127.0.0.1:" + os.Getenv("TAXFLOW_TEMPORAL_UI_PORT")
	var settings struct{ Codec struct{ Endpoint string } }
	if code, b := httpDo(t, "GET", uiOrigin+"/api/v1/settings", nil); code != 200 || json.Unmarshal(b, &settings) != nil || settings.Codec.Endpoint != endpoint {
		t.Fatalf("Web UI settings: %d, codec endpoint %q, want the stack's", code, settings.Codec.Endpoint)
	}

	// A refund waiting for documents: its history holds the INN, encrypted.
	queue := startWorker(t, inProcessInvoker())
	integrator, _, keys := startAPI(t, queue)
	inn := newTaxpayer(t, 3_000_000)
	code, id := integrator.create(inn, 2_500_000, uuid.NewString())
	if code != http.StatusCreated {
		t.Fatalf("create refund: %d", code)
	}
	integrator.waitStatus(id, workflows.RefundAwaitingInfo)
	t.Cleanup(func() { integrator.do("POST", "/v1/refunds/"+id+"/withdraw", nil) })
	history := historyPayloads(t, id)
	encrypted := 0
	for _, p := range history {
		if string(p.Metadata["encoding"]) == "binary/encrypted" {
			encrypted++
		}
	}
	req := payloadsJSON(t, history)
	if encrypted < 3 || strings.Contains(payloadText(req), inn) {
		t.Fatalf("history: %d payloads, %d encrypted; INN in clear: %v", len(history), encrypted, strings.Contains(payloadText(req), inn))
	}

	t.Logf("refund %s: %d payloads in its history, %d encrypted", id, len(history), encrypted)

	operator, err := api.Keys(shared.cfg, shared.clients).Create(context.Background(), api.Principal{ID: "e2e-operator", Tenant: "tax-office", Role: api.RoleOperator, Scopes: []string{api.ScopeOperate}})
	if err != nil {
		t.Fatal(err)
	}
	// Staff get plaintext, with either credential.
	for name, call := range map[string][]string{
		"Web UI token":     {endpoint + "/decode"},
		"operator API key": {base + "/decode", "Authorization", "Bearer " + operator},
	} {
		code, b := httpDo(t, "POST", call[0], req, call[1:]...)
		var out commonpb.Payloads
		if code != 200 || protojson.Unmarshal(b, &out) != nil || len(out.Payloads) != len(history) {
			t.Fatalf("%s: %d, %d of %d payloads: %.300s", name, code, len(out.Payloads), len(history), b)
		}
		for i, p := range out.Payloads {
			if string(p.Metadata["encoding"]) == "binary/encrypted" {
				t.Fatalf("%s: payload %d still encrypted", name, i)
			}
		}
		if !strings.Contains(payloadText(b), inn) {
			t.Fatalf("%s: the decoded history does not hold the INN", name)
		}
	}
	// Nobody else does.
	for name, call := range map[string][]string{
		"no credential":       {base + "/decode"},
		"wrong token":         {base + "/codec/" + strings.Repeat("x", len(token)) + "/decode"},
		"token as bearer":     {base + "/decode", "Authorization", "Bearer " + token},
		"unknown API key":     {base + "/decode", "Authorization", "Bearer tfk_guessed"},
		"key without operate": {base + "/decode", "Authorization", "Bearer " + keys[0]},
	} {
		code, b := httpDo(t, "POST", call[0], req, call[1:]...)
		want := http.StatusUnauthorized
		if name == "key without operate" {
			want = http.StatusForbidden
		}
		if code != want || strings.Contains(payloadText(b)+string(b), inn) {
			t.Errorf("%s: %d %.200s, want %d", name, code, b, want)
		}
	}

	// A payload that claims taxflow's encryption but does not decrypt fails the request.
	var sample *commonpb.Payload
	for _, p := range history {
		if string(p.Metadata["encoding"]) == "binary/encrypted" {
			sample = p
		}
	}
	tampered := proto.Clone(sample).(*commonpb.Payload)
	tampered.Data[len(tampered.Data)-1] ^= 1
	unknownKey := proto.Clone(sample).(*commonpb.Payload)
	unknownKey.Metadata["encryption-key-id"] = []byte("000000000000")
	for name, p := range map[string]*commonpb.Payload{"tampered": tampered, "unknown key": unknownKey} {
		code, b := httpDo(t, "POST", endpoint+"/decode", payloadsJSON(t, append([]*commonpb.Payload{}, history[0], p)))
		if code < 400 || strings.Contains(payloadText(b)+string(b), inn) {
			t.Errorf("%s payload: %d %.200s, want an error", name, code, b)
		}
	}

	// CORS: the Web UI's origin may call, with the headers it sends; another may not.
	pre := httpResp(t, "OPTIONS", endpoint+"/decode", nil, "Origin", uiOrigin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-namespace")
	if pre.StatusCode/100 != 2 || pre.Header.Get("Access-Control-Allow-Origin") != uiOrigin ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "x-namespace") {
		t.Errorf("preflight from the Web UI: %d %v", pre.StatusCode, pre.Header)
	}
	other := httpResp(t, "OPTIONS", endpoint+"/decode", nil, "Origin", "http://127.0.0.1:1", "Access-Control-Request-Method", "POST")
	if other.Header.Get("Access-Control-Allow-Origin") != "" || other.StatusCode/100 == 2 {
		t.Errorf("preflight from another origin: %d %v", other.StatusCode, other.Header)
	}

	// The Temporal CLI, a third party's client of the protocol, decodes through it.
	plain := temporalCLI(t, "workflow", "show", "--workflow-id", id, "--detailed")
	viaToken := temporalCLI(t, "workflow", "show", "--workflow-id", id, "--detailed", "--codec-endpoint", endpoint)
	viaKey := temporalCLI(t, "workflow", "show", "--workflow-id", id, "--detailed", "--codec-endpoint", base, "--codec-auth", "Bearer "+operator)
	if strings.Contains(plain, inn) || !strings.Contains(viaToken, inn) || !strings.Contains(viaKey, inn) {
		t.Fatalf("temporal workflow show: INN without codec %v, with the token %v, with an API key %v\n%s",
			strings.Contains(plain, inn), strings.Contains(viaToken, inn), strings.Contains(viaKey, inn), viaToken)
	}

	// The server's log holds neither the token nor what it decrypted.
	if l := logs(); strings.Contains(l, token) || strings.Contains(l, inn) || strings.Contains(l, operator) {
		t.Fatalf("the codec server's log holds a secret:\n%s", l)
	}
}

// startCodecServer runs `taxflow codec-server` (make build) with the stack's environment
// and waits until it answers; it returns the server's log.
func startCodecServer(t *testing.T, base string) func() string {
	t.Helper()
	cmd := exec.Command(filepath.Join(moduleDir(), "bin", "taxflow"), "codec-server")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &lockedWriter{&mu, &logs}, &lockedWriter{&mu, &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start codec server (make build first): %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	read := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("codec server log:\n%s", read())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("codec server exited:\n%s", read())
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return read
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("codec server did not answer on %s:\n%s", base, read())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// historyPayloads is every payload of a workflow's history, as the Web UI would send them
// to be decoded: inputs, results, failures' encoded attributes, headers, memos.
func historyPayloads(t *testing.T, id string) []*commonpb.Payload {
	t.Helper()
	var out []*commonpb.Payload
	it := shared.temporal.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, histories.Payloads(ev)...)
	}
	return out
}

func payloadsJSON(t *testing.T, ps []*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadText is the data of every payload in a Payloads JSON body ("" for any other body).
func payloadText(body []byte) string {
	var ps commonpb.Payloads
	if protojson.Unmarshal(body, &ps) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range ps.Payloads {
		b.Write(p.Data)
		b.WriteByte('\n')
	}
	return b.String()
}

func httpResp(t *testing.T, method, url string, body []byte, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func httpDo(t *testing.T, method, url string, body []byte, headers ...string) (int, []byte) {
	t.Helper()
	resp := httpResp(t, method, url, body, headers...)
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// temporalCLI runs the pinned Temporal CLI against the stack and returns its output.
func temporalCLI(t *testing.T, args ...string) string {
	t.Helper()
	tools := os.Getenv("TAXFLOW_TOOLS")
	if tools == "" {
		tools = filepath.Join(moduleDir(), ".tools")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "--address", shared.cfg.Temporal.Address, "--namespace", shared.cfg.Temporal.Namespace)
	cmd := exec.CommandContext(ctx, filepath.Join(tools, "bin", "temporal"), args...)
	for _, kv := range os.Environ() { // only the flags choose the codec
		if !strings.HasPrefix(kv, "TEMPORAL_CODEC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("temporal %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
