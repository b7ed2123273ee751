package stack

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestFromEnvPortsAndErrors(t *testing.T) {
	env := map[string]string{"TAXFLOW_S3_PORT": "19000", "TAXFLOW_RUN_DIR": "/tmp/x"}
	s, err := FromEnv(func(k string) string { return env[k] }, "/bin/taxflow")
	if err != nil {
		t.Fatal(err)
	}
	if s.Ports.S3 != 19000 || s.Ports.Temporal != 7233 || s.Dir != "/tmp/x" {
		t.Fatalf("got %+v", s)
	}
	if !strings.Contains(strings.Join(s.Env(), " "), "AWS_ENDPOINT_URL_S3=http://127.0.0.1:19000") {
		t.Fatalf("env %v", s.Env())
	}
	env["TAXFLOW_LAMBDA_PORT"] = "lots"
	if _, err := FromEnv(func(k string) string { return env[k] }, ""); err == nil || !strings.Contains(err.Error(), "TAXFLOW_LAMBDA_PORT") {
		t.Fatalf("want error naming TAXFLOW_LAMBDA_PORT, got %v", err)
	}
}

func TestUpRefusesMissingTools(t *testing.T) {
	s := Stack{Tools: t.TempDir(), Dir: t.TempDir()}
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "make setup") {
		t.Fatalf("want a pointer to make setup, got %v", err)
	}
}

func TestPortTakenIsNamed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if err := portFree(port); err == nil {
		t.Fatal("a taken port reported free")
	}
}
