package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/term"
	"github.com/taxflow/taxflow/internal/trust"
)

const keyrateUsage = `usage:
  taxflow keyrate show
  taxflow keyrate add --from DATE --rate R --source URL [--decision TEXT]
        a Board decision: the rate R (percent, such as 15.5) in force from DATE (the working day
        after the meeting); a decision that keeps the rate is added the same way
  taxflow keyrate meeting --on DATE --source URL
        a scheduled Board meeting on the key rate (the Bank of Russia's calendar)
The table lives in s3://<prefix>-trust/` + keyrate.StoreKey + ` (only operators write it); the workers read it
again every minute. Until an operator adds to it, the table built into the binary (or TAXFLOW_KEY_RATE_FILE)
is used; a release whose table is checked further wins over an older stored one`

// runKeyrate shows and changes the key-rate table the workers compute late-refund
// interest with. It runs with the operator's credentials: no function may write the
// trust bucket.
func runKeyrate(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "add" && args[0] != "meeting") {
		return errors.New(keyrateUsage)
	}
	a, err := newApp(ctx)
	if err != nil {
		return err
	}
	bucket := a.cfg.Name(trust.Bucket)
	store := trust.KeyRateStore{Client: a.clients.S3, Bucket: bucket}
	return keyrateCommand(ctx, args, a.cfg.Data.KeyRates, store, "s3://"+bucket+"/"+keyrate.StoreKey, time.Now(), os.Stdout)
}

// keyrateCommand is runKeyrate after the configuration: base is the table shipped (or
// TAXFLOW_KEY_RATE_FILE), store the operator's.
func keyrateCommand(ctx context.Context, args []string, base *keyrate.Table, store keyrate.Store, where string, now time.Time, out io.Writer) error {
	cur, err := keyrate.Current(ctx, base, store, now)
	if err != nil {
		// Never write over a stored table that cannot be read: it may hold decisions.
		return fmt.Errorf("key rate table %s: %w", where, err)
	}
	fs := flag.NewFlagSet("keyrate "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var from, rate, source, decision, on string
	switch args[0] {
	case "show":
		if len(args) != 1 {
			return errors.New(keyrateUsage)
		}
		showKeyrate(out, cur, base, where, now)
		return nil
	case "add":
		fs.StringVar(&from, "from", "", "")
		fs.StringVar(&rate, "rate", "", "")
		fs.StringVar(&source, "source", "", "")
		fs.StringVar(&decision, "decision", "", "")
	case "meeting":
		fs.StringVar(&on, "on", "", "")
		fs.StringVar(&source, "source", "", "")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("keyrate %s: %v\n%s", args[0], or2(err, "unexpected arguments"), keyrateUsage)
	}
	if err := checkSource(source); err != nil {
		return err
	}
	var next *keyrate.Table
	if args[0] == "add" {
		day, err := term.ParseDate(from)
		if err != nil {
			return fmt.Errorf("--from %q: want the day the rate is in force from, YYYY-MM-DD", from)
		}
		bp, err := keyrate.ParseRate(rate)
		if err != nil {
			return fmt.Errorf("--rate %w", err)
		}
		if next, err = cur.Add(keyrate.Decision{From: day, RateBP: bp, Source: source, Decision: decision}, now); err != nil {
			return fmt.Errorf("keyrate add: %w", err)
		}
	} else {
		day, err := term.ParseDate(on)
		if err != nil {
			return fmt.Errorf("--on %q: want the meeting's day, YYYY-MM-DD", on)
		}
		if next, err = cur.AddMeeting(day, source, now); err != nil {
			return fmt.Errorf("keyrate meeting: %w", err)
		}
	}
	body, err := next.JSON()
	if err != nil {
		return err
	}
	if err := store.Put(ctx, body); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "written %s (%d bytes); the workers use it within a minute\n", where, len(body))
	showKeyrate(out, next, base, where, now)
	return nil
}

func or2(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// checkSource: every rate and meeting names where it is published.
func checkSource(s string) error {
	u, err := url.Parse(s)
	if s == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--source %q: want the URL where the Bank of Russia publishes it (https://www.cbr.ru/...)", s)
	}
	return nil
}

func showKeyrate(out io.Writer, cur, base *keyrate.Table, where string, now time.Time) {
	from := "built in (" + keyrate.EmbeddedFile + " or TAXFLOW_KEY_RATE_FILE)"
	if cur != base {
		from = where
	}
	_, _ = fmt.Fprintf(out, "table: %s, checked through %s\n", from, cur.CheckedThrough().Format(time.DateOnly))
	es := cur.Entries()
	for _, e := range es[max(0, len(es)-4):] {
		to := e.To
		if to == "" {
			to = "…"
		}
		_, _ = fmt.Fprintf(out, "  %s – %-10s %3d.%02d %%  %s\n", e.From, to, e.RateBP/100, e.RateBP%100, e.Source)
	}
	var days []string
	for _, m := range cur.Meetings() {
		days = append(days, m.Date)
	}
	_, _ = fmt.Fprintf(out, "board meetings known: %s\n", strings.Join(days[max(0, len(days)-8):], ", "))
	for _, w := range cur.Warnings(now) {
		_, _ = fmt.Fprintf(out, "warning: %s\n", w)
	}
}

// warnKeyRate logs at start what the key-rate table may lack (no personal data: dates
// and the command that fixes it).
func warnKeyRate(log zerolog.Logger, t *keyrate.Table, now time.Time) {
	for _, w := range t.Warnings(now) {
		log.Warn().Str("checked_through", t.CheckedThrough().Format(time.DateOnly)).Msg(w)
	}
}
