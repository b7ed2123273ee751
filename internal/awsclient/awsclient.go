// Package awsclient builds the aws-sdk-go-v2 clients from configuration. The same code
// serves AWS, LocalStack and the local stack: only the endpoints differ.
package awsclient

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	smithylog "github.com/aws/smithy-go/logging"
	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/config"
)

// Clients are the three AWS services taxflow uses.
type Clients struct {
	S3       *s3.Client
	DynamoDB *dynamodb.Client
	Lambda   *lambda.Client
}

// New loads credentials through the standard chain and points each client at its endpoint.
// The SDK's own log lines go to log at debug level (DynamoDB Local, for one, makes the SDK
// warn about response checksums on every error answer).
func New(ctx context.Context, c config.AWS, log zerolog.Logger) (*Clients, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.Region),
		awsconfig.WithLogger(sdkLogger{log.With().Str("component", "aws-sdk").Logger()}))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return &Clients{
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			if ep := c.S3(); ep != "" {
				o.BaseEndpoint = aws.String(ep)
				// Local S3 servers have no per-bucket DNS names.
				o.UsePathStyle = true
			}
		}),
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if ep := c.DynamoDB(); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
		}),
		Lambda: lambda.NewFromConfig(cfg, func(o *lambda.Options) {
			if ep := c.Lambda(); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
			// Temporal owns retries of a step; a second SDK attempt would hide a
			// timeout from it and could run the function twice per activity attempt.
			o.RetryMaxAttempts = 1
		}),
	}, nil
}

type sdkLogger struct{ l zerolog.Logger }

func (s sdkLogger) Logf(_ smithylog.Classification, format string, v ...any) {
	s.l.Debug().Msgf(format, v...)
}
