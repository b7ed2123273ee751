package lambdahost

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/rs/zerolog"
)

// buildZip compiles testdata/fn as "bootstrap" and zips it, as infra apply does.
func buildZip(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/fn")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test function: %v\n%s", err, out)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	zipOnce sync.Once
	zipData []byte
)

func testZip(t *testing.T) []byte {
	zipOnce.Do(func() { zipData = buildZip(t) })
	return zipData
}

func newHost(t *testing.T, max int) (*Host, *lambda.Client) {
	t.Helper()
	h, err := New(Options{Dir: t.TempDir(), MaxInstances: max, QueueTimeout: 5 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	h.SetRuntimeAddr(strings.TrimPrefix(srv.URL, "http://"))
	t.Cleanup(func() { h.Close(); srv.Close() })
	client := lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("k", "s", ""),
		RetryMaxAttempts: 1,
	})
	return h, client
}

func create(t *testing.T, c *lambda.Client, name string, timeout int32) {
	t.Helper()
	_, err := c.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String("arn:aws:iam::000000000000:role/test"),
		Timeout:      aws.Int32(timeout),
		Environment:  &types.Environment{Variables: map[string]string{"GREETING": "privet"}},
		Code:         &types.FunctionCode{ZipFile: testZip(t)},
	})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
}

func invoke(t *testing.T, c *lambda.Client, name, payload string) *lambda.InvokeOutput {
	t.Helper()
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return out
}

func errorBody(t *testing.T, out *lambda.InvokeOutput) (string, string) {
	t.Helper()
	if out.FunctionError == nil || *out.FunctionError != "Unhandled" {
		t.Fatalf("want FunctionError Unhandled, got %v (payload %s)", out.FunctionError, out.Payload)
	}
	var b struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal(out.Payload, &b); err != nil {
		t.Fatalf("error body %s: %v", out.Payload, err)
	}
	return b.ErrorType, b.ErrorMessage
}

func TestInvokeReusesInstanceAndPassesEnvironment(t *testing.T) {
	_, c := newHost(t, 2)
	create(t, c, "echo", 3)
	var first, second struct {
		Echo string
		PID  int
		Env  string
	}
	if err := json.Unmarshal(invoke(t, c, "echo", `{"echo":"a"}`).Payload, &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(invoke(t, c, "echo", `{"echo":"b"}`).Payload, &second); err != nil {
		t.Fatal(err)
	}
	if first.Echo != "a" || second.Echo != "b" || first.Env != "privet" {
		t.Fatalf("got %+v %+v", first, second)
	}
	if first.PID != second.PID {
		t.Fatalf("a warm instance must be reused: pids %d and %d", first.PID, second.PID)
	}
}

// The caller's ClientContext reaches the function as Lambda hands it over: the trace
// context travels in it (internal/invoker, internal/tracing).
func TestClientContextReachesTheFunction(t *testing.T) {
	_, c := newHost(t, 1)
	create(t, c, "echo", 3)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"traceparent":"` + tp + `"}}`))
	out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"echo":"a"}`), ClientContext: &cc})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Custom map[string]string }
	if err := json.Unmarshal(out.Payload, &got); err != nil || got.Custom["traceparent"] != tp {
		t.Fatalf("function saw %s (%v)", out.Payload, err)
	}
	// Without one, the function sees none (and the next invocation does not inherit it).
	var none struct{ Custom map[string]string }
	if err := json.Unmarshal(invoke(t, c, "echo", `{"echo":"b"}`).Payload, &none); err != nil || len(none.Custom) != 0 {
		t.Fatalf("an invocation without ClientContext saw %v (%v)", none.Custom, err)
	}
}

func TestHandlerErrorIsUnhandledWithType(t *testing.T) {
	_, c := newHost(t, 1)
	create(t, c, "echo", 3)
	typ, msg := errorBody(t, invoke(t, c, "echo", `{"fail":"Rejected"}`))
	if typ != "Rejected" || msg != "refused on purpose" {
		t.Fatalf("got %s: %s", typ, msg)
	}
	// the instance survives a handler error
	if out := invoke(t, c, "echo", `{"echo":"x"}`); out.FunctionError != nil {
		t.Fatalf("instance not reusable after a handler error: %s", out.Payload)
	}
}

func TestTimeoutAnsweredLikeAWSAndInstanceReplaced(t *testing.T) {
	_, c := newHost(t, 1)
	create(t, c, "slow", 1)
	typ, msg := errorBody(t, invoke(t, c, "slow", `{"sleep_ms":3000}`))
	if typ != "Sandbox.Timedout" || !strings.Contains(msg, "Task timed out after 1.00 seconds") {
		t.Fatalf("got %s: %s", typ, msg)
	}
	if out := invoke(t, c, "slow", `{"echo":"again"}`); out.FunctionError != nil {
		t.Fatalf("a new instance must replace the timed-out one: %s", out.Payload)
	}
}

func TestCrashedInstanceIsReplaced(t *testing.T) {
	_, c := newHost(t, 1)
	create(t, c, "crashy", 3)
	typ, _ := errorBody(t, invoke(t, c, "crashy", `{"exit":true}`))
	if typ != "Runtime.ExitError" {
		t.Fatalf("got %s", typ)
	}
	if out := invoke(t, c, "crashy", `{"echo":"alive"}`); out.FunctionError != nil {
		t.Fatalf("crashed instance not replaced: %s", out.Payload)
	}
}

func TestInstancesAreBounded(t *testing.T) {
	h, c := newHost(t, 2)
	create(t, c, "busy", 5)
	var wg sync.WaitGroup
	pids := sync.Map{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o struct{ PID int }
			if err := json.Unmarshal(invoke(t, c, "busy", `{"sleep_ms":200}`).Payload, &o); err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			pids.Store(o.PID, true)
		}()
	}
	wg.Wait()
	n := 0
	pids.Range(func(_, _ any) bool { n++; return true })
	if n == 0 || n > 2 {
		t.Fatalf("want 1-2 distinct instances, got %d", n)
	}
	h.mu.Lock()
	running := len(h.instances)
	h.mu.Unlock()
	if running > 2 {
		t.Fatalf("%d instances running, bound is 2", running)
	}
}

func TestControlPlane(t *testing.T) {
	h, c := newHost(t, 1)
	ctx := context.Background()
	_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("want ResourceNotFoundException, got %v", err)
	}
	create(t, c, "f", 3)
	_, err = c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: testZip(t)}})
	var conflict *types.ResourceConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("want ResourceConflictException, got %v", err)
	}
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
	if err != nil || *got.Configuration.Timeout != 3 || got.Configuration.State != types.StateActive || got.Configuration.Environment.Variables["GREETING"] != "privet" {
		t.Fatalf("GetFunction: %+v %v", got, err)
	}
	if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f"),
		Timeout: aws.Int32(7), Environment: &types.Environment{Variables: map[string]string{"GREETING": "zdravstvuj"}}}); err != nil {
		t.Fatal(err)
	}
	var o struct{ Env string }
	if err := json.Unmarshal(invoke(t, c, "f", `{}`).Payload, &o); err != nil {
		t.Fatal(err)
	}
	if o.Env != "zdravstvuj" {
		t.Fatalf("configuration change not applied: %q", o.Env)
	}
	up, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: testZip(t)})
	if err != nil || *up.Timeout != 7 {
		t.Fatalf("UpdateFunctionCode: %+v %v", up, err)
	}
	// a restarted host keeps its functions
	h2, err := New(Options{Dir: h.opts.Dir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := h2.Get("f"); err != nil || cfg.Timeout != 7 {
		t.Fatalf("after restart: %+v %v", cfg, err)
	}
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("bad name!"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: testZip(t)}}); err == nil {
		t.Fatal("invalid name accepted")
	}
	if _, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("nozip"), Role: aws.String("r"),
		Code: &types.FunctionCode{ZipFile: []byte("not a zip")}}); err == nil {
		t.Fatal("a package that is not a zip was accepted")
	}
}
