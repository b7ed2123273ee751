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
