// Command lambda runs the taxflow API as a Lambda function behind API Gateway (HTTP API,
// payload format 2.0): the same net/http handler as `taxflow api`.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/logging"
	"github.com/taxflow/taxflow/internal/temporalclient"
)

func main() {
	log := logging.Default()
	ctx := context.Background()
	cfg, err := config.Load(os.Getenv)
	if err == nil {
		err = cfg.RequireSubjectKey()
	}
	if err != nil {
		log.Fatal().Err(err).Msg("api cannot start")
	}
	clients, err := awsclient.New(ctx, cfg.AWS, log)
	if err != nil {
		log.Fatal().Err(err).Msg("api cannot start")
	}
	tc, err := temporalclient.Dial(cfg.Temporal, log)
	if err != nil {
		log.Fatal().Err(err).Msg("api cannot start")
	}
	srv := api.New(cfg, clients, tc, log)
	lambda.Start(httpadapter.NewV2(srv.Handler()).ProxyWithContext)
}
