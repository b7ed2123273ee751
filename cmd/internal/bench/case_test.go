package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/taxflow/taxflow/cmd/internal/sizing"
)

// A request's case reaches the meter through the context the bench's handler gives it;
// what no case made is counted apart, never against a case.
func TestCaseOf(t *testing.T) {
	if got := caseOf(context.WithValue(context.Background(), benchCaseKey{}, "bench-refund-1")); got != "bench-refund-1" {
		t.Fatalf("caseOf = %q", got)
	}
	if got := caseOf(context.Background()); got != "unattributed" {
		t.Fatalf("caseOf of a bare context = %q", got)
	}
}

func TestPerCaseNeedsACase(t *testing.T) {
	if err := benchPerCase(context.Background(), nil, nil, Target{}, 0, ""); err == nil || !strings.Contains(err.Error(), "--n 0") {
		t.Fatalf("n = 0: %v", err)
	}
}

// The capacity note says when answers came without ConsumedCapacity.
func TestCapacityNote(t *testing.T) {
	if n := capacityNote([]sizing.Process{{}}); !strings.Contains(n, "DynamoDB's own") {
		t.Fatal(n)
	}
	if n := capacityNote([]sizing.Process{{NoCapacity: 2}}); !strings.Contains(n, "2.0 answers per case came without it") {
		t.Fatal(n)
	}
}
