package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/term"
)

type memRates struct{ body []byte }

func (m *memRates) Get(context.Context) ([]byte, error)   { return m.body, nil }
func (m *memRates) Put(_ context.Context, b []byte) error { m.body = b; return nil }

// taxflow keyrate add writes the operator's table, which the workers' Live reads; a
// refused addition writes nothing and names the flag.
func TestKeyrateAddCommand(t *testing.T) {
	now := time.Date(2026, 3, 20, 15, 0, 0, 0, term.Moscow)
	base, err := keyrate.Open("", now)
	if err != nil {
		t.Fatal(err)
	}
	st := &memRates{}
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "--from", "2026-03-23", "--rate", "15.5%%", "--source", "https://www.cbr.ru/press/keypr/"}, "--rate"},
		{[]string{"add", "--from", "23.03.2026", "--rate", "15", "--source", "https://www.cbr.ru/press/keypr/"}, "--from"},
		{[]string{"add", "--from", "2026-03-23", "--rate", "15"}, "--source"},
		{[]string{"add", "--from", "2026-03-23", "--rate", "15", "--source", "cbr"}, "--source"},
		{[]string{"add", "--from", "2026-02-01", "--rate", "15", "--source", "https://www.cbr.ru/press/keypr/"}, "added after it"},
		{[]string{"meeting", "--on", "2026-03-20", "--source", "https://www.cbr.ru/dkp/cal_mp/"}, "already"},
	} {
		if err := keyrateCommand(ctx, c.args, base, st, "mem", now, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
		if st.body != nil {
			t.Fatalf("%v: a refused command wrote the table", c.args)
		}
	}
	var out bytes.Buffer
	if err := keyrateCommand(ctx, []string{"add", "--from", "2026-03-23", "--rate", "15", "--source", "https://www.cbr.ru/press/keypr/"}, base, st, "mem", now, &out); err != nil {
		t.Fatal(err)
	}
	if err := keyrateCommand(ctx, []string{"meeting", "--on", "2026-04-24", "--source", "https://www.cbr.ru/dkp/cal_mp/"}, base, st, "mem", now, &out); err != nil {
		t.Fatal(err)
	}
	live := &keyrate.Live{Base: base, Store: st, TTL: time.Minute, Now: func() time.Time { return now }}
	tb, err := live.Table(ctx)
	if r, _ := tb.Rate(time.Date(2026, 3, 23, 0, 0, 0, 0, term.Moscow)); err != nil || r != 1500 || len(tb.Meetings()) != len(base.Meetings())+1 {
		t.Fatalf("the workers' table: rate %d, %v", r, err)
	}
	out.Reset()
	if err := keyrateCommand(ctx, []string{"show"}, base, st, "mem", now, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"table: mem, checked through 2026-03-20", "2026-03-23 – …", "15.00 %", "2026-04-24"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "warning:") {
		t.Errorf("a current table warned:\n%s", out.String())
	}
}
