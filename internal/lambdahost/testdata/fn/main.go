// A test function for the local Lambda host: it echoes, sleeps, fails or exits on request.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type in struct {
	Echo    string `json:"echo"`
	SleepMS int    `json:"sleep_ms"`
	Fail    string `json:"fail"`
	Exit    bool   `json:"exit"`
}

type out struct {
	Echo string `json:"echo"`
	PID  int    `json:"pid"`
	Env  string `json:"env"`
	// Custom is the caller's ClientContext custom map, as the runtime hands it over.
	Custom map[string]string `json:"custom,omitempty"`
}

func handle(ctx context.Context, e in) (out, error) {
	if e.Exit {
		os.Exit(3)
	}
	if e.SleepMS > 0 {
		time.Sleep(time.Duration(e.SleepMS) * time.Millisecond)
	}
	if e.Fail != "" {
		return out{}, messages.InvokeResponse_Error{Type: e.Fail, Message: "refused on purpose"}
	}
	o := out{Echo: e.Echo, PID: os.Getpid(), Env: os.Getenv("GREETING")}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		o.Custom = lc.ClientContext.Custom
	}
	return o, nil
}

func main() { lambda.Start(handle) }
