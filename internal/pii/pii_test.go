package pii

import "testing"

func TestRedact(t *testing.T) {
	cases := map[string]string{
		"inn 500100732259 refused":           "inn [redacted] refused",
		"org inn=7707083893":                 "org inn=[redacted]",
		"snils 112-233-445 95 ok":            "snils [redacted] ok",
		"snils 11223344595":                  "snils [redacted]",
		"passport 4509 123456":               "passport [redacted]",
		"passport 45 09 123456":              "passport [redacted]",
		"account 40817810099910004312":       "account [redacted]",
		"amount 150000 kopecks, attempt 3":   "amount 150000 kopecks, attempt 3",
		"at 2026-11-22T13:21:52Z case 12345": "at 2026-11-22T13:21:52Z case 12345",
	}
	for in, want := range cases {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		if got := string(RedactBytes([]byte(in))); got != want {
			t.Errorf("RedactBytes(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkRedactLogLine(b *testing.B) {
	line := []byte(`{"level":"info","case_id":"refund-0c6f6f9e-0000-4000-8000-000000000001","status":"paid","took":12.5,"message":"request"}`)
	for b.Loop() {
		RedactBytes(line)
	}
}
