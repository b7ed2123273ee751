package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
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

// runAPIKey manages API keys: create (shown once; stored hashed), list (with last use),
// revoke.
//
//	taxflow apikey create --tenant NAME --role ROLE [--expires 2027-01-31|90d] [--principal NAME] [--scopes a,b]
//	taxflow apikey list [--tenant NAME]
//	taxflow apikey revoke KEY_ID
func runAPIKey(ctx context.Context, args []string) error {
	usage := errors.New("usage: taxflow apikey create --tenant NAME --role ROLE [--expires YYYY-MM-DD|Nd] [--principal NAME] [--scopes a,b] | list [--tenant NAME] | revoke KEY_ID")
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
		tenant := fs.String("tenant", "", "the organisation the key belongs to (an integrator, or tax-office for staff)")
		role := fs.String("role", "", "integrator, auth-system, reviewer, inspector, specialist or operator")
		expires := fs.String("expires", "90d", "a date (YYYY-MM-DD, end of day UTC) or a number of days (30d)")
		who := fs.String("principal", "", "who uses the key (default tenant/role)")
		scopes := fs.String("scopes", "", "comma-separated, within the role's (default: all of the role's)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		until, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return err
		}
		p := api.Principal{ID: *who, Tenant: *tenant, Role: *role}
		if *scopes != "" {
			p.Scopes = strings.Split(*scopes, ",")
		}
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		key, id, err := a.keys().CreateKey(ctx, p, until)
		if err != nil {
			return fmt.Errorf("create key: %w", err)
		}
		fmt.Fprintf(os.Stderr, "key %s for %s (%s), expires %s; shown once:\n", id, *tenant, *role, until.Format(time.RFC3339))
		fmt.Println(key)
		return nil
	case "list":
		fs := flag.NewFlagSet("apikey list", flag.ContinueOnError)
		tenant := fs.String("tenant", "", "only this tenant's keys")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		keys, err := a.keys().List(ctx, *tenant)
		if err != nil {
			return fmt.Errorf("list keys: %w", err)
		}
		unix := func(s int64) string {
			if s == 0 {
				return "-"
			}
			return time.Unix(s, 0).UTC().Format(time.RFC3339)
		}
		for _, k := range keys {
			state := "valid"
			switch {
			case k.RevokedAt != 0:
				state = "revoked " + unix(k.RevokedAt)
			case k.ExpiresAt <= time.Now().Unix():
				state = "expired"
			}
			fmt.Printf("%s\t%s\t%s\t%s\texpires %s\tlast used %s\t%s\n", k.KeyID, k.Tenant, k.Role, k.ID, unix(k.ExpiresAt), unix(k.LastUsedAt), state)
		}
		return nil
	case "revoke":
		if len(args) != 2 {
			return usage
		}
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		found, err := a.keys().Revoke(ctx, args[1])
		if err != nil {
			return fmt.Errorf("revoke key: %w", err)
		}
		if !found {
			return fmt.Errorf("revoke: no key %s", args[1])
		}
		fmt.Fprintf(os.Stderr, "key %s revoked\n", args[1])
		return nil
	}
	return usage
}

// parseExpiry reads --expires: a date (the key lasts to its end, UTC) or "Nd".
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 730 {
			return time.Time{}, fmt.Errorf("--expires %q: want 1d to 730d or a date", s)
		}
		return now.Add(time.Duration(days) * 24 * time.Hour), nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires %q: want YYYY-MM-DD or Nd", s)
	}
	return d.Add(24*time.Hour - time.Second), nil
}
