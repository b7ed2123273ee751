package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsForLocalStack(t *testing.T) {
	c, err := Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566/"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS.S3() != "http://127.0.0.1:4566" || c.AWS.DynamoDB() != "http://127.0.0.1:4566" || c.AWS.Region != "us-east-1" {
		t.Fatalf("got %+v", c.AWS)
	}
	if c.Temporal.Address != "127.0.0.1:7233" || c.Prefix != "taxflow" || c.Invoker != "lambda" {
		t.Fatalf("got %+v", c)
	}
}

func TestServiceEndpointWins(t *testing.T) {
	c, err := Load(env(map[string]string{
		"AWS_ENDPOINT_URL":    "http://127.0.0.1:4566",
		"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS.S3() != "http://127.0.0.1:9000" || c.AWS.Lambda() != "http://127.0.0.1:4566" {
		t.Fatalf("got %+v", c.AWS)
	}
}

func TestAWSNeedsRegion(t *testing.T) {
	_, err := Load(env(nil))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Fatalf("want AWS_REGION error, got %v", err)
	}
}

func TestEveryBadVariableIsNamed(t *testing.T) {
	_, err := Load(env(map[string]string{
		"AWS_REGION":                "eu-central-1",
		"AWS_ENDPOINT_URL_DYNAMODB": "localhost:8000",
		"TEMPORAL_ADDRESS":          "nowhere",
		"TAXFLOW_INVOKER":           "rpc",
		"TAXFLOW_PREFIX":            "Tax_Flow",
		"TAXFLOW_LOG_LEVEL":         "loud",
		"TAXFLOW_API_ADDR":          "127.0.0.1:99999",
	}))
	if err == nil {
		t.Fatal("want error")
	}
	for _, name := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "TEMPORAL_ADDRESS", "TAXFLOW_INVOKER", "TAXFLOW_PREFIX", "TAXFLOW_LOG_LEVEL", "TAXFLOW_API_ADDR"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestDuration(t *testing.T) {
	d, err := Duration(env(map[string]string{"X": "36h"}), "X", time.Hour)
	if err != nil || d != 36*time.Hour {
		t.Fatal(d, err)
	}
	if d, _ := Duration(env(nil), "X", time.Hour); d != time.Hour {
		t.Fatal(d)
	}
	if _, err := Duration(env(map[string]string{"X": "-1h"}), "X", time.Hour); err == nil || !strings.Contains(err.Error(), "X=") {
		t.Fatal(err)
	}
}

func TestRefundRules(t *testing.T) {
	c, err := Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "TAXFLOW_REFUND_DEADLINE_DAYS": "45", "TAXFLOW_REFUND_DOCUMENT_WAIT": "48h"}))
	if err != nil || c.Refund.DeadlineDays != 45 || c.Refund.DocumentWait != 48*time.Hour {
		t.Fatalf("%+v %v", c.Refund, err)
	}
	_, err = Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "TAXFLOW_REFUND_DEADLINE_DAYS": "0", "TAXFLOW_REFUND_REMINDER_BEFORE": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "TAXFLOW_REFUND_DEADLINE_DAYS") || !strings.Contains(err.Error(), "TAXFLOW_REFUND_REMINDER_BEFORE") {
		t.Fatalf("got %v", err)
	}
}

// The issue: the 12 months of inactivity were hard-coded [000:40].
func TestInactivityAndDataFiles(t *testing.T) {
	base := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
	c, err := Load(env(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Inactive.Months != 12 || c.Inactive.Grace != 60*24*time.Hour || c.Data.KeyRates == nil || c.Data.DueDates == nil {
		t.Fatalf("defaults: %+v %+v", c.Inactive, c.Data)
	}
	base["TAXFLOW_INACTIVE_MONTHS"] = "6"
	if c, err = Load(env(base)); err != nil || c.Inactive.Months != 6 {
		t.Fatalf("6 months: %+v %v", c.Inactive, err)
	}
	dir := t.TempDir()
	gap := dir + "/key-rate.json"
	if err := os.WriteFile(gap, []byte(`{"description":"t","checked_through":"2025-12-31","rates":[
{"from":"2025-01-01","to":"2025-06-30","rate_bp":2100,"decision":"d","source":"s"},
{"from":"2025-07-02","to":"","rate_bp":1800,"decision":"d","source":"s"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"TAXFLOW_INACTIVE_MONTHS": "must be a whole number 1-120",
		"TAXFLOW_KEY_RATE_FILE":   "gap: entry 1 ends on 2025-06-30, so 2025-07-01 has no rate",
		"TAXFLOW_DUE_DATES_FILE":  "no such file",
	} {
		bad := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
			"TAXFLOW_INACTIVE_MONTHS": "0", "TAXFLOW_KEY_RATE_FILE": gap, "TAXFLOW_DUE_DATES_FILE": dir + "/none.json"}
		_, err := Load(env(bad))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q in %v", name, want, err)
		}
	}
}

func TestCodecServer(t *testing.T) {
	c, err := Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}))
	if err != nil || c.Codec.Addr != "127.0.0.1:8089" || c.Codec.Token != "" ||
		strings.Join(c.Codec.Origins, " ") != "http://127.0.0.1:8233 http://localhost:8233" {
		t.Fatalf("defaults %+v %v", c.Codec, err)
	}
	token := strings.Repeat("aZ9_-", 8)
	c, err = Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "TAXFLOW_CODEC_TOKEN": token,
		"TAXFLOW_CODEC_ORIGINS": "https://temporal.example.org/, http://localhost:1"}))
	if err != nil || c.Codec.Token != token || strings.Join(c.Codec.Origins, " ") != "https://temporal.example.org http://localhost:1" {
		t.Fatalf("set %+v %v", c.Codec, err)
	}
	_, err = Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "TAXFLOW_CODEC_TOKEN": "short/secret",
		"TAXFLOW_CODEC_ORIGINS": "http://ui.example.org/path", "TAXFLOW_CODEC_ADDR": "nowhere"}))
	if err == nil || !strings.Contains(err.Error(), "TAXFLOW_CODEC_TOKEN") || !strings.Contains(err.Error(), "TAXFLOW_CODEC_ORIGINS") ||
		!strings.Contains(err.Error(), "TAXFLOW_CODEC_ADDR") {
		t.Fatalf("want every codec variable named, got %v", err)
	}
	if strings.Contains(err.Error(), "short/secret") {
		t.Fatalf("the error repeats the token: %v", err)
	}
}

// Personal data are destroyed within 30 days of a withdrawal (152-FZ art. 21 p.5): the
// consent wait defaults to 29 days and may not be longer than 30.
func TestConsentWaitWithinThirtyDays(t *testing.T) {
	base := map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
	c, err := Load(env(base))
	if err != nil || c.Identity.ConsentWait != 29*24*time.Hour {
		t.Fatalf("default: %v %v", c.Identity.ConsentWait, err)
	}
	base["TAXFLOW_IDENTITY_CONSENT_WAIT"] = "744h"
	if _, err := Load(env(base)); err == nil || !strings.Contains(err.Error(), "TAXFLOW_IDENTITY_CONSENT_WAIT") {
		t.Fatalf("31 days accepted: %v", err)
	}
}

func TestSubjectKeyIsItsOwnSecret(t *testing.T) {
	subjectKey := "v1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	load := func(payloadKey string) Config {
		t.Helper()
		c, err := Load(env(map[string]string{"AWS_REGION": "eu-central-1", "TAXFLOW_PAYLOAD_KEY": payloadKey, "TAXFLOW_SUBJECT_KEY": subjectKey}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RequireSubjectKey(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := load(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)))
	b := load(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32)))
	if a.Subject.Value("500100732259") != b.Subject.Value("500100732259") {
		t.Fatal("a payload key rotation changed the subject")
	}
	for _, name := range []string{"TAXFLOW_SUBJECT_KEY", "TAXFLOW_SUBJECT_KEYS_PREVIOUS"} {
		if !slices.Contains(Variables, name) {
			t.Errorf("Variables lacks %s", name)
		}
	}
}

func TestSubjectKeyMissingOrShortRefused(t *testing.T) {
	c, err := Load(env(map[string]string{"AWS_REGION": "eu-central-1"}))
	if err != nil {
		t.Fatal(err) // a worker or a function needs no subject key
	}
	if err := c.RequireSubjectKey(); err == nil || !strings.Contains(err.Error(), "TAXFLOW_SUBJECT_KEY is not set") {
		t.Fatalf("API without a subject key: %v", err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("a-short-secret-x"))
	_, err = Load(env(map[string]string{"AWS_REGION": "eu-central-1", "TAXFLOW_SUBJECT_KEY": "v1:" + short}))
	if err == nil || !strings.Contains(err.Error(), "TAXFLOW_SUBJECT_KEY") || strings.Contains(err.Error(), short) {
		t.Fatalf("short key: %v (must name the variable, never the value)", err)
	}
	long := "v2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))
	_, err = Load(env(map[string]string{"AWS_REGION": "eu-central-1", "TAXFLOW_SUBJECT_KEY": long, "TAXFLOW_SUBJECT_KEYS_PREVIOUS": "v1:" + short}))
	if err == nil || !strings.Contains(err.Error(), "TAXFLOW_SUBJECT_KEYS_PREVIOUS") || strings.Contains(err.Error(), short) {
		t.Fatalf("short previous key: %v", err)
	}
}

// Metrics listen on loopback unless told otherwise; "off" turns a listener off; a bad
// address stops the start with the variable named.
func TestMetricsAddresses(t *testing.T) {
	c, err := Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.WorkerAddr != "127.0.0.1:9464" || c.Metrics.APIAddr != "127.0.0.1:9465" || c.Metrics.BusinessInterval != time.Minute {
		t.Fatalf("defaults %+v", c.Metrics)
	}
	c, err = Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "TAXFLOW_METRICS_ADDR": "off",
		"TAXFLOW_API_METRICS_ADDR": "0.0.0.0:9100", "TAXFLOW_METRICS_BUSINESS_INTERVAL": "5m"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.WorkerAddr != "" || c.Metrics.APIAddr != "0.0.0.0:9100" || c.Metrics.BusinessInterval != 5*time.Minute {
		t.Fatalf("set %+v", c.Metrics)
	}
	if _, err := Load(env(map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "TAXFLOW_METRICS_ADDR": "9464"})); err == nil ||
		!strings.Contains(err.Error(), "TAXFLOW_METRICS_ADDR") {
		t.Fatalf("a bad address: %v", err)
	}
}
