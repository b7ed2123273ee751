package stack

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// Every process of the stack runs inside the run directory: what a tool writes into its
// working directory (DynamoDB Local's dynamodb-local-metadata.json) must never land in
// the repository.
func TestEveryServiceRunsInsideTheRunDir(t *testing.T) {
	s := Stack{Tools: t.TempDir(), Dir: filepath.Join(t.TempDir(), "run"), Self: "/bin/true"}
	for _, svc := range s.services() {
		cmd, err := s.command(svc)
		if err != nil {
			t.Fatalf("%s: %v", svc.name, err)
		}
		rel, err := filepath.Rel(s.Dir, cmd.Dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s runs in %q, outside the run directory %s", svc.name, cmd.Dir, s.Dir)
		}
		if fi, err := os.Stat(cmd.Dir); err != nil || !fi.IsDir() {
			t.Errorf("%s: working directory %s not made: %v", svc.name, cmd.Dir, err)
		}
	}
}

func TestWebUIGetsTheCodecEndpoint(t *testing.T) {
	env := map[string]string{"TAXFLOW_RUN_DIR": t.TempDir(), "TAXFLOW_CODEC_PORT": "32089", "TAXFLOW_TEMPORAL_UI_PORT": "32234"}
	s, err := FromEnv(func(k string) string { return env[k] }, "/bin/taxflow")
	if err != nil {
		t.Fatal(err)
	}
	token, err := s.CodecToken()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Fatalf("token %q is not 32 bytes, URL-safe", token)
	}
	if again, _ := s.CodecToken(); again != token {
		t.Fatal("the token changed between calls: a running UI would lose its codec")
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "data", "codec.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	endpoint := "http://127.0.0.1:32089/codec/" + token
	var temporal service
	for _, svc := range s.services() {
		if svc.name == "temporal" {
			temporal = svc
		}
	}
	cmd, err := s.command(temporal)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(cmd.Args, "--ui-codec-endpoint")
	if i < 0 || cmd.Args[i+1] != endpoint {
		t.Fatalf("temporal server start-dev %v: want --ui-codec-endpoint %s", cmd.Args, endpoint)
	}
	for _, want := range []string{"TAXFLOW_CODEC_ENDPOINT=" + endpoint, "TAXFLOW_CODEC_ADDR=127.0.0.1:32089", "TAXFLOW_CODEC_TOKEN=" + token,
		"TAXFLOW_CODEC_ORIGINS=http://127.0.0.1:32234,http://localhost:32234"} {
		if !slices.Contains(s.Env(), want) {
			t.Errorf("stack env lacks %s: %v", want, s.Env())
		}
	}
}
