package main

import (
	"strings"
	"testing"
)

func TestStaffPasswordFromStdinOrGenerated(t *testing.T) {
	pw, generated, err := staffPassword(true, strings.NewReader("a long enough password\nrest"))
	if err != nil || generated || pw != "a long enough password" {
		t.Fatalf("from stdin: %q %v %v", pw, generated, err)
	}
	if _, _, err := staffPassword(true, strings.NewReader("")); err == nil {
		t.Fatal("an empty stdin gave a password")
	}
	a, generated, err := staffPassword(false, nil)
	b, _, _ := staffPassword(false, nil)
	if err != nil || !generated || len(a) != 20 || a == b {
		t.Fatalf("generated %q %q %v", a, b, err)
	}
}

func TestStaffCommandNeedsRoleAndName(t *testing.T) {
	for _, args := range [][]string{nil, {"list"}, {"create", "--role", "reviewer"}, {"create", "--name", "anna"}} {
		if err := runStaff(t.Context(), args, strings.NewReader("")); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: %v, want the usage", args, err)
		}
	}
}
