package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/stack"
)

// benchBackend checks the Temporal back end the bench was asked to measure (--temporal: dev,
// server, or "" for whatever the stack runs) against the one running in the stack's run
// directory, before the bench connects to anything. It returns the back end measured: "" when
// none was asked for and no local stack runs (the bench then measures whatever TEMPORAL_ADDRESS
// is, without CPU by stack process).
func benchBackend(want, running, dir string) (string, error) {
	if err := checkBackend(want); err != nil {
		return "", err
	}
	start := map[string]string{stack.TemporalDev: "taxflow stack up", stack.TemporalServer: "taxflow stack up --temporal server"}
	switch {
	case running == "" && want != "":
		return "", fmt.Errorf("--temporal %s: no Temporal of the local stack runs in %s (TAXFLOW_RUN_DIR): start it with `%s`", want, dir, start[want])
	case want != "" && running != want:
		return "", fmt.Errorf("--temporal %s: the stack in %s (TAXFLOW_RUN_DIR) runs the Temporal %s back end; "+
			"run the bench with --temporal %s, or stop that stack (`taxflow stack down`) and start it with `%s`", want, dir, running, running, start[want])
	}
	return running, nil
}

// checkBackend refuses a --temporal that names no back end.
func checkBackend(want string) error {
	switch want {
	case "", stack.TemporalDev, stack.TemporalServer:
		return nil
	}
	return fmt.Errorf("--temporal %q must be %s (the dev server) or %s (a Temporal cluster on PostgreSQL); leave it out to measure whatever the stack runs",
		want, stack.TemporalDev, stack.TemporalServer)
}

// benchAddress checks that the bench's client (TEMPORAL_ADDRESS) talks to the frontend of the
// stack whose back end and CPU it reports.
func benchAddress(address, dir string, port int) error {
	host, p, err := net.SplitHostPort(address)
	if err != nil || strconv.Itoa(port) != p || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		return fmt.Errorf("TEMPORAL_ADDRESS=%s is not the Temporal frontend of the stack in %s (127.0.0.1:%d): "+
			"run the bench in that stack's environment (eval \"$(taxflow stack env)\")", address, dir, port)
	}
	return nil
}

// workerProcs are `taxflow worker` processes the bench starts on a task queue of their own:
// the deployment's worker, each a process of its own, as in production.
type workerProcs struct {
	queue string
	procs []*workerProc
}

type workerProc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once the process has ended
}

// startWorkerProcs starts n worker processes on a new task queue and returns once the queue
// lists a workflow and an activity poller of each.
func startWorkerProcs(ctx context.Context, c client.Client, self, logDir string, n int) (*workerProcs, error) {
	w := &workerProcs{queue: "bench-procs-" + uuid.NewString()}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		logPath := filepath.Join(logDir, fmt.Sprintf("bench-worker-%d-of-%d.log", i, n))
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			w.stop()
			return nil, err
		}
		cmd := exec.Command(self, "worker")
		// The stack's environment is the bench's; the worker polls the bench's queue, calls the
		// functions through the Lambda host, and serves no metrics (several would share a port).
		cmd.Env = append(os.Environ(), "TAXFLOW_TASK_QUEUE="+w.queue, "TAXFLOW_INVOKER=lambda", "TAXFLOW_METRICS_ADDR=off")
		cmd.Stdout, cmd.Stderr = f, f
		// Should the bench die without stopping them, they go too.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		err = cmd.Start()
		_ = f.Close() // the child holds its own descriptor
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("start worker process %d: %w", i, err)
		}
		p := &workerProc{cmd: cmd, log: logPath, exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(p.exited) }()
		w.procs = append(w.procs, p)
	}
	if err := w.waitPolling(ctx, c); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// waitPolling waits until the task queue has a workflow and an activity poller of each process.
func (w *workerProcs) waitPolling(ctx context.Context, c client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		missing := 0
		for _, p := range w.procs {
			select {
			case <-p.exited:
				return fmt.Errorf("worker process %d ended before it polled %s; see %s", p.cmd.Process.Pid, w.queue, p.log)
			default:
			}
		}
		for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
			d, err := c.DescribeTaskQueue(ctx, w.queue, typ)
			if err != nil {
				missing = len(w.procs)
				break
			}
			for _, p := range w.procs {
				prefix := strconv.Itoa(p.cmd.Process.Pid) + "@"
				found := false
				for _, poller := range d.GetPollers() {
					found = found || strings.HasPrefix(poller.GetIdentity(), prefix)
				}
				if !found {
					missing++
				}
			}
		}
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("task queue %s: %d pollers of the %d worker processes missing after 90 s; see %s", w.queue, missing, len(w.procs), w.procs[0].log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cpu is the CPU seconds the processes have used so far (read from /proc/<pid>/stat).
func (w *workerProcs) cpu() float64 {
	if w == nil {
		return 0
	}
	total := 0.0
	for _, p := range w.procs {
		if s, err := stack.ProcessCPU(p.cmd.Process.Pid); err == nil {
			total += s
		}
	}
	return total
}

// stop ends the processes: SIGTERM (the worker finishes its tasks), SIGKILL after 15 s.
func (w *workerProcs) stop() {
	if w == nil {
		return
	}
	for _, p := range w.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, p := range w.procs {
		select {
		case <-p.exited:
		case <-deadline:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// machineCPU is the key of the machine's CPU (all processes) among the bench's CPU readings.
const machineCPU = "machine"

// cpuColumns folds CPU seconds by process (the stack's services and the bench's "worker") into
// the columns of the bench's table: the Temporal server's processes (the dev server, or the
// cluster's four services and its Web UI) add up in "temporal"; PostgreSQL, the stores, the
// Lambda host (with its function processes) and the worker keep their own.
func cpuColumns(by map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range by {
		if k == "temporal" || strings.HasPrefix(k, "temporal-") {
			k = "temporal"
		}
		out[k] += v
	}
	return out
}

// cpuTable are the columns of the bench's CPU table, in order; then the total of every
// process and the others: the rest of the machine's CPU (a shared machine's other work).
var cpuTable = []string{"postgres", "temporal", "dynamodb", "s3", "lambda", "worker"}

// clusterSplit are the cluster's Temporal processes, shown one by one below the table.
var clusterSplit = []string{"temporal-history", "temporal-matching", "temporal-frontend", "temporal-worker", "temporal-ui"}

// cpuRow formats one variant's row of the CPU table: ms per workflow, "-" for a process the
// back end does not have (PostgreSQL on the dev server) or a machine CPU not read.
func cpuRow(by map[string]float64, workflows int, server bool) []string {
	cols := cpuColumns(by)
	machine, haveMachine := cols[machineCPU]
	delete(cols, machineCPU)
	// A process that ended unwaited-for within its service takes its CPU along: a reading may
	// then fall by a little, never below none.
	per := func(s float64) string { return fmt.Sprintf("%.0f", max(0, 1000*s/float64(workflows))) }
	var out []string
	total := 0.0
	for _, v := range cols {
		total += v
	}
	for _, k := range cpuTable {
		if k == "postgres" && !server {
			out = append(out, "-")
			continue
		}
		out = append(out, per(cols[k]))
	}
	out = append(out, per(total))
	if !haveMachine {
		return append(out, "-")
	}
	// Never below zero: the processes' times and the machine's are read a moment apart.
	return append(out, per(max(0, machine-total)))
}
