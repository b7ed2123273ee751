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
// used so far, its children included: every service runs in a session of its own, which the
// Lambda host's function processes share, and a process that made a session of its own
// (PostgreSQL's backends each do) counts with its parent's service. A child that has ended
// counts in the CPU of the process that waited for it. Linux only; empty elsewhere.
// Benchmarks read it before and after a run to say where the CPU of that run went.
func (s Stack) CPU() map[string]float64 {
	groups := map[int]string{} // session id → service
	for _, svc := range s.services() {
		if pid, ok := s.running(svc.name); ok {
			groups[pid] = svc.name
		}
	}
	procs := map[int]procStat{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if st, ok := parseStat(b); ok {
			procs[st.pid] = st
		}
	}
	return cpuByService(procs, groups)
}

// cpuByService adds up the processes' CPU by service: a process belongs to the service whose
// session it is in, or else to that of its nearest ancestor that does.
func cpuByService(procs map[int]procStat, sessions map[int]string) map[string]float64 {
	out := map[string]float64{}
	for _, st := range procs {
		for p, depth := st, 0; depth < 64; depth++ {
			if name, ok := sessions[p.sid]; ok {
				out[name] += st.cpu
				break
			}
			parent, ok := procs[p.ppid]
			if !ok || parent.pid == p.pid {
				break
			}
			p = parent
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
	pid, ppid, sid int
	cpu            float64 // utime + stime + cutime + cstime, seconds
}

// parseStat reads a /proc/<pid>/stat line (proc(5)).
func parseStat(b []byte) (procStat, bool) {
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b[:i]), "(", 2)[0]))
	if err != nil {
		return procStat{}, false
	}
	// f[0] is field 3 (state): ppid is field 4, session field 6, utime..cstime fields 14-17.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	sid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
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
	return procStat{pid: pid, ppid: ppid, sid: sid, cpu: ticks / clockTicks}, true
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

// MachineCPU is the CPU time (seconds, all cores) the machine has spent on anything but idle
// since boot, from /proc/stat: a bench compares it with its processes' to tell how much CPU
// others used during a run on a shared machine.
func MachineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineStat(b)
}

// parseMachineStat reads /proc/stat's first line: user nice system idle iowait irq softirq
// steal (guest time is already in user).
func parseMachineStat(b []byte) (float64, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	ticks := 0.0
	for i, v := range f[1:9] {
		t, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			ticks += t
		}
	}
	return ticks / clockTicks, nil
}
