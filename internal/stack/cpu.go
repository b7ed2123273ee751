package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on Linux).
const clockTicks = 100

// CPU is the CPU time (user + system, seconds) each running service of the stack has
// used so far, its children included (every service runs in a session of its own, which
// the Lambda host's function processes and PostgreSQL's backends share; a child that has
// ended counts in the CPU of the process that waited for it). Linux only; empty elsewhere.
// Benchmarks read it before and after a run to say where the CPU of that run went.
func (s Stack) CPU() map[string]float64 {
	groups := map[int]string{} // session id → service
	for _, svc := range s.services() {
		if pid, ok := s.running(svc.name); ok {
			groups[pid] = svc.name
		}
	}
	out := map[string]float64{}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, ok := parseStat(b)
		if !ok {
			continue
		}
		if name, ok := groups[st.sid]; ok {
			out[name] += st.cpu
		}
	}
	return out
}

// ProcessCPU is the CPU time (user + system, seconds) one process has used so far, with that
// of its children it has waited for: a bench reads it for the worker processes it started.
func ProcessCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	st, ok := parseStat(b)
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return st.cpu, nil
}

// procStat is what the benchmarks need of /proc/<pid>/stat.
type procStat struct {
	sid int     // session id
	cpu float64 // utime + stime + cutime + cstime, seconds
}

// parseStat reads a /proc/<pid>/stat line (proc(5)).
func parseStat(b []byte) (procStat, bool) {
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	// f[0] is field 3 (state): session is field 6, utime..cstime are fields 14-17.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return procStat{}, false
	}
	ticks := 0.0
	for _, v := range f[11:15] {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return procStat{}, false
		}
		ticks += t
	}
	return procStat{sid: sid, cpu: ticks / clockTicks}, true
}

// RunningTemporal is the Temporal back end that runs in the stack's run directory, whatever
// s.Temporal says: TemporalDev while the dev server's process is up, TemporalServer while any
// of the cluster's Temporal services is, "" when neither is. A bench checks it against the
// back end it was asked to measure.
func (s Stack) RunningTemporal() string {
	if _, ok := s.running("temporal"); ok {
		return TemporalDev
	}
	for _, name := range temporalServices {
		if _, ok := s.running("temporal-" + name); ok {
			return TemporalServer
		}
	}
	return ""
}
