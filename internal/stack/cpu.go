package stack

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on Linux).
const clockTicks = 100

// CPU is the CPU time (user + system, seconds) each running service of the stack has
// used so far, its children included (every service runs in a session of its own, which
// the Lambda host's function processes share). Linux only; empty elsewhere. Benchmarks read it before and after a run
// to say where the CPU of that run went.
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
		// The fields after the command name, which is in parentheses and may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		sid, _ := strconv.Atoi(f[3])
		name, ok := groups[sid]
		if !ok {
			continue
		}
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		out[name] += (utime + stime) / clockTicks
	}
	return out
}
