package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/cmd/internal/seed"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/calendar"
)

// seedOptions are the dataset's options, shared by seed, dev and demo.
type seedOptions struct {
	taxpayers int
	seed      uint64
	date      string // YYYY-MM-DD; "" is today in Moscow
	today     time.Time
}

const seedHelp = `The dataset is deterministic: the same --taxpayers, --seed and --date make the same data.
It is relative to the reference day (--date, default today in Moscow): tax periods are the
last completed year and the three before it, refunds may be claimed for the last three,
obligations fall due 1, 7 and 30 days after it. The first ~30 taxpayers are built for the
scenarios (refunds with and without debts, arrears, every identity method with matches and
mismatches, declarations that pass, need clarification or claim each deduction, accounts
near the lock threshold, obligations paid and unpaid); the rest are random.
`

// flags registers the seed options on fs.
func (o *seedOptions) flags(fs *flag.FlagSet) {
	fs.IntVar(&o.taxpayers, "taxpayers", seed.DefaultTaxpayers, fmt.Sprintf("how many taxpayers (%d-%d)", seed.MinTaxpayers, seed.MaxTaxpayers))
	fs.Uint64Var(&o.seed, "seed", seed.DefaultSeed, "random seed (the same seed makes the same data)")
	fs.StringVar(&o.date, "date", "", "reference day YYYY-MM-DD (default: today in Moscow)")
}

// check validates the options after parsing, naming the option at fault. A year with no
// production calendar data before the first one taxflow ships is refused (its working
// days would be guesses, and the dataset's periods would precede every rule we have);
// a later year without data is accepted with a warning: the calendar computes it from
// the Labour Code and marks it provisional.
func (o *seedOptions) check(warn io.Writer) error {
	if o.taxpayers < seed.MinTaxpayers || o.taxpayers > seed.MaxTaxpayers {
		return fmt.Errorf("--taxpayers %d: must be %d-%d (the first ~30 are the scenarios' subjects)", o.taxpayers, seed.MinTaxpayers, seed.MaxTaxpayers)
	}
	o.today = seed.Day(time.Now())
	if o.date != "" {
		t, err := time.ParseInLocation(time.DateOnly, o.date, calendar.Moscow)
		if err != nil {
			return fmt.Errorf("--date %q: must be a date as YYYY-MM-DD, such as 2026-01-01", o.date)
		}
		o.today = t
	}
	y, years := o.today.Year(), calendar.Shared().Years()
	switch {
	case len(years) > 0 && y < years[0]:
		return fmt.Errorf("--date %s: the production calendar has no data for %d (it has %s): add internal/calendar/data/%d.txt from that year's decree, or choose a date in %d or later",
			o.today.Format(time.DateOnly), y, joinInts(years), y, years[0])
	case y > 2099:
		return fmt.Errorf("--date %s: must be before 2100", o.today.Format(time.DateOnly))
	case calendar.Shared().Provisional(y):
		_, _ = fmt.Fprintf(warn, "warning: --date %s: the production calendar has no decree for %d (it has %s); working days of %d are computed from the Labour Code (art. 112) and are provisional: add internal/calendar/data/%d.txt when the decree is published\n",
			o.today.Format(time.DateOnly), y, joinInts(years), y, y)
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// parseFlags parses args strictly: an unknown flag, a bad value or a stray argument is an
// error that names it; -h prints the help and is not an error (errHelp).
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // our own message, once, through main
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fs.Usage()
			return errHelp
		}
		return fmt.Errorf("%s: %w (see taxflow %s --help)", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (see taxflow %s --help)", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}

// errHelp ends a command that printed its help.
var errHelp = errors.New("help printed")

func usageOf(fs *flag.FlagSet, synopsis, text string) func() {
	return func() {
		out := fs.Output()
		_, _ = fmt.Fprintf(out, "Usage: %s\n\n%s\nOptions:\n", synopsis, text)
		fs.PrintDefaults()
	}
}

// runSeed loads the demo dataset: taxpayers, their ledgers and their obligations.
func runSeed(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	var o seedOptions
	o.flags(fs)
	fs.Usage = usageOf(fs, "taxflow seed [--taxpayers N] [--seed S] [--date YYYY-MM-DD]", seedHelp+
		fmt.Sprintf("\nDefaults: %d taxpayers, seed %d, today.\n", seed.DefaultTaxpayers, seed.DefaultSeed))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.check(os.Stderr); err != nil {
		return err
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	d, err := seedData(ctx, a, o)
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d taxpayers, %d ledger entries, %d obligations (seed %d, reference day %s, periods %d-%d)\n",
		len(d.Taxpayers), len(d.Ledger), len(d.Obligations), d.Seed, d.Today.Format(time.DateOnly), d.Periods[0], d.LastPeriod)
	return nil
}

func seedData(ctx context.Context, a *app, o seedOptions) (seed.Dataset, error) {
	start := time.Now()
	d, err := seed.Generate(o.today, o.taxpayers, o.seed)
	if err != nil {
		return seed.Dataset{}, err
	}
	tables := seed.Tables{Taxpayers: a.cfg.Name(taxpayer.Table), Ledger: a.cfg.Name(overpayment.Table), Obligations: a.cfg.Name(reminders.Table)}
	if err := seed.Load(ctx, a.clients.DynamoDB, tables, d); err != nil {
		return seed.Dataset{}, err
	}
	a.log.Info().Int("taxpayers", len(d.Taxpayers)).Int("ledger_entries", len(d.Ledger)).Int("obligations", len(d.Obligations)).
		Str("date", d.Today.Format(time.DateOnly)).Uint64("seed", d.Seed).Dur("took", time.Since(start)).Msg("demo data loaded")
	return d, nil
}

// runAPIKey manages API keys: create (shown once; stored hashed), list (with last use),
// revoke.
//
//	taxflow apikey create --tenant NAME --role ROLE [--expires 2027-01-31|90d] [--principal NAME] [--scopes a,b] [--bound-to T] [--person ID]
//	taxflow apikey list [--tenant NAME]
//	taxflow apikey revoke KEY_ID
func runAPIKey(ctx context.Context, args []string) error {
	usage := errors.New("usage: taxflow apikey create --tenant NAME --role ROLE [--expires YYYY-MM-DD|Nd] [--principal NAME] [--scopes a,b] [--bound-to T] [--person ID] | list [--tenant NAME] | revoke KEY_ID")
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
		bound := fs.String("bound-to", "", "staff keys: act only on this tenant's cases (default: every tenant's)")
		person := fs.String("person", "", "staff keys: the person who holds the key, as on their console account (staff create --person); required for staff roles")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		until, err := parseExpiry(*expires, time.Now())
		if err != nil {
			return err
		}
		p := api.Principal{ID: *who, Tenant: *tenant, Role: *role, BoundTo: *bound, Person: *person}
		if p.Staff() && p.Person == "" {
			return errors.New("apikey create: a staff key names its person (--person ID): their keys and console account are one identity")
		}
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
