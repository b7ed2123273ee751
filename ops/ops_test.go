// Package ops holds the alerting rules (prometheus/alerts.yml) and the Grafana dashboard
// (grafana/taxflow.json) as code; this test keeps them loadable and in step with the
// metrics taxflow exports.
package ops

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/metrics"
)

// temporalSDK are the Temporal SDK metrics the rules and the dashboard use, by the SDK's
// own names (go.temporal.io/sdk internal/common/metrics/constants.go) and kind. The test
// emits each through taxflow's handler, so the names checked are the exported ones
// (counters get _total, timers _seconds histograms); the integration test
// (internal/e2e TestMetricsAfterRefund) sees them come from a real worker.
var temporalSDK = map[string]string{
	"temporal_activity_schedule_to_start_latency":      "timer",
	"temporal_workflow_task_schedule_to_start_latency": "timer",
	"temporal_activity_execution_latency":              "timer",
	"temporal_workflow_completed":                      "counter",
	"temporal_workflow_failed":                         "counter",
}

// exported is every metric name a scrape of taxflow shows (histograms with their
// _bucket, _sum and _count series).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New([]string{"payout"}, []string{"POST /v1/refunds"})
	(&metrics.Business{Processes: []metrics.Process{{Name: "refund", Open: []string{"received"}}}}).Register(m)
	// Vectors show once they have a series.
	m.ObserveInvocation("payout", nil, time.Millisecond)
	m.ObserveInvocation("payout", errors.New("unreachable"), time.Millisecond)
	m.ObserveRequest("POST /v1/refunds", 201, time.Millisecond)
	tb, err := keyrate.Open("", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.RegisterKeyRate(func() *keyrate.Table { return tb }, time.Now)
	h, closeFn := m.TemporalHandler()
	for name, kind := range temporalSDK {
		if kind == "timer" {
			h.Timer(name).Record(time.Millisecond)
		} else {
			h.Counter(name).Inc(1)
		}
	}
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		out[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[f.GetName()+s] = true
			}
		}
	}
	return out
}

// names are the metric names an expression selects.
func names(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("%s: selects no metric: %s", where, expr)
	}
	return out
}

func TestAlertRulesLoadAndUseExportedMetrics(t *testing.T) {
	groups, errs := rulefmt.ParseFile("prometheus/alerts.yml", false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.Default())
	if len(errs) > 0 {
		t.Fatalf("prometheus/alerts.yml: %v", errs)
	}
	have := exported(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, n := range names(t, r.Alert, r.Expr) {
				if !have[n] {
					t.Errorf("alert %s uses %s, which taxflow does not export", r.Alert, n)
				}
			}
		}
	}
	// The four kinds of alert are there, and the key-rate table's two.
	for _, want := range []string{"TaxflowCasesNearDeadline", "TaxflowPayoutFailing", "TaxflowFunctionErrorRate", "TaxflowTaskQueueBacklog",
		"TaxflowKeyRateTableStale", "TaxflowKeyRateCalendarEnds"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile("grafana/taxflow.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/taxflow.json: %v", err)
	}
	if len(d.Panels) < 8 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	have := exported(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range names(t, p.Title, q.Expr) {
				if !have[n] {
					t.Errorf("panel %q uses %s, which taxflow does not export", p.Title, n)
				}
			}
			if strings.Contains(q.Expr, "case_id") || strings.Contains(q.Expr, "inn") {
				t.Errorf("panel %q: %s", p.Title, q.Expr)
			}
		}
	}
}
