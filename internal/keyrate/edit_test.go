package keyrate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/term"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, term.Moscow)
	if err != nil {
		panic(err)
	}
	return t
}

// Tax Code art. 78 p.10 charges each day at the key rate in force that day, so a table
// that misses a Board decision charges the wrong rate: the shipped table is measured
// against the Board's calendar, not against an arbitrary age.
func TestShippedTableAgainstTheBoardCalendarArt78p10(t *testing.T) {
	tb := shipped(t)
	if f := tb.Freshness(at("2026-03-20 13:29")); f.Stale() || !f.LastMeeting.Equal(day("2026-02-13")) {
		t.Errorf("before the 20 March decision is published: %+v", f)
	}
	f := tb.Freshness(at("2026-03-20 13:30"))
	if !f.Stale() || len(f.Missed) != 1 || !f.Missed[0].Equal(day("2026-03-20")) || !f.LastMeeting.Equal(day("2026-03-20")) {
		t.Errorf("the 20 March decision is published and not in the table: %+v", f)
	}
	// Today (December 2026): the 20 March meeting is missed and the calendar has run out.
	dec := at("2026-12-05 12:00")
	f = tb.Freshness(dec)
	if !f.Stale() || !f.CalendarOver(dec) || !f.CalendarEnds.Equal(day("2026-03-20")) {
		t.Errorf("December 2026: %+v", f)
	}
	w := strings.Join(tb.Warnings(dec), "\n")
	for _, want := range []string{"checked through 2026-02-18", "2026-03-20", "taxflow keyrate add", "calendar ends"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	// Every meeting and every rate names its source.
	for _, m := range tb.Meetings() {
		if !strings.Contains(m.Source, "http") {
			t.Errorf("meeting %s: source %q", m.Date, m.Source)
		}
	}
}

// An operator enters the decision of a Friday meeting that day; it is in force from the
// Monday, the days before keep their rate, and the table is no longer stale.
func TestAddDecision(t *testing.T) {
	tb := shipped(t)
	fri := at("2026-03-20 15:00")
	tb2, err := tb.Add(Decision{From: day("2026-03-23"), RateBP: 1500, Source: "https://www.cbr.ru/press/keypr/"}, fri)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]int64{"2026-03-22": 1550, "2026-03-23": 1500, "2026-12-05": 1500, "2026-02-16": 1550} {
		if got, err := tb2.Rate(day(d)); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", d, got, err, want)
		}
	}
	if !tb2.CheckedThrough().Equal(day("2026-03-20")) {
		t.Errorf("checked through %s, want the day of the check", tb2.CheckedThrough())
	}
	if f := tb2.Freshness(at("2026-03-23 09:00")); f.Stale() {
		t.Errorf("after the addition: %+v", f)
	}
	// 10 000 ₽, 20–24 Mar 2026: 3 days at 15.5 %, 2 at 15 %: 1000000×(0.155×3+0.15×2)/365 = 2095.89 → 2096
	if got, _ := tb2.Interest(1_000_000, day("2026-03-20"), day("2026-03-24")); got.Kopecks != 2096 || got.UncheckedDays != 4 {
		t.Errorf("interest across the added decision: %+v", got)
	}
	// What is written back reads as the same table, sources and calendar kept.
	b, err := tb2.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b, fri)
	if err != nil || len(back.Entries()) != len(tb.Entries())+1 || len(back.Meetings()) != len(tb.Meetings()) || back.Entries()[len(tb.Entries())-1].To != "2026-03-22" {
		t.Fatalf("round trip: %v", err)
	}
	// The original is untouched (tables are shared by running activities).
	if tb.Entries()[len(tb.Entries())-1].To != "" {
		t.Error("Add changed the table it was called on")
	}

	for name, c := range map[string]struct {
		d    Decision
		want string
	}{
		"history":      {Decision{From: day("2026-02-16"), RateBP: 1500, Source: "s"}, "added after it"},
		"no source":    {Decision{From: day("2026-03-23"), RateBP: 1500}, "source"},
		"far ahead":    {Decision{From: day("2026-04-30"), RateBP: 1500, Source: "s"}, "ahead"},
		"percent as 0": {Decision{From: day("2026-03-23"), RateBP: 0, Source: "s"}, "rate"},
	} {
		if _, err := tb.Add(c.d, fri); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestAddMeeting(t *testing.T) {
	tb := shipped(t)
	tb2, err := tb.AddMeeting(day("2026-04-24"), "https://www.cbr.ru/dkp/cal_mp/", at("2026-03-21 10:00"))
	if err != nil {
		t.Fatal(err)
	}
	if f := tb2.Freshness(at("2026-03-21 10:00")); f.CalendarOver(at("2026-03-21 10:00")) || !f.CalendarEnds.Equal(day("2026-04-24")) {
		t.Errorf("calendar: %+v", f)
	}
	if _, err := tb2.AddMeeting(day("2026-04-24"), "s", at("2026-03-21 10:00")); err == nil {
		t.Error("a meeting added twice")
	}
	if _, err := tb.AddMeeting(day("2026-01-01"), "s", at("2026-03-21 10:00")); err != nil {
		t.Errorf("an earlier meeting goes in its place: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"16": 1600, "16.5": 1650, "16,50": 1650, "7.25": 725, "15.5%": 1550, "0.01": 1} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "16.555", "-1", "abc", "0", "101", "1600bp"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

type memStore struct {
	body []byte
	err  error
}

func (m *memStore) Get(context.Context) ([]byte, error)   { return m.body, m.err }
func (m *memStore) Put(_ context.Context, b []byte) error { m.body = b; return m.err }

// An operator's addition reaches a running worker within TTL, with no restart; a store
// that fails keeps the last table; a release with a newer file wins over an older store.
func TestLiveSeesAnOperatorsAddition(t *testing.T) {
	base := shipped(t)
	clock := at("2026-03-20 15:00")
	st := &memStore{}
	l := &Live{Base: base, Store: st, TTL: time.Minute, Now: func() time.Time { return clock }}
	ctx := context.Background()
	if tb, err := l.Table(ctx); err != nil || tb != base {
		t.Fatalf("no stored table: %v", err)
	}
	added, err := base.Add(Decision{From: day("2026-03-23"), RateBP: 1500, Source: "https://www.cbr.ru/press/keypr/"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := added.JSON()
	_ = st.Put(ctx, b)
	if tb, _ := l.Table(ctx); tb != base {
		t.Error("read again before TTL")
	}
	clock = clock.Add(time.Minute)
	tb, err := l.Table(ctx)
	if r, _ := tb.Rate(day("2026-03-23")); err != nil || r != 1500 {
		t.Fatalf("the stored decision not seen after TTL: %d %v", r, err)
	}
	st.err = errors.New("unreachable")
	clock = clock.Add(time.Minute)
	if tb2, err := l.Table(ctx); err == nil || tb2 != tb {
		t.Errorf("a failing store: %v, table kept: %v", err, tb2 == tb)
	}
	// A stored table checked less far than the shipped file is ignored.
	st.err = nil
	if old, err := Current(ctx, added, &memStore{body: mustJSON(t, base)}, clock); err != nil || old != added {
		t.Errorf("an older stored table won: %v", err)
	}
	// A stored table that does not validate is reported and not used.
	if got, err := Current(ctx, base, &memStore{body: []byte(`{"rates":[]}`)}, clock); err == nil || got != base {
		t.Errorf("an invalid stored table: %v", err)
	}
}

func mustJSON(t *testing.T, tb *Table) []byte {
	b, err := tb.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tax Code art. 78 p.10: in July an operator enters the 20 March decision, the first of
// the three the table misses (20 March, 24 April, 19 June). The table is then still
// stale: adding one old decision does not certify the months after it, whose Board
// meetings the calendar knows; otherwise the alert goes quiet and April-to-July days are
// charged at March's rate with nobody told.
func TestAddOldDecisionKeepsLaterMeetingsMissed(t *testing.T) {
	tb := shipped(t)
	july := at("2026-07-01 10:00")
	var err error
	for _, m := range []string{"2026-04-24", "2026-06-19"} {
		if tb, err = tb.AddMeeting(day(m), "https://www.cbr.ru/dkp/cal_mp/", july); err != nil {
			t.Fatal(err)
		}
	}
	if f := tb.Freshness(july); len(f.Missed) != 3 {
		t.Fatalf("before: %+v", f)
	}
	tb2, err := tb.Add(Decision{From: day("2026-03-23"), RateBP: 1500, Source: "https://www.cbr.ru/press/keypr/"}, july)
	if err != nil {
		t.Fatal(err)
	}
	f := tb2.Freshness(july)
	if len(f.Missed) != 2 || !f.Missed[0].Equal(day("2026-04-24")) || !f.Missed[1].Equal(day("2026-06-19")) {
		t.Errorf("after adding the March decision in July: checked through %s, missed %v; want 24 April and 19 June still missed",
			tb2.CheckedThrough().Format(time.DateOnly), f.Missed)
	}
	// The June decision entered next, April's skipped by mistake, is refused: the
	// calendar says a decision was taken on 24 April, and the table would charge
	// March's rate for its days without anybody told.
	if _, err := tb2.Add(Decision{From: day("2026-06-22"), RateBP: 1400, Source: "https://www.cbr.ru/press/keypr/"}, july); err == nil ||
		!strings.Contains(err.Error(), "2026-04-24") {
		t.Errorf("the June decision with April's missing: %v, want a refusal naming the 24 April meeting", err)
	}
}
