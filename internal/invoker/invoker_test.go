package invoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/taxflow/taxflow/internal/fnerr"
)

type echoIn struct {
	Say string `json:"say"`
}

func handlers() map[string]any {
	return map[string]any{
		"echo": func(_ context.Context, in echoIn) (echoIn, error) {
			if in.Say == "" {
				return echoIn{}, ToInvokeError(fnerr.Invalid("say", "must not be empty"))
			}
			return in, nil
		},
		"boom":  func(_ context.Context, _ echoIn) (echoIn, error) { panic("broken") },
		"plain": func(_ context.Context, _ echoIn) (echoIn, error) { return echoIn{}, errors.New("store down") },
	}
}

func TestInProcessRoundTrip(t *testing.T) {
	p := NewInProcess(handlers())
	out, err := p.Invoke(context.Background(), "echo", []byte(`{"say":"hi"}`))
	if err != nil || string(out) != `{"say":"hi"}` {
		t.Fatalf("out=%s err=%v", out, err)
	}
}

func TestInProcessErrors(t *testing.T) {
	p := NewInProcess(handlers())
	cases := []struct {
		fn, payload, wantType string
		business              bool
	}{
		{"echo", `{}`, fnerr.TypeInvalidInput, true},
		{"boom", `{}`, "Runtime.Panic", false},
		{"plain", `{}`, "errorString", false},
		{"echo", `not json`, "SyntaxError", false},
	}
	for _, c := range cases {
		_, err := p.Invoke(context.Background(), c.fn, []byte(c.payload))
		var fe *FunctionError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: want FunctionError, got %v", c.fn, err)
		}
		if fe.Type != c.wantType || fe.Business() != c.business {
			t.Errorf("%s(%s): got type %q business %v", c.fn, c.payload, fe.Type, fe.Business())
		}
	}
	if _, err := p.Invoke(context.Background(), "nope", nil); !errors.Is(err, ErrUnknownFunction) {
		t.Fatalf("want ErrUnknownFunction, got %v", err)
	}
}

type fakeLambda struct {
	out *awslambda.InvokeOutput
	err error
	got string
}

func (f *fakeLambda) Invoke(_ context.Context, in *awslambda.InvokeInput, _ ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error) {
	f.got = *in.FunctionName
	return f.out, f.err
}

func TestLambdaReadsFunctionError(t *testing.T) {
	unhandled := "Unhandled"
	body, _ := json.Marshal(map[string]string{"errorType": "Rejected", "errorMessage": "account is blocked"})
	f := &fakeLambda{out: &awslambda.InvokeOutput{StatusCode: 200, FunctionError: &unhandled, Payload: body}}
	l := &Lambda{Client: f, Resolve: func(fn string) string { return "taxflow-" + fn }}
	_, err := l.Invoke(context.Background(), "audit", []byte(`{}`))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Rejected" || !fe.Business() || fe.Message != "account is blocked" {
		t.Fatalf("got %v", err)
	}
	if f.got != "taxflow-audit" {
		t.Fatalf("resolved name %q", f.got)
	}
}

func TestLambdaUnreadableFailureIsRetryable(t *testing.T) {
	unhandled := "Unhandled"
	f := &fakeLambda{out: &awslambda.InvokeOutput{StatusCode: 200, FunctionError: &unhandled, Payload: []byte("killed")}}
	_, err := (&Lambda{Client: f}).Invoke(context.Background(), "audit", nil)
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Business() {
		t.Fatalf("got %v", err)
	}
}

func TestLambdaSuccessAndTransportError(t *testing.T) {
	f := &fakeLambda{out: &awslambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"ok":true}`)}}
	out, err := (&Lambda{Client: f}).Invoke(context.Background(), "audit", nil)
	if err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("out=%s err=%v", out, err)
	}
	f.err = errors.New("connection refused")
	_, err = (&Lambda{Client: f}).Invoke(context.Background(), "audit", nil)
	var fe *FunctionError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("transport error must not look like a function error: %v", err)
	}
}

// Activities invoke one function concurrently: each call must get its own result.
func TestInProcessConcurrentCallsKeepTheirResults(t *testing.T) {
	p := NewInProcess(handlers())
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf(`{"say":"call %d with a longer payload"}`, i)
			out, err := p.Invoke(context.Background(), "echo", []byte(want))
			if err != nil || string(out) != want {
				t.Errorf("call %d: %s %v", i, out, err)
			}
		}()
	}
	wg.Wait()
}
