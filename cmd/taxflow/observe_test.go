package main

import (
	"strings"
	"testing"

	"github.com/taxflow/taxflow/internal/config"
)

// `make dev` says where the metrics are, and that traces are off unless configured.
func TestMetricsLineSaysWhere(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	line := metricsLine(config.Metrics{WorkerAddr: "127.0.0.1:9464", APIAddr: ""})
	for _, want := range []string{"worker http://127.0.0.1:9464/metrics", "API off", "ops/prometheus/alerts.yml", "traces off"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	if line := metricsLine(config.Metrics{}); !strings.Contains(line, "traces to http://127.0.0.1:4317") {
		t.Errorf("%q", line)
	}
}
