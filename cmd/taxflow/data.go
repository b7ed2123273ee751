package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/reminders"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/seed"
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
		fmt.Fprintf(warn, "warning: --date %s: the production calendar has no decree for %d (it has %s); working days of %d are computed from the Labour Code (art. 112) and are provisional: add internal/calendar/data/%d.txt when the decree is published\n",
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
		fmt.Fprintf(out, "Usage: %s\n\n%s\nOptions:\n", synopsis, text)
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
