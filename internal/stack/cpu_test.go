package stack

import (
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 150, stime 50, cutime 200, cstime 100 ticks.
	line := "4242 (a (b) c) S 1 4242 4240 0 -1 4194560 100 0 0 0 150 50 200 100 20 0 1 0 100 0 0\n"
	st, ok := parseStat([]byte(line))
	if want := (procStat{pid: 4242, ppid: 1, sid: 4240, cpu: 5}); !ok || st != want {
		t.Fatalf("parseStat = %+v, %v; want %+v", st, ok, want)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (x) S 1 2", "4242 (x) S 1 2 x 0 0 0 0 0 0 0 0 0 0 0", "x (y) S 1 2 3 0 0 0 0 0 0 0 0 0 0 0 0"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

// A service's process that has ended (PostgreSQL's backend of a closed connection, a function
// process of the Lambda host) still counts: in the process that waited for it.
func TestCPUCountsChildrenThatEnded(t *testing.T) {
	dir := t.TempDir()
	// The subshell burns CPU and ends; its parent, the session leader, waits for it and sleeps.
	cmd := exec.Command("sh", "-c", "(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); sleep 10")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := Stack{Dir: dir, Temporal: TemporalServer}
	if err := os.WriteFile(s.pidFile("postgres"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The leader does next to nothing itself: its CPU grows only once the busy subshell has
	// ended and been waited for.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := ProcessCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if got >= 0.05 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ProcessCPU = %v after 30 s; want the waited-for child's CPU", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if cpu := s.CPU()["postgres"]; cpu < 0.05 {
		t.Fatalf("the ended child's CPU is not counted: %v", s.CPU())
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Fatal("ProcessCPU of a process that does not exist")
	}
}

// The back end that runs is read from the run directory's processes, not from s.Temporal.
func TestRunningTemporal(t *testing.T) {
	self := []byte(strconv.Itoa(os.Getpid()))
	for _, c := range []struct {
		pidFiles []string
		want     string
	}{
		{nil, ""},
		{[]string{"dynamodb", "postgres"}, ""},
		{[]string{"temporal"}, TemporalDev},
		{[]string{"temporal-history"}, TemporalServer},
		{[]string{"postgres", "temporal-frontend", "dynamodb"}, TemporalServer},
	} {
		for _, asked := range []string{TemporalDev, TemporalServer} {
			s := Stack{Dir: t.TempDir(), Temporal: asked}
			for _, name := range c.pidFiles {
				if err := os.WriteFile(s.pidFile(name), self, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := s.RunningTemporal(); got != c.want {
				t.Errorf("pid files %v, Temporal %s: RunningTemporal() = %q, want %q", c.pidFiles, asked, got, c.want)
			}
		}
	}
	// A pid file left by a process that has ended is not a running back end.
	s := Stack{Dir: t.TempDir()}
	if err := os.WriteFile(s.pidFile("temporal-frontend"), []byte(strconv.Itoa(1<<30)), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.RunningTemporal(); got != "" {
		t.Fatalf("a stale pid file: RunningTemporal() = %q", got)
	}
}

func TestParseMachineStat(t *testing.T) {
	// user 100, nice 10, system 50, idle 1000, iowait 40, irq 5, softirq 5, steal 30; guest 20 is in user.
	got, err := parseMachineStat([]byte("cpu  100 10 50 1000 40 5 5 30 20 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil || got != 2 {
		t.Fatalf("parseMachineStat = %v, %v; want 2 s (busy ticks only)", got, err)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3"} {
		if _, err := parseMachineStat([]byte(bad)); err == nil {
			t.Errorf("parseMachineStat(%q) accepted", bad)
		}
	}
	if m, err := MachineCPU(); err != nil || m <= 0 {
		t.Fatalf("MachineCPU = %v, %v", m, err)
	}
}

// PostgreSQL's backends each make a session of their own (setsid in InitPostmasterChild): they
// count with the service of their parent, the postmaster, as do their own children.
func TestCPUByServiceFollowsParents(t *testing.T) {
	procs := map[int]procStat{
		100: {pid: 100, ppid: 1, sid: 100, cpu: 1},   // postmaster, the service's session
		101: {pid: 101, ppid: 100, sid: 101, cpu: 2}, // a backend, a session of its own
		102: {pid: 102, ppid: 101, sid: 102, cpu: 4}, // a child of the backend
		200: {pid: 200, ppid: 1, sid: 200, cpu: 8},   // the Lambda host
		201: {pid: 201, ppid: 200, sid: 200, cpu: 16},
		300: {pid: 300, ppid: 1, sid: 300, cpu: 32}, // not the stack's
		301: {pid: 301, ppid: 300, sid: 301, cpu: 64},
		1:   {pid: 1, ppid: 0, sid: 1, cpu: 128},
		400: {pid: 400, ppid: 400, sid: 400, cpu: 256}, // its own parent: no endless walk
	}
	got := cpuByService(procs, map[int]string{100: "postgres", 200: "lambda"})
	if want := map[string]float64{"postgres": 7, "lambda": 24}; !reflect.DeepEqual(got, want) {
		t.Fatalf("cpuByService = %v, want %v", got, want)
	}
}
