// Package calendar is the Russian production calendar: which days are worked, as data
// per year (one file per year, from each year's government decree), and SLA arithmetic
// in working days. A year with no file is computed from the Labour Code (art. 112) and
// marked provisional.
package calendar

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed data/*.txt
var embedded embed.FS

// Moscow is the time zone deadlines are counted in (fixed UTC+3 since 2014).
var Moscow = time.FixedZone("MSK", 3*60*60)

// Calendar answers working-day questions. It is safe for concurrent use.
type Calendar struct {
	mu    sync.Mutex
	years map[int]*year
}

type year struct {
	off, work, short map[string]bool
	provisional      bool
}

// Default is the calendar of the years taxflow ships.
func Default() *Calendar {
	c, err := Load(embedded, "data")
	if err != nil {
		panic(fmt.Sprintf("calendar: embedded data: %v", err)) // a build defect, caught by tests
	}
	return c
}

// Load reads every "<year>.txt" in dir of fsys.
func Load(fsys fs.FS, dir string) (*Calendar, error) {
	c := &Calendar{years: map[int]*year{}}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		y, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".txt"))
		if err != nil || !strings.HasSuffix(e.Name(), ".txt") {
			continue
		}
		f, err := fsys.Open(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		yr, err := parse(f, y)
		_ = f.Close() // a reader of an embedded file: parse has read all of it
		if err != nil {
			return nil, fmt.Errorf("calendar %s: %w", e.Name(), err)
		}
		c.years[y] = yr
	}
	return c, nil
}

func parse(r interface{ Read([]byte) (int, error) }, y int) (*year, error) {
	yr := &year{off: map[string]bool{}, work: map[string]bool{}, short: map[string]bool{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var set map[string]bool
		switch fields[0] {
		case "off":
			set = yr.off
		case "work":
			set = yr.work
		case "short":
			set = yr.short
		default:
			return nil, fmt.Errorf("line %d: %q: want off, work or short", n, fields[0])
		}
		for _, d := range fields[1:] {
			t, err := time.Parse(time.DateOnly, d)
			if err != nil || t.Year() != y {
				return nil, fmt.Errorf("line %d: %q is not a date of %d", n, d, y)
			}
			set[d] = true
		}
	}
	return yr, sc.Err()
}

// statutory holidays (Labour Code art. 112 part 1), month and day
var statutory = [][2]int{{1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}, {1, 6}, {1, 7}, {1, 8}, {2, 23}, {3, 8}, {5, 1}, {5, 9}, {6, 12}, {11, 4}}

// computed builds a year from art. 112 alone: statutory holidays are off, and a
// non-January holiday on a weekend moves to the next working day.
func computed(y int) *year {
	yr := &year{off: map[string]bool{}, work: map[string]bool{}, short: map[string]bool{}, provisional: true}
	holiday := map[string]bool{}
	for _, md := range statutory {
		holiday[time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC).Format(time.DateOnly)] = true
	}
	for _, md := range statutory {
		d := time.Date(y, time.Month(md[0]), md[1], 0, 0, 0, 0, time.UTC)
		if !weekend(d) {
			yr.off[d.Format(time.DateOnly)] = true
			continue
		}
		if md[0] == 1 {
			continue // moved by each year's decree, unknown here
		}
		for n := d.AddDate(0, 0, 1); ; n = n.AddDate(0, 0, 1) {
			k := n.Format(time.DateOnly)
			if !weekend(n) && !holiday[k] && !yr.off[k] {
				yr.off[k] = true
				break
			}
		}
	}
	return yr
}

func weekend(d time.Time) bool { return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday }

func (c *Calendar) year(y int) *year {
	c.mu.Lock()
	defer c.mu.Unlock()
	yr, ok := c.years[y]
	if !ok {
		yr = computed(y)
		c.years[y] = yr
	}
	return yr
}

// Provisional tells whether a year has no decree loaded and is computed.
func (c *Calendar) Provisional(y int) bool { return c.year(y).provisional }

// IsWorkingDay tells whether the day of t (in Moscow) is worked.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	d := t.In(Moscow)
	yr := c.year(d.Year())
	k := d.Format(time.DateOnly)
	if yr.work[k] {
		return true
	}
	return !weekend(d) && !yr.off[k]
}

// IsShortDay tells whether the day of t is a shortened pre-holiday day.
func (c *Calendar) IsShortDay(t time.Time) bool {
	d := t.In(Moscow)
	return c.year(d.Year()).short[d.Format(time.DateOnly)]
}

// AddWorkingDays is the deadline of an SLA of n working days starting at t: the end
// (midnight Moscow time) of the n-th working day after the day of t.
func (c *Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	d := t.In(Moscow)
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, Moscow)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if c.IsWorkingDay(day) {
			n--
		}
	}
	return day.AddDate(0, 0, 1)
}

// WorkingDays counts the worked days of a year.
func (c *Calendar) WorkingDays(y int) int {
	n := 0
	for d := time.Date(y, 1, 1, 12, 0, 0, 0, Moscow); d.Year() == y; d = d.AddDate(0, 0, 1) {
		if c.IsWorkingDay(d) {
			n++
		}
	}
	return n
}

// Years lists the years with a decree loaded.
func (c *Calendar) Years() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for y, yr := range c.years {
		if !yr.provisional {
			out = append(out, y)
		}
	}
	sort.Ints(out)
	return out
}

var (
	sharedOnce sync.Once
	shared     *Calendar
)

// Shared is one Default calendar for the whole process.
func Shared() *Calendar {
	sharedOnce.Do(func() { shared = Default() })
	return shared
}
