package bench

import (
	"reflect"
	"strings"
	"testing"
)

// The bench measures the back end it was asked for, or none: it refuses another before it
// connects to anything, naming what runs and how to get what was asked.
func TestBenchBackendRefusesTheOtherBackEnd(t *testing.T) {
	for _, c := range []struct {
		want, running string
		got           string
		err           []string // fragments of the message; nil: no error
	}{
		{"", "", "", nil},
		{"", "dev", "dev", nil},
		{"", "server", "server", nil},
		{"dev", "dev", "dev", nil},
		{"server", "server", "server", nil},
		{"server", "dev", "", []string{"--temporal server", "/run/x", "runs the Temporal dev back end", "--temporal dev", "stack up --temporal server"}},
		{"dev", "server", "", []string{"--temporal dev", "runs the Temporal server back end", "--temporal server", "`taxflow stack up`"}},
		{"server", "", "", []string{"no Temporal of the local stack runs in /run/x", "taxflow stack up --temporal server"}},
		{"cluster", "server", "", []string{`--temporal "cluster" must be dev`, "server"}},
		{"Server", "server", "", []string{`"Server"`}},
	} {
		got, err := benchBackend(c.want, c.running, "/run/x")
		if c.err == nil {
			if err != nil || got != c.got {
				t.Errorf("benchBackend(%q, running %q) = %q, %v; want %q", c.want, c.running, got, err, c.got)
			}
			continue
		}
		if err == nil {
			t.Errorf("benchBackend(%q, running %q) = %q, want an error", c.want, c.running, got)
			continue
		}
		for _, f := range c.err {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("benchBackend(%q, running %q): %q does not say %q", c.want, c.running, err, f)
			}
		}
	}
}

func TestBenchAddressIsTheStacksFrontend(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:31233", "localhost:31233", "[::1]:31233"} {
		if err := benchAddress(ok, "/run/x", 31233); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:7233", "10.0.0.5:31233", "temporal.example:31233", "31233", ""} {
		err := benchAddress(bad, "/run/x", 31233)
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:31233") || !strings.Contains(err.Error(), "stack env") {
			t.Errorf("%q: %v, want a refusal naming the stack's frontend", bad, err)
		}
	}
}

// The Temporal server's processes add up in one column whichever the back end; PostgreSQL,
// the stores, the Lambda host and the worker keep theirs; the total counts every process.
func TestCPUColumns(t *testing.T) {
	cluster := map[string]float64{
		"postgres": 3, "temporal-history": 4, "temporal-matching": 2, "temporal-frontend": 1.5, "temporal-worker": 0.25, "temporal-ui": 0.25,
		"dynamodb": 2, "s3": 0.5, "lambda": 1, "worker": 1.5,
	}
	want := map[string]float64{"postgres": 3, "temporal": 8, "dynamodb": 2, "s3": 0.5, "lambda": 1, "worker": 1.5}
	if got := cpuColumns(cluster); !reflect.DeepEqual(got, want) {
		t.Fatalf("cpuColumns(cluster) = %v, want %v", got, want)
	}
	// 10 workflows: ms per workflow; total 16 s.
	if got, want := cpuRow(cluster, 10, true), []string{"300", "800", "200", "50", "100", "150", "1600", "-"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("cpuRow(cluster) = %v, want %v", got, want)
	}
	dev := map[string]float64{"temporal": 6, "dynamodb": 2, "s3": 0.5, "lambda": 1, "worker": 1.5}
	if got, want := cpuRow(dev, 10, false), []string{"-", "600", "200", "50", "100", "150", "1100", "-"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("cpuRow(dev) = %v, want %v", got, want)
	}
	// A process the table has no column for still counts in the total.
	if got := cpuRow(map[string]float64{"worker": 1, "other": 1}, 1, false); got[len(got)-2] != "2000" {
		t.Fatalf("total = %v, want every process counted", got)
	}
	// The machine's CPU beyond the processes' is the others'; it is no process's.
	dev[machineCPU] = 14
	if got := cpuRow(dev, 10, false); got[len(got)-2] != "1100" || got[len(got)-1] != "300" {
		t.Fatalf("cpuRow with the machine's CPU = %v, want total 1100, others 300", got)
	}
	dev[machineCPU] = 10.9
	if got := cpuRow(dev, 10, false); got[len(got)-1] != "0" {
		t.Fatalf("others = %v, want 0 when the machine reads less than the processes", got)
	}
}
