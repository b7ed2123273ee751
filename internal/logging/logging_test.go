package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLinesAreRedacted(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	l.Info().Str("inn", "500100732259").Msg("lookup for snils 112-233-445 95")
	line := buf.String()
	if strings.Contains(line, "500100732259") || strings.Contains(line, "112-233-445") {
		t.Fatalf("personal data leaked: %s", line)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON after redaction: %v", err)
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "xml", "info"); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("want format error, got %v", err)
	}
	if _, err := New(&bytes.Buffer{}, "json", "loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("want level error, got %v", err)
	}
}
