package calendar

import (
	"testing"
	"testing/fstest"
	"time"
)

func day(s string) time.Time {
	t, _ := time.ParseInLocation(time.DateOnly, s, Moscow)
	return t.Add(12 * time.Hour)
}

func TestYearTotals(t *testing.T) {
	c := Default()
	for _, y := range []int{2025, 2026} {
		if got := c.WorkingDays(y); got != 247 {
			t.Errorf("%d: %d working days, want 247", y, got)
		}
		if c.Provisional(y) {
			t.Errorf("%d must come from its decree", y)
		}
	}
}

func TestDays(t *testing.T) {
	c := Default()
	for d, want := range map[string]bool{
		"2025-11-01": true,  // working Saturday
		"2025-11-03": false, // transferred from Saturday 1 Nov
		"2025-12-31": false,
		"2026-01-09": false, // transferred from Saturday 3 Jan
		"2026-03-09": false, // 8 March is a Sunday
		"2026-05-11": false, // 9 May is a Saturday
		"2026-02-24": true,
		"2026-11-22": false, // a Sunday
		"2026-11-23": true,
	} {
		if got := c.IsWorkingDay(day(d)); got != want {
			t.Errorf("%s: working %v, want %v", d, got, want)
		}
	}
	if !c.IsShortDay(day("2026-11-03")) || c.IsShortDay(day("2026-11-05")) {
		t.Error("short days wrong")
	}
}

func TestAddWorkingDays(t *testing.T) {
	c := Default()
	cases := []struct {
		from string
		n    int
		want string
	}{
		{"2026-11-20", 1, "2026-11-24"}, // Friday → end of Monday
		{"2026-11-03", 1, "2026-11-06"}, // 4 Nov is a holiday → end of Thursday 5 Nov
		{"2025-12-30", 1, "2026-01-13"}, // over the New Year holidays → end of 12 Jan
		{"2026-04-30", 5, "2026-05-09"}, // 1 and 11 May off... 4,5,6,7,8 May
		{"2026-11-23", 0, "2026-11-24"},
	}
	for _, tc := range cases {
		got := c.AddWorkingDays(day(tc.from), tc.n)
		if got.Format(time.DateOnly) != tc.want || got.Hour() != 0 {
			t.Errorf("%s + %d working days = %s, want the start of %s", tc.from, tc.n, got, tc.want)
		}
	}
}

func TestProvisionalYearFromLabourCode(t *testing.T) {
	c := Default()
	if !c.Provisional(2027) {
		t.Fatal("2027 has no decree; it must be provisional")
	}
	// 2027: 23 Feb is a Tuesday (off); 8 Mar a Monday; 1 May a Saturday → 3 May off;
	// 9 May a Sunday → 10 May off; 12 Jun a Saturday → 14 Jun off; 4 Nov a Thursday.
	for d, want := range map[string]bool{"2027-02-23": false, "2027-05-03": false, "2027-05-10": false,
		"2027-06-14": false, "2027-11-04": false, "2027-11-05": true, "2027-01-11": true} {
		if got := c.IsWorkingDay(day(d)); got != want {
			t.Errorf("%s: working %v, want %v", d, got, want)
		}
	}
	if n := c.WorkingDays(2027); n < 240 || n > 255 {
		t.Errorf("2027: %d working days", n)
	}
}

func TestLoadRejectsBadData(t *testing.T) {
	bad := fstest.MapFS{"d/2030.txt": {Data: []byte("off 2031-01-01\n")}}
	if _, err := Load(bad, "d"); err == nil {
		t.Fatal("a date of another year was accepted")
	}
	bad = fstest.MapFS{"d/2030.txt": {Data: []byte("holiday 2030-01-01\n")}}
	if _, err := Load(bad, "d"); err == nil {
		t.Fatal("an unknown keyword was accepted")
	}
	good := fstest.MapFS{"d/2030.txt": {Data: []byte("# test\noff 2030-01-02\n")}}
	c, err := Load(good, "d")
	if err != nil || c.Provisional(2030) || c.IsWorkingDay(day("2030-01-02")) {
		t.Fatalf("%v", err)
	}
}
