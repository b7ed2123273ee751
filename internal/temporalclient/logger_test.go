package temporalclient

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/taxflow/taxflow/internal/logging"
)

func TestTemporalAdapter(t *testing.T) {
	var buf bytes.Buffer
	l, _ := logging.New(&buf, "json", "debug")
	tl := NewLogger(l).With("WorkflowID", "refund-1")
	tl.Warn("activity failed", "Attempt", 2, "dangling")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if m["WorkflowID"] != "refund-1" || m["Attempt"] != float64(2) || m["level"] != "warn" || m["EXTRA_VALUE_AT_END"] != "dangling" {
		t.Fatalf("got %v", m)
	}
}
