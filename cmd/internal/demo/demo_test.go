package demo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Run refuses options it cannot walk with, naming each missing part, before it calls
// anything (no clients, no Temporal client: a call would be a nil dereference).
func TestRunNamesWhatTheOptionsLack(t *testing.T) {
	var out bytes.Buffer
	_, err := Run(context.Background(), Options{Out: &out})
	if err == nil {
		t.Fatal("Run with empty options: no error")
	}
	for _, want := range []string{"Clients", "Temporal", "Config.APIAddr", "Data", "Keys", "Stack"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("Run printed before it refused: %q", out.String())
	}
}

// The report's error names each process that did not reach its end and where it stopped;
// a walk cut short before every process ran is a failure too.
func TestReportNamesEveryFailure(t *testing.T) {
	ok := func(p string) outcome { return outcome{process: p, status: "done", want: "done"} }
	all := []outcome{ok("refund"), ok("identity"), ok("declaration"), ok("account"), ok("reminder"), ok("webhooks")}
	if err := (Report{outcomes: all}).Err(); err != nil {
		t.Fatalf("every process ended: %v", err)
	}
	failed := append([]outcome{}, all...)
	failed[1] = outcome{process: "identity", status: "needs_documents", want: "verified"}
	failed[2] = outcome{process: "declaration", step: "confirm", err: errors.New("declaration: confirm: 409")}
	err := (Report{outcomes: failed}).Err()
	if err == nil {
		t.Fatal("two failures: no error")
	}
	for _, want := range []string{"demo failed", "identity: ended needs_documents, want verified", "declaration: confirm: 409"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if err := (Report{outcomes: all[:3]}).Err(); err == nil || !strings.Contains(err.Error(), "interrupted before every process ran") {
		t.Fatalf("a walk cut short: %v", err)
	}
}

// The summary is one line per process, OK or where it failed.
func TestSummaryLines(t *testing.T) {
	var out bytes.Buffer
	m := &demo{out: &out}
	m.summary([]outcome{
		{process: "refund", caseID: "refund-1", status: "paid", label: "Перечислено", want: "paid"},
		{process: "identity", caseID: "identity-1", status: "received", label: "Принято", want: "verified"},
		{process: "account", caseID: "account-1", step: "lock", err: errors.New("x")},
	}, 4600*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || lines[0] != "summary (4.6s)" {
		t.Fatalf("summary:\n%s", out.String())
	}
	for i, want := range []string{"OK", "FAILED: ended received, want verified", `FAILED at "lock"`} {
		if !strings.HasSuffix(lines[2+i], want) {
			t.Errorf("line %q does not end with %q", lines[2+i], want)
		}
	}
	if !strings.Contains(lines[2], "«Перечислено»") {
		t.Errorf("line %q lacks the label", lines[2])
	}
}
