// Package fn is what every function's lambda/main.go shares: reading configuration,
// building AWS clients and handing the handler to lambda.Start.
package fn

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"

	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/logging"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tracing"
)

// Deps are what handlers are built from.
type Deps struct {
	Config   config.Config
	DynamoDB store.DB
	S3       *s3.Client
	Log      zerolog.Logger
}

// Load builds Deps from the environment (what AWS, LocalStack or the local host set).
func Load(ctx context.Context) (Deps, error) {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return Deps{}, err
	}
	log, err := logging.New(os.Stdout, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return Deps{}, err
	}
	clients, err := awsclient.New(ctx, cfg.AWS, log)
	if err != nil {
		return Deps{}, err
	}
	return Deps{Config: cfg, DynamoDB: clients.DynamoDB, S3: clients.S3, Log: log}, nil
}

// Handler adapts a typed handler so that the errors it returns reach the caller with
// taxflow's error types (see fnerr), in Lambda and in-process alike.
func Handler[In, Out any](h func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		// The function's span continues the caller's trace (internal/tracing).
		ctx, span := tracing.StartFunction(ctx)
		defer span.End()
		out, err := h(ctx, in)
		if err != nil {
			var zero Out
			err = invoker.ToInvokeError(err)
			span.SetStatus(codes.Error, "function error")
			return zero, err
		}
		return out, nil
	}
}

// Start runs the handler that build returns under the Lambda runtime. A function that
// cannot start reports why on stderr and exits, which Lambda reports as an init error.
func Start(build func(Deps) any) {
	d, err := Load(context.Background())
	if err == nil {
		// Spans leave as they end: Lambda may freeze the process before a batch would.
		_, err = tracing.Setup(context.Background(), os.Getenv, "taxflow-function", true)
	}
	if err != nil {
		l := logging.Default()
		l.Fatal().Err(err).Msg("function cannot start")
	}
	lambda.Start(build(d))
}
