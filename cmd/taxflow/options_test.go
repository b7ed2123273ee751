package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/cmd/internal/seed"
)

// Each bad seed or demo option stops with a message that names it.
func TestSeedAndDemoOptionsNameWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"seed", []string{"--bogus"}, "-bogus"},
		{"seed", []string{"--taxpayers", "0"}, "--taxpayers 0"},
		{"seed", []string{"--taxpayers", "-5"}, "--taxpayers -5"},
		{"seed", []string{"--taxpayers", "100001"}, "--taxpayers 100001"},
		{"seed", []string{"--taxpayers", "many"}, `invalid value "many" for flag -taxpayers`},
		{"seed", []string{"--seed", "-1"}, `invalid value "-1" for flag -seed`},
		{"seed", []string{"--date", "2026-02-30"}, `--date "2026-02-30"`},
		{"seed", []string{"--date", "31.12.2025"}, `--date "31.12.2025"`},
		{"seed", []string{"--date", "2023-06-01"}, "no data for 2023"},
		{"seed", []string{"stray"}, `unexpected argument "stray"`},
		{"demo", []string{"--date", time.Now().AddDate(1, 0, 0).Format(time.DateOnly)}, "after today"},
		{"dev", []string{"--date", "2024-12-31"}, "internal/calendar/data/2024.txt"},
	} {
		var err error
		if tc.cmd == "seed" {
			fs := flag.NewFlagSet("seed", flag.ContinueOnError)
			var o seedOptions
			o.flags(fs)
			if err = parseFlags(fs, tc.args); err == nil {
				err = o.check(&bytes.Buffer{})
			}
		} else {
			_, err = parseDevFlags(tc.cmd, tc.args)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: got %v, want an error naming %q", tc.cmd, tc.args, err, tc.want)
		}
	}
}

func TestSeedOptionsDefaultsAndProvisionalYears(t *testing.T) {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	var o seedOptions
	o.flags(fs)
	var warn bytes.Buffer
	if err := parseFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.check(&warn); err != nil {
		t.Fatal(err)
	}
	if o.taxpayers != seed.DefaultTaxpayers || o.seed != seed.DefaultSeed || !o.today.Equal(seed.Day(time.Now())) {
		t.Fatalf("defaults %+v", o)
	}
	if err := parseFlags(fs, []string{"--date", "2028-02-29"}); err != nil {
		t.Fatal(err)
	}
	if err := o.check(&warn); err != nil || !strings.Contains(warn.String(), "internal/calendar/data/2028.txt") {
		t.Fatalf("a provisional year: %v, warning %q", err, warn.String())
	}
	if o.today.Format(time.DateOnly) != "2028-02-29" {
		t.Fatalf("date %s", o.today)
	}
}

// A bad bench option stops the command before it reads the stack or connects: with a
// run directory's configuration that could not be read and no Temporal to reach, the
// answer is still the option's refusal.
func TestBenchRefusesBadOptionsBeforeAnythingIsLoaded(t *testing.T) {
	t.Setenv("TAXFLOW_TEMPORAL_PORT", "not-a-port")
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--n", "0"}, "--n 0: want at least 1"},
		{[]string{"--rounds", "-1"}, "--rounds -1"},
		{[]string{"--open", "10", "--wave", "10"}, "--open, --wave: each runs instead of the others"},
		{[]string{"--json", "x.json"}, "only with --per-case"},
		{[]string{"--temporal", "cluster"}, `--temporal "cluster" must be dev`},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		err := run(t.Context(), append([]string{"bench"}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("taxflow bench %v = %v, want %q", tc.args, err, tc.want)
		}
	}
	// The flags reach the options they name.
	o, err := parseBenchFlags([]string{"--per-case", "--n", "10", "--json", "/tmp/s.json", "--temporal", "dev", "--creates", "0"})
	if err != nil || !o.PerCase || o.N != 10 || o.JSON != "/tmp/s.json" || o.Temporal != "dev" || o.Creates != 0 || o.Rounds != 3 {
		t.Fatalf("parseBenchFlags = %+v, %v", o, err)
	}
}
