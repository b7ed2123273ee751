package workflows

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/fnerr"
)

// transitionKey is one transition a case took.
type transitionKey struct{ process, from, to string }

// taken is every transition the workflows of this package's tests (the replays of the
// recorded histories included) decided to take, with how often.
var taken = struct {
	sync.Mutex
	n map[transitionKey]int
}{n: map[transitionKey]int{}}

func takenSoFar() map[transitionKey]int {
	taken.Lock()
	defer taken.Unlock()
	out := make(map[transitionKey]int, len(taken.n))
	for k, v := range taken.n {
		out[k] = v
	}
	return out
}

// TestMain watches every transition the tests' workflows take and, once they have run,
// fails the package when one of them is not in its process's table: the code took a
// transition the table (and so the diagram in docs/processes.md) does not list.
func TestMain(m *testing.M) {
	transitionSeen = func(process, from, to string) {
		taken.Lock()
		taken.n[transitionKey{process, from, to}]++
		taken.Unlock()
	}
	code := m.Run()
	seen := takenSoFar()
	if bad := unlisted(StateMachines(), seen); len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the workflows took transitions their tables (workflows/*_states.go) do not list:\n  %s\n",
			strings.Join(bad, "\n  "))
		code = 1
	} else if testing.Verbose() {
		n := 0
		for _, c := range seen {
			n += c
		}
		fmt.Printf("transitions: %d taken (%d distinct), every one listed in its process's table\n", n, len(seen))
		if idle := untaken(StateMachines(), seen); len(idle) > 0 {
			fmt.Printf("transitions listed that no test took (%d): %s\n", len(idle), strings.Join(idle, ", "))
		}
	}
	os.Exit(code)
}

// unlisted names the transitions seen that no table lists (a process with no table
// included).
func unlisted(machines []*StateMachine, seen map[transitionKey]int) []string {
	tables := map[string]*StateMachine{}
	for _, m := range machines {
		tables[m.Process] = m
	}
	var bad []string
	for k, n := range seen {
		m := tables[k.process]
		switch {
		case m == nil:
			bad = append(bad, fmt.Sprintf("%s: %s → %s (%d times): the process has no table", k.process, node(k.from), node(k.to), n))
		case !m.Allows(k.from, k.to):
			bad = append(bad, fmt.Sprintf("%s: %s → %s (%d times)", k.process, node(k.from), node(k.to), n))
		}
	}
	sort.Strings(bad)
	return bad
}

// untaken names the transitions the tables list that no run took (the start of a case is
// not recorded by the account, whose first status is set, not taken).
func untaken(machines []*StateMachine, seen map[transitionKey]int) []string {
	var out []string
	for _, m := range machines {
		for _, r := range m.Rows {
			for _, f := range r.From {
				for _, to := range r.To {
					k := transitionKey{m.Process, f, to}
					if seen[k] == 0 && !slices.Contains(out, m.Process+": "+node(f)+" → "+to) {
						out = append(out, m.Process+": "+node(f)+" → "+to)
					}
				}
			}
		}
	}
	return out
}

func TestStateTablesAreConsistent(t *testing.T) {
	for _, m := range StateMachines() {
		if err := m.Check(); err != nil {
			t.Error(err)
		}
		for s := range m.Labels {
			if !slices.Contains(m.Statuses, s) {
				t.Errorf("%s: the status %s has a label but no place in the table", m.Process, s)
			}
		}
	}
}

// The check can fail: a table without the row of the reviewer's decision does not allow
// the transition a reviewed refund takes, and unlisted says so.
func TestTransitionCheckFailsWithoutItsRow(t *testing.T) {
	before := takenSoFar()
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.upload("d1", pdfBytes)
	h.decide(2*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7", Reason: "documents confirm the overpayment"}, false)
	if st := h.run(input(3_000_000, "d1")); st.Status != RefundPaid {
		t.Fatalf("status %s, want paid", st.Status)
	}
	run := map[transitionKey]int{}
	for k, n := range takenSoFar() {
		if n > before[k] {
			run[k] = n - before[k]
		}
	}
	decided := transitionKey{"refund", RefundInReview, RefundApproved}
	if run[decided] == 0 {
		t.Fatalf("the run's transitions %v miss %v: the hook is not called", run, decided)
	}
	if bad := unlisted(StateMachines(), run); len(bad) > 0 {
		t.Fatalf("with the tables as they are: %v", bad)
	}
	cut := refundStates
	cut.Rows = slices.DeleteFunc(slices.Clone(cut.Rows), func(r StateRow) bool { return r.Via == update(RefundUpdateDecide) })
	if len(cut.Rows) != len(refundStates.Rows)-1 {
		t.Fatalf("no row of the decide update to remove")
	}
	bad := unlisted([]*StateMachine{&cut, &identityStates, &accountStates, &declarationStates}, run)
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "refund: in_review → approved") {
		t.Fatalf("without the decide row: %v, want the one transition in_review → approved", bad)
	}
	if bad := unlisted([]*StateMachine{&identityStates}, run); len(bad) == 0 || !strings.Contains(bad[0], "no table") {
		t.Fatalf("with no refund table: %v", bad)
	}
}

// The validators ask the table: a refund whose table lists no decide update refuses a
// reviewer's decision in review, with the same answer as a decision out of time.
func TestRefundValidatorsAskTheTable(t *testing.T) {
	r := &refund{st: RefundStatus{Status: RefundInReview}}
	d := RefundDecision{Approve: true, Reviewer: "inspector-7"}
	if err := r.validateDecision(d); err != nil {
		t.Fatalf("in review: %v", err)
	}
	saved := refundStates.Rows
	t.Cleanup(func() { refundStates.Rows = saved })
	refundStates.Rows = slices.DeleteFunc(slices.Clone(saved), func(r StateRow) bool { return r.Via == update(RefundUpdateDecide) })
	err := r.validateDecision(d)
	if err == nil || !strings.Contains(err.Error(), "no decision can be taken") || errType(err) != fnerr.TypeConflict {
		t.Fatalf("without the decide row: %v (%s), want a Conflict", err, errType(err))
	}
}

// The account's paths ask the table too: without the row of the self-service update, a
// temporary lock no longer offers it.
func TestAccountPathsAskTheTable(t *testing.T) {
	r := &account{st: AccountState{Status: AccountAutoUnlockPending, TriesLeft: 1}}
	if err := r.canSelfService(); err != nil {
		t.Fatalf("a temporary lock: %v", err)
	}
	saved := accountStates.Rows
	t.Cleanup(func() { accountStates.Rows = saved })
	accountStates.Rows = slices.DeleteFunc(slices.Clone(saved), func(r StateRow) bool { return r.Via == update(AccountUpdateSelfService) })
	if err := r.canSelfService(); err == nil || errType(err) != fnerr.TypeConflict {
		t.Fatalf("without the self_service row: %v, want a Conflict", err)
	}
}

func TestProcessesDocIsCurrent(t *testing.T) {
	b, err := os.ReadFile("../docs/processes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	want, err := ProcessesDoc(doc)
	if err != nil {
		t.Fatal(err)
	}
	if want != doc {
		t.Fatal("docs/processes.md: the state diagrams are not those of the transitions tables (workflows/*_states.go): run `make docs`")
	}
	for _, m := range StateMachines() {
		if !strings.Contains(doc, "```mermaid\n"+m.Mermaid()+"```") {
			t.Errorf("docs/processes.md shows no diagram of %s", m.Process)
		}
	}
	// A stale diagram is seen: one arrow less, and the doc is written again.
	stale := strings.Replace(doc, "in_review --> approved", "in_review --> paid", 1)
	if stale == doc {
		t.Fatal("the refund diagram has no arrow in_review --> approved")
	}
	if again, err := ProcessesDoc(stale); err != nil || again != doc {
		t.Fatalf("a stale diagram is not rewritten (%v)", err)
	}
	if _, err := ProcessesDoc(strings.Replace(doc, "<!-- states:refund:end -->", "", 1)); err == nil {
		t.Fatal("a missing marker is not an error")
	}
}
