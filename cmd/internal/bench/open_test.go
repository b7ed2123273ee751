package bench

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/domain"
)

func TestRefuseDiskNamesBothFigures(t *testing.T) {
	if err := refuseDisk(1000, 32<<10, 1<<30, "/run"); err != nil {
		t.Fatalf("1,000 cases of 32 KiB on 1 GiB free: %v", err)
	}
	err := refuseDisk(100_000, 32<<10, 1<<30, "/run")
	if err == nil {
		t.Fatal("100,000 cases of 32 KiB (3.1 GiB) on 1 GiB free: not refused")
	}
	for _, want := range []string{"3.1 GiB", "1.0 GiB free", "/run", "32.0 KiB per open case", "at most 32768"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
}

func TestRefuseHoldingSaysWhichAndHowToStartAfresh(t *testing.T) {
	if err := refuseHolding(0, 0, "/run"); err != nil {
		t.Fatalf("a fresh stack refused: %v", err)
	}
	for _, tc := range []struct {
		wfs, items int64
		want, not  string
	}{
		{12, 0, "Temporal holds 12 workflows", "cases table"},
		{0, 1, "the cases table is not empty", "Temporal holds"},
		{3, 1, "Temporal holds 3 workflows; the cases table is not empty", ""},
	} {
		err := refuseHolding(tc.wfs, tc.items, "/run")
		if err == nil {
			t.Fatalf("%d workflows, %d items: not refused", tc.wfs, tc.items)
		}
		if !strings.Contains(err.Error(), tc.want) || (tc.not != "" && strings.Contains(err.Error(), tc.not)) {
			t.Errorf("refusal %q: want %q, not %q", err, tc.want, tc.not)
		}
		if !strings.Contains(err.Error(), "rm -rf /run/data") || !strings.Contains(err.Error(), "make bench-open") {
			t.Errorf("refusal %q does not say how to start afresh", err)
		}
	}
}

func TestMixAddsUpAndCapsIdentity(t *testing.T) {
	for _, n := range []int{1, 7, 1000, 100_000} {
		for _, idMax := range []int{0, 15, 1 << 30} {
			m := mixOf(n, idMax)
			if m.total() != n || m.Identity > idMax || m.RefundsAwaiting < 0 {
				t.Errorf("mixOf(%d, %d) = %+v (total %d)", n, idMax, m, m.total())
			}
		}
	}
	if m := mixOf(1000, 15); m.Identity != 15 || m.Accounts != 100 || m.Declarations != 250 || m.RefundsReview != 300 || m.RefundsAwaiting != 335 {
		t.Errorf("mixOf(1000, 15) = %+v", m)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 200; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{0.5: 100 * time.Millisecond, 0.99: 198 * time.Millisecond, 1: 200 * time.Millisecond, 0: time.Millisecond} {
		if got := pct(s, p); got != want {
			t.Errorf("p%v of 1..200 ms = %s, want %s", p*100, got, want)
		}
	}
	if pct(nil, 0.99) != 0 || pct(s[:1], 0.99) != time.Millisecond {
		t.Error("p99 of none or of one sample")
	}
}

func TestLatencyReportRatiosAndGoals(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	out := latencyReport([]latency{
		{name: "bare", samples: ms(2, 1, 2, 4)},
		{name: "fast", samples: ms(10, 4, 4, 40), base: "bare", goal: 300 * time.Millisecond},
		{name: "slow", samples: ms(400, 100, 100, 500), base: "bare", goal: 300 * time.Millisecond},
	})
	lines := strings.Split(out, "\n")
	if len(lines) < 4 {
		t.Fatalf("report:\n%s", out)
	}
	// fast: p50 4 ms (vs 2: 2.0x), p99 40 ms (vs 4: 10.0x), met; slow: p99 500 ms, not met.
	for i, want := range map[int][]string{2: {"4.0 ms", "40.0 ms", "2.0x, 10.0x", "met"}, 3: {"100.0 ms", "500.0 ms", "50.0x, 125.0x", "NOT met"}} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %q lacks %q", lines[i], w)
			}
		}
	}
	if strings.Contains(lines[2], "NOT") || strings.Contains(lines[1], "x,") {
		t.Errorf("report:\n%s", out)
	}
}

// The bench's taxpayers never repeat: 200,000 INNs of one sequence, drawn at once from
// many goroutines, are distinct and valid.
func TestINNSequenceNeverRepeats(t *testing.T) {
	s := newINNSeq("98")
	const n, g = 200_000, 8
	got := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < n/g; k++ {
				got <- s.INN()
			}
		}()
	}
	wg.Wait()
	close(got)
	seen := make(map[string]bool, n)
	for inn := range got {
		if seen[inn] {
			t.Fatalf("INN %s handed out twice", inn)
		}
		if err := domain.ValidateINN("inn", inn, true); err != nil || !strings.HasPrefix(inn, "98") {
			t.Fatalf("INN %s: %v", inn, err)
		}
		seen[inn] = true
	}
	if len(seen) != n {
		t.Fatalf("%d INNs, want %d", len(seen), n)
	}
}

// The wave's pilot and waits grow with N: a wave of 100,000 is not judged by 20 cases'
// first seconds, nor cut off by the 30 minutes that fit 1,000.
func TestWaveScalesItsPilotAndWaits(t *testing.T) {
	for _, c := range []struct{ n, pilot int }{{1, 20}, {1000, 20}, {5000, 50}, {100_000, 1000}, {200_000, 1000}} {
		if got := wavePilotOf(c.n); got != c.pilot {
			t.Errorf("pilot of %d: %d, want %d", c.n, got, c.pilot)
		}
	}
	load, wave := waveTimeouts(1000, 20)
	if load != waveTimeout || wave != waveTimeout {
		t.Errorf("1,000 at 20/s: %s, %s; want the floor %s", load, wave, waveTimeout)
	}
	load, wave = waveTimeouts(100_000, 20) // 5,000 s predicted
	if load != 15_000*time.Second || wave != 5000*time.Second {
		t.Errorf("100,000 at 20/s: load %s (want 3 × 5,000 s), wave %s (want 5,000 s)", load, wave)
	}
}
