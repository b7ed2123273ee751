// Command lambda runs the intake function under the Lambda runtime: it connects to
// Temporal once per instance and starts a BatchImport per object-created event.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/functions/intake"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/logging"
	"github.com/taxflow/taxflow/internal/temporalclient"
)

func main() {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
	log, err := logging.New(os.Stdout, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
	// The connection is lazy: a cold start does not fail when Temporal is briefly away;
	// the first start does, and the event is delivered again.
	opts, err := temporalclient.Options(cfg.Temporal, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
	lambda.Start(intake.Handler{Temporal: c, TaskQueue: cfg.Temporal.TaskQueue}.Handle)
}
