package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	defer func() { _ = l.Close() }()
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

// fakeTools makes a tools folder whose programs are shell scripts, so Up can be tested
// without the real tools. Each script records its pid in dir before it runs body.
func fakeTools(t *testing.T, dir string, bodies map[string]string) string {
	t.Helper()
	tools := t.TempDir()
	for _, p := range []string{"bin", "dynamodb"} {
		if err := os.MkdirAll(filepath.Join(tools, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dynamodb/DynamoDBLocal.jar", "dynamodb/LoopbackDynamoDB.class"} {
		if err := os.WriteFile(filepath.Join(tools, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range bodies {
		script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/%s.started\n%s\n", dir, filepath.Base(name), body)
		if err := os.WriteFile(filepath.Join(tools, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tools
}

func freePorts(t *testing.T) Ports {
	t.Helper()
	var ps []int
	for i := 0; i < 6; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, l.Addr().(*net.TCPAddr).Port)
		defer func() { _ = l.Close() }()
	}
	return Ports{Temporal: ps[0], TemporalUI: ps[1], DynamoDB: ps[2], S3: ps[3], S3Console: ps[4], Lambda: ps[5]}
}

func requireJava(t *testing.T) {
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java is not installed: Check refuses before anything this test looks at")
	}
}

// A taken port stops Up before any service starts, and the error names the port and
// its variable.
func TestUpRefusesATakenPortBeforeStartingAnything(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	tools := fakeTools(t, dir, map[string]string{"bin/temporal": "exec sleep 300", "bin/minio": "exec sleep 300", "self": "exec sleep 300"})
	s := Stack{Tools: tools, Dir: dir, Self: filepath.Join(tools, "self"), Ports: freePorts(t)}
	l, err := net.Listen("tcp", addr(s.Ports.S3))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	err = s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d (TAXFLOW_S3_PORT)", s.Ports.S3)) {
		t.Fatalf("want an error naming port %d and TAXFLOW_S3_PORT, got %v", s.Ports.S3, err)
	}
	started, _ := filepath.Glob(filepath.Join(dir, "*.started"))
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	if len(started)+len(pids) > 0 {
		t.Fatalf("something started: %v %v", started, pids)
	}
}

// When a service dies during start, the ones this Up started are stopped again.
func TestUpStopsWhatItStartedWhenAStartFails(t *testing.T) {
	requireJava(t)
	dir := t.TempDir()
	// temporal fails a second after its start, so the others have surely started (and
	// written their pid) by then: the test is about stopping them, not about a race.
	tools := fakeTools(t, dir, map[string]string{"bin/temporal": "sleep 1; exit 3", "bin/minio": "exec sleep 300", "self": "exec sleep 300"})
	s := Stack{Tools: tools, Dir: dir, Self: filepath.Join(tools, "self"), Ports: freePorts(t)}
	err := s.Up(context.Background(), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "temporal exited during start") || !strings.Contains(err.Error(), "stopped what this start had started") {
		t.Fatalf("got %v", err)
	}
	for _, name := range []string{"bin/minio", "self"} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.Base(name)+".started"))
		if err != nil {
			t.Fatalf("%s never started: %v", name, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid == 0 || alive(pid) {
			t.Fatalf("%s (pid %d) still running after the failed start", name, pid)
		}
	}
	if st := s.Status(); st["s3"] || st["lambda"] {
		t.Fatalf("status after the failed start: %v", st)
	}
}

// CPU finds a service's processes by their session and adds up their CPU time.
func TestCPUAddsUpAServiceSession(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 5")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := Stack{Dir: dir}
	if err := os.WriteFile(s.pidFile("temporal"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.CPU()["temporal"] < 0.05 {
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted for a busy process: %v", s.CPU())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, ok := s.CPU()["dynamodb"]; ok {
		t.Fatal("a service that does not run has CPU time")
	}
}

// Kill ends a service's whole process group at once (SIGKILL: a TERM trap never runs),
// and refuses a service that is not running or not in the stack.
func TestKillEndsTheServicesProcessGroupAtOnce(t *testing.T) {
	dir := t.TempDir()
	child := filepath.Join(dir, "child.pid")
	cmd := exec.Command("sh", "-c", "trap '' TERM; sleep 300 & echo $! > "+child+"; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	go func() { _ = cmd.Wait() }() // reaps it, so that it does not linger as a zombie
	s := Stack{Dir: dir}
	if err := os.WriteFile(s.pidFile("temporal"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	var childPid int
	for deadline := time.Now().Add(10 * time.Second); childPid == 0; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(child)
		childPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if time.Now().After(deadline) {
			t.Fatal("the service's child never started")
		}
	}
	start := time.Now()
	if err := s.Kill("temporal"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Kill took %v: it waited for a polite stop", took)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(childPid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the service's child (pid %d) survived", childPid)
		}
	}
	if s.Status()["temporal"] {
		t.Fatal("status says the killed service runs")
	}
	if err := s.Kill("temporal"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("killing a stopped service: %v", err)
	}
	if err := s.Kill("nosuch"); err == nil || !strings.Contains(err.Error(), `no service "nosuch"`) {
		t.Fatalf("killing an unknown service: %v", err)
	}
}
