package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/seed"
)

// runSeed loads the demo dataset: taxpayers and their ledgers.
func runSeed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	n := fs.Int("taxpayers", 500, "how many taxpayers")
	s := fs.Uint64("seed", 2026, "random seed (the same seed makes the same data)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	return seedData(ctx, a, *n, *s)
}

func seedData(ctx context.Context, a *app, n int, s uint64) error {
	start := time.Now()
	d := seed.Generate(n, s)
	if err := seed.Load(ctx, a.clients.DynamoDB, a.cfg.Name(taxpayer.Table), a.cfg.Name(overpayment.Table), d); err != nil {
		return err
	}
	a.log.Info().Int("taxpayers", len(d.Taxpayers)).Int("ledger_entries", len(d.Ledger)).Dur("took", time.Since(start)).Msg("demo data loaded")
	return nil
}

// runAPIKey creates an API key: taxflow apikey create --principal NAME --scopes a,b
func runAPIKey(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: taxflow apikey create --principal NAME --scopes refunds:read,refunds:write")
	}
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	who := fs.String("principal", "", "who uses the key (an integrator, a reviewer's id)")
	scopes := fs.String("scopes", "", "comma-separated: refunds:read, refunds:write, refunds:decide, operate")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	key, err := a.keys().Create(ctx, api.Principal{ID: *who, Scopes: strings.Split(*scopes, ",")})
	if err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	fmt.Println(key)
	return nil
}
