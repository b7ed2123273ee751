package workflows

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/taxflow/taxflow/internal/term"
)

// The recompute_term update (RefundUpdateRecomputeTerm, DeclarationUpdateRecomputeTerm)
// counts a case's running term again over the production calendar the worker has now (a
// decree for a year the term was counted over provisionally, loaded with a new release).
// A changed term is a journal entry (term_recomputed) with the projection, the deadline
// moves and the deadline watch starts again on it; an unchanged one takes no step. A case
// past the point where its term matters refuses it (a late message). The handler does
// the work itself, as the deadline watch does, under the journal's step mutex: the main
// coroutine of a waiting case has no point where it could act on it, and none is needed
// (it reads the deadline from the state when it uses it).

// TermRecomputed is the recompute update's answer (no personal data).
type TermRecomputed struct {
	CaseID  string `json:"case_id"`
	Changed bool   `json:"changed"`
	// Previous and DeadlineDay are the last day before and after (YYYY-MM-DD, Moscow).
	Previous    string    `json:"previous_day"`
	DeadlineDay string    `json:"deadline_day"`
	Deadline    time.Time `json:"deadline"`
	// Provisional: the years the term still rests on without a decree; Decreed: those
	// the term was counted over provisionally and that now have one.
	Provisional []int `json:"provisional_years,omitempty"`
	Decreed     []int `json:"decreed_years,omitempty"`
}

// workerTerms is the calendar terms are counted over: the worker's (calendar.Shared).
// Tests swap it to load a decree under a running case; workflow code reads it only inside
// workflow.SideEffect.
var workerTerms atomic.Pointer[term.Terms]

// currentTerms is the calendar the worker has now.
func currentTerms() term.Terms {
	if t := workerTerms.Load(); t != nil {
		return *t
	}
	return term.Default()
}

// decreedSince lists the years of before that are not in after (decreed since).
func decreedSince(before, after []int) []int {
	var out []int
	for _, y := range before {
		if !slices.Contains(after, y) {
			out = append(out, y)
		}
	}
	return out
}

// recomputedReason is the journal entry of a moved term.
func recomputedReason(what, previous string, res term.Result, decreed []int, rule string) string {
	s := fmt.Sprintf("%s recomputed over the production calendar: last day %s → %s", what, previous, res.LastDay.Format(time.DateOnly))
	if len(decreed) > 0 {
		s += fmt.Sprintf("; decree now loaded for %v", decreed)
	}
	if res.IsProvisional() {
		s += fmt.Sprintf("; still provisional for %v", res.Provisional)
	}
	return s + " (" + rule + ")"
}
