// Package invoker calls a function by name, either in this process (the handler behind
// lambda.NewHandler, same JSON encoding as AWS) or through the Lambda Invoke API
// (AWS, LocalStack or the local Lambda host). Both report a function's own failure as
// a *FunctionError, and any failure to reach the function as a plain error.
package invoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/taxflow/taxflow/internal/fnerr"
)

// Invoker runs the function named fn with a JSON payload and returns its JSON result.
type Invoker interface {
	Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error)
}

// FunctionError is a failure reported by the function itself (it ran, and failed).
type FunctionError struct {
	Function string
	Type     string // the Lambda errorType
	Message  string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function %s failed: %s: %s", e.Function, e.Type, e.Message)
}

// Business tells whether the failure is a business refusal that no retry can change.
func (e *FunctionError) Business() bool { return fnerr.IsBusiness(e.Type) }

// ErrUnknownFunction is returned for a function name the invoker does not know.
var ErrUnknownFunction = errors.New("unknown function")

// InProcess runs handlers in this process. The default for unit tests and for
// `TAXFLOW_INVOKER=inprocess`.
type InProcess struct {
	handlers map[string]any
}

// NewInProcess runs each handler function through lambda.NewHandler, so that payloads are
// decoded and results encoded exactly as the Lambda runtime does it.
func NewInProcess(handlers map[string]any) *InProcess {
	p := &InProcess{handlers: make(map[string]any, len(handlers))}
	for name, h := range handlers {
		p.handlers[name] = h
	}
	return p
}

// Invoke runs the handler. A panic inside it is reported like the Lambda runtime
// reports one: as a function error, never as a crash of the caller.
func (p *InProcess) Invoke(ctx context.Context, fn string, payload []byte) (out []byte, err error) {
	raw, ok := p.handlers[fn]
	if !ok {
		return nil, fmt.Errorf("invoke %s: %w", fn, ErrUnknownFunction)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &FunctionError{Function: fn, Type: "Runtime.Panic", Message: fmt.Sprint(r)}
		}
	}()
	// A handler of lambda.NewHandler encodes every result into one buffer of its own
	// and returns a slice of it (the Lambda runtime invokes one at a time). Calls here
	// run concurrently, so each gets a handler, and a buffer, of its own.
	out, err = lambda.NewHandler(raw).Invoke(ctx, payload)
	if err != nil {
		return nil, asFunctionError(fn, err)
	}
	return out, nil
}

// asFunctionError names the error the way the Lambda runtime names it (errorType).
func asFunctionError(fn string, err error) *FunctionError {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return &FunctionError{Function: fn, Type: ie.Type, Message: ie.Message}
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return &FunctionError{Function: fn, Type: t.Name(), Message: err.Error()}
}

// LambdaAPI is the part of the Lambda client the invoker needs.
type LambdaAPI interface {
	Invoke(ctx context.Context, in *awslambda.InvokeInput, opts ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error)
}

// Lambda invokes functions through the Lambda Invoke API. Names are mapped to deployed
// function names by Resolve (for example, adding the deployment's prefix).
type Lambda struct {
	Client  LambdaAPI
	Resolve func(fn string) string
}

// Invoke calls the function synchronously. Invoke answers 200 even when the function
// failed: FunctionError in the output says so, and the payload holds errorType/errorMessage.
func (l *Lambda) Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error) {
	name := fn
	if l.Resolve != nil {
		name = l.Resolve(fn)
	}
	out, err := l.Client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: &name, Payload: payload, ClientContext: clientContext(ctx)})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", fn, err)
	}
	if out.FunctionError == nil {
		return out.Payload, nil
	}
	var body messages.InvokeResponse_Error
	if jerr := json.Unmarshal(out.Payload, &body); jerr != nil || body.Type == "" {
		// An unhandled failure with no readable body (the process died): retryable.
		return nil, &FunctionError{Function: fn, Type: "Runtime." + *out.FunctionError, Message: string(out.Payload)}
	}
	return nil, &FunctionError{Function: fn, Type: body.Type, Message: body.Message}
}
