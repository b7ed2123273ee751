package bench

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/taxflow/taxflow/internal/stack"
)

// defaults are the flags' defaults (taxflow bench with no flag).
func defaults() Options { return Options{N: 50, Rounds: 3, Creates: 300} }

// Every bench the Makefile and the docs run passes the check.
func TestOptionsTheTargetsRunPass(t *testing.T) {
	for name, edit := range map[string]func(*Options){
		"bench":          func(*Options) {},
		"bench overhead": func(o *Options) { o.Overhead = true },
		"bench sweep":    func(o *Options) { o.Sweep = 100_000 },
		"bench batch":    func(o *Options) { o.Batch, o.BatchHistory = 10_000, 100_000 },
		"bench-webhooks": func(o *Options) { o.Webhooks = true },
		"bench-cluster":  func(o *Options) { o.Temporal, o.Scaling, o.Creates = stack.TemporalServer, true, 0 },
		"sizing":         func(o *Options) { o.PerCase, o.N, o.JSON = true, 10, "/tmp/sizing.json" },
		"bench-open":     func(o *Options) { o.Open = 100_000 },
		"bench-wave":     func(o *Options) { o.Wave = 1000 },
		"create only":    func(o *Options) { o.CreateOnly = true },
		"dev server":     func(o *Options) { o.Temporal = stack.TemporalDev },
	} {
		o := defaults()
		edit(&o)
		if err := o.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Bad options are refused with a message naming each flag and why.
func TestOptionsNameWhatIsWrong(t *testing.T) {
	for _, c := range []struct {
		edit func(*Options)
		want []string
	}{
		{func(o *Options) { o.N = 0 }, []string{"--n 0: want at least 1"}},
		{func(o *Options) { o.N = -3 }, []string{"--n -3"}},
		{func(o *Options) { o.Rounds = 0 }, []string{"--rounds 0: want at least 1 round"}},
		{func(o *Options) { o.Creates = -1 }, []string{"--creates -1: must not be negative"}},
		{func(o *Options) { o.Sweep = -1 }, []string{"--sweep -1"}},
		{func(o *Options) { o.Open = -5 }, []string{"--open -5"}},
		{func(o *Options) { o.Wave = -5 }, []string{"--wave -5"}},
		{func(o *Options) { o.Temporal = "cluster" }, []string{`--temporal "cluster" must be dev`}},
		{func(o *Options) { o.Open, o.Wave = 10, 10 }, []string{"--open, --wave: each runs instead of the others"}},
		{func(o *Options) { o.Overhead, o.Webhooks, o.PerCase = true, true, true }, []string{"--webhooks, --per-case, --overhead"}},
		{func(o *Options) { o.JSON = "x.json" }, []string{"--json x.json: only with --per-case"}},
		{func(o *Options) { o.BatchHistory = 100 }, []string{"--batch-history 100: only with --batch"}},
		{func(o *Options) { o.Scaling, o.Sweep = true, 10 }, []string{"--scaling: only with the refund bench, not with --sweep"}},
		// Several at once: each is named.
		{func(o *Options) { o.N, o.Rounds, o.Temporal = 0, 0, "x" }, []string{"--n 0", "--rounds 0", `--temporal "x"`}},
	} {
		o := defaults()
		c.edit(&o)
		err := o.Check()
		if err == nil {
			t.Errorf("%+v: accepted", o)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", o, err, w)
			}
		}
	}
}

// Run checks the options before it touches anything: with no clients and no Temporal
// client, bad options are an error, not a nil dereference.
func TestRunRefusesBadOptionsBeforeItConnects(t *testing.T) {
	o := defaults()
	o.Rounds = 0
	if err := Run(context.Background(), Env{}, o, Target{}); err == nil || !strings.Contains(err.Error(), "--rounds 0") {
		t.Fatalf("Run = %v, want the --rounds refusal", err)
	}
}

// Locate refuses a back end asked for when the run directory's stack cannot be read, and
// goes on without CPU by process when none was asked for.
func TestLocateWithoutAStack(t *testing.T) {
	unreadable := errors.New("configuration: TAXFLOW_TEMPORAL_PORT=\"x\" must be a port number 1-65535")
	o := defaults()
	o.Temporal = stack.TemporalServer
	if _, err := Locate(o, stack.Stack{}, unreadable, nil); !errors.Is(err, unreadable) {
		t.Fatalf("Locate(--temporal server, no stack) = %v, want the stack's error", err)
	}
	tg, err := Locate(defaults(), stack.Stack{}, unreadable, nil)
	if err != nil || tg.haveStack || tg.backend != "" || !errors.Is(tg.stErr, unreadable) {
		t.Fatalf("Locate(no stack) = %+v, %v; want no CPU by process and the stack's error kept", tg, err)
	}
	// With nothing running in the run directory and no back end asked for: the stack's CPU
	// is read, its back end unknown (getenv is not needed).
	st := stack.Stack{Dir: t.TempDir()}
	tg, err = Locate(defaults(), st, nil, nil)
	if err != nil || !tg.haveStack || tg.backend != "" {
		t.Fatalf("Locate(idle stack) = %+v, %v", tg, err)
	}
	o.Temporal = stack.TemporalDev
	if _, err := Locate(o, st, nil, nil); err == nil || !strings.Contains(err.Error(), "no Temporal of the local stack runs in "+st.Dir) {
		t.Fatalf("Locate(--temporal dev, idle stack) = %v", err)
	}
}
