package sizing

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// The page in docs/ is what the script makes of the figures beside it: a change of the
// script or of the figures without `make sizing` (or `go run ./cmd/sizing`) fails here.
func TestSizingPageIsCurrent(t *testing.T) {
	data, err := os.ReadFile("../../../docs/sizing.json")
	if err != nil {
		t.Fatal(err)
	}
	var f Figures
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	page, err := Render(f, "docs/sizing.json")
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("../../../docs/sizing.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != page {
		t.Fatal("docs/sizing.md is stale against docs/sizing.json and cmd/internal/sizing: run `go run ./cmd/sizing --from docs/sizing.json --out docs/sizing.md` (or `make sizing` to measure again)")
	}
}

func modelFigures() Figures {
	return Figures{Command: "test", Generated: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), Stack: "test", BenchRefundEvents: 50, Processes: []Process{
		{Name: "refund", Cases: 1, HistoryEvents: 50, HistoryBytes: 10_000, Actions: 10, WorkflowStarts: 1, Invocations: 4,
			FunctionSeconds: 0.5, SecondsByFunction: map[string]float64{"payout": 0.5}, WriteUnits: 2, ReadUnits: 1,
			S3ByOp: map[string]float64{"PutObject": 1, "GetObject": 1, "DeleteObject": 1}, S3Requests: 3, S3PutBytes: 1000},
		{Name: "declaration", Cases: 1, HistoryEvents: 100, HistoryBytes: 20_000, Actions: 20, WorkflowStarts: 1, Invocations: 10},
	}}
}

func TestModelArithmetic(t *testing.T) {
	page, err := Render(modelFigures(), "x.json")
	if err != nil {
		t.Fatal(err)
	}
	// 15M × 25 % / 180,000 s = 20.8 declarations, 5M × 10 % / 180,000 s = 2.8 refunds per second.
	for _, want := range []string{
		"| cases per second | 20.8 | 2.8 | 23.6 |",
		// 20 × 20.83 + 10 × 2.78 = 444.4 actions per second: under the 500 default, but close.
		"| Temporal actions | 444 |",
		"**444** against the namespace's default limit of 500 APS",
		"within it, but close",
		// Concurrency: 0.5 s of functions per refund × 2.78 refunds per second.
		"| Lambda concurrency (invocations/s × duration) | 1.4 |",
		// (20 × 15M + 10 × 5M) / 12 = 29.2 million actions a month, 450M a year / 12.
		"Actions: 29.2 million a month on average",
		// Retained: (15M × 20 kB + 5M × 10 kB) / 365 × 7 days = 6.7 GB.
		"| closed histories kept 7 days | 6.7 GB |",
		// S3 bytes: 5M refunds × 1000 bytes = 5 GB a year.
		"| S3: documents and decisions put per year | 5.0 GB |",
		// History CPU: 44 ms per 50 events; 20.83 × 100 + 2.78 × 50 events per second = 2222 events/s → 1.96 cores.
		"| history | 2.0 | 2 |",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// The Lambda concurrency line reflects the ×3 margin too.
	if !strings.Contains(page, "concurrency **1** measured, 4 with the ×3 margin") {
		t.Errorf("concurrency line: %s", line(page, "Lambda: "))
	}
}

func line(page, prefix string) string {
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, prefix) {
			return l
		}
	}
	return ""
}

// The tiers of docs.temporal.io/cloud/pricing, and its own example: 11.25M actions cost $525.
func TestCloudActionsCost(t *testing.T) {
	for _, c := range []struct{ actions, want float64 }{
		{0, 0}, {1e6, 50}, {5e6, 250}, {11.25e6, 525}, {200e6, 250 + 225 + 400 + 1050 + 1500 + 2500}, {300e6, 5925 + 2500},
	} {
		if got := CloudActionsCost(c.actions); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("%v actions: $%v, want $%v", c.actions, got, c.want)
		}
	}
}

func TestRenderRefusesFiguresWithoutBothProcesses(t *testing.T) {
	f := modelFigures()
	f.Processes = f.Processes[:1]
	if _, err := Render(f, "x.json"); err == nil {
		t.Fatal("a page from the refund alone")
	}
}
