package workflows

import (
	"fmt"
	"slices"
	"strings"
)

// A process read as a state machine. Each workflow keeps its table next to it
// (refund_states.go, identity_states.go, declaration_states.go, account_states.go): every
// status the case can be in, and every message, timer and step of its own that moves it
// to another status or that a status takes without moving. The table is the one place
// that says which message a status takes: the validators of the workflow's updates ask it
// (Takes) before their other checks; the tests check every transition a run records
// against it (Allows; states_test.go); and the diagrams of docs/processes.md are drawn from
// it (`make docs`, workflows/cmd/statesdoc), a test failing when they are stale.
//
// The table is data read by validators and tests only: it produces no command, so a
// change to it changes no history.

// Start is the status of a case before its first step is written (the diagram's [*]).
const Start = ""

// ViaKind is what moves a case.
type ViaKind string

// What moves a case: a message (update or signal, by its handler's name), a timer, a
// step of the workflow's own (an activity's answer, a child's result: a rule of the
// process decides), the start of the case, or its cancellation.
const (
	ViaStart  ViaKind = "start"
	ViaUpdate ViaKind = "update"
	ViaSignal ViaKind = "signal"
	ViaTimer  ViaKind = "timer"
	ViaStep   ViaKind = "step"
	ViaCancel ViaKind = "cancel"
)

// Via names what moves a case: for an update or a signal the handler's name, for a timer
// or a step what it is.
type Via struct {
	Kind ViaKind
	Name string
}

func update(name string) Via { return Via{ViaUpdate, name} }
func signal(name string) Via { return Via{ViaSignal, name} }
func timer(name string) Via  { return Via{ViaTimer, name} }
func step(name string) Via   { return Via{ViaStep, name} }

// StateRow is one line of a table: in any of the statuses From, what Via names moves the
// case to one of To (the rule When says which), or, with To empty, is taken and the case
// stays. Who is who may send it (role and scope of the API key or console account), or
// "system" for the workflow's own timers and steps. Ends: the run ends in the status it
// was in (no status of its own records the end).
type StateRow struct {
	From []string
	Via  Via
	When string
	To   []string
	Who  string
	Ends bool
}

// StateMachine is one process's table.
type StateMachine struct {
	Process  string   // the journal's process name: "refund"
	Workflow string   // the workflow type: "Refund"
	Source   string   // where the workflow lives
	Statuses []string // every status, in the order the diagram and the table list them
	Final    []string // statuses a case ends in
	Labels   map[string]string
	Rows     []StateRow
}

// Takes says whether a case in status takes the message (an update or a signal by its
// handler's name): the part of a validator that depends on the status alone.
func (m *StateMachine) Takes(status string, kind ViaKind, name string) bool {
	for _, r := range m.Rows {
		if r.Via.Kind == kind && r.Via.Name == name && slices.Contains(r.From, status) {
			return true
		}
	}
	return false
}

// takes is Takes for an update.
func (m *StateMachine) takes(status, name string) bool { return m.Takes(status, ViaUpdate, name) }

// Allows says whether the table lists a transition from one status to another.
func (m *StateMachine) Allows(from, to string) bool {
	for _, r := range m.Rows {
		if slices.Contains(r.From, from) && slices.Contains(r.To, to) {
			return true
		}
	}
	return false
}

// Check reports what makes a table inconsistent: a status in a row that is not one of
// the process's statuses, a status with no label, a final status that moves on or a
// status no row reaches.
func (m *StateMachine) Check() error {
	var errs []string
	known := func(s string) bool { return s == Start || slices.Contains(m.Statuses, s) }
	reached := map[string]bool{}
	for i, r := range m.Rows {
		if r.Via.Kind == "" || r.Via.Name == "" && r.Via.Kind != ViaStart && r.Via.Kind != ViaCancel {
			errs = append(errs, fmt.Sprintf("row %d: says nothing of what moves the case", i))
		}
		if r.Who == "" {
			errs = append(errs, fmt.Sprintf("row %d (%s %s): says nobody may send it", i, r.Via.Kind, r.Via.Name))
		}
		if len(r.From) == 0 {
			errs = append(errs, fmt.Sprintf("row %d (%s %s): from no status", i, r.Via.Kind, r.Via.Name))
		}
		for _, s := range append(slices.Clone(r.From), r.To...) {
			if !known(s) {
				errs = append(errs, fmt.Sprintf("row %d (%s %s): %q is not a status of %s", i, r.Via.Kind, r.Via.Name, s, m.Process))
			}
		}
		for _, s := range r.From {
			if slices.Contains(m.Final, s) && len(r.To) > 0 {
				errs = append(errs, fmt.Sprintf("row %d (%s %s): the final status %s moves on", i, r.Via.Kind, r.Via.Name, s))
			}
		}
		for _, s := range r.To {
			reached[s] = true
		}
	}
	for _, s := range m.Statuses {
		if m.Labels[s] == "" {
			errs = append(errs, fmt.Sprintf("status %s has no label", s))
		}
		if !reached[s] {
			errs = append(errs, fmt.Sprintf("status %s: no row leads to it", s))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", m.Process, strings.Join(errs, "; "))
	}
	return nil
}

// StateMachines are the tables of the processes that keep a status, in the order
// docs/processes.md shows them.
func StateMachines() []*StateMachine {
	return []*StateMachine{&refundStates, &identityStates, &accountStates, &declarationStates}
}

// label is how a diagram and the table name what moves the case.
func (v Via) label() string {
	switch v.Kind {
	case ViaStart:
		return "start"
	case ViaCancel:
		return "cancellation"
	case ViaUpdate:
		return "update " + v.Name
	case ViaSignal:
		return "signal " + v.Name
	case ViaTimer:
		return "after " + v.Name
	}
	return v.Name
}

func node(s string) string {
	if s == Start {
		return "[*]"
	}
	return s
}

// Mermaid is the process's state diagram (Mermaid stateDiagram-v2): an arrow for every
// transition the table lists, labelled with what takes it (the rule that chooses is in
// the table, Table); the messages and timers a status takes without moving are in a note
// beside it.
func (m *StateMachine) Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	for _, s := range m.Statuses {
		fmt.Fprintf(&b, "    %s: %s · %s\n", s, s, mermaidText(m.Labels[s]))
	}
	type edge struct{ from, to string }
	var edges []edge
	labels := map[edge][]string{}
	stays := map[string][]string{}
	add := func(e edge, l string) {
		if _, ok := labels[e]; !ok {
			edges = append(edges, e)
		}
		if !slices.Contains(labels[e], l) {
			labels[e] = append(labels[e], l)
		}
	}
	for _, r := range m.Rows {
		l := r.Via.label() // the rule (When) is in the table beside the diagram
		for _, f := range r.From {
			for _, t := range r.To {
				add(edge{f, t}, l)
			}
			if r.Ends {
				add(edge{f, Start}, l)
			}
			if len(r.To) == 0 && !r.Ends && f != Start && !slices.Contains(stays[f], r.Via.label()) {
				stays[f] = append(stays[f], r.Via.label())
			}
		}
	}
	for _, e := range edges {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", node(e.from), node(e.to), mermaidText(strings.Join(labels[e], " / ")))
	}
	for _, s := range m.Final {
		fmt.Fprintf(&b, "    %s --> [*]\n", s)
	}
	for _, s := range m.Statuses {
		if len(stays[s]) > 0 {
			fmt.Fprintf(&b, "    note right of %s\n        takes without moving\n", s)
			for _, l := range stays[s] {
				fmt.Fprintf(&b, "        %s\n", mermaidText(l))
			}
			b.WriteString("    end note\n")
		}
	}
	return b.String()
}

// mermaidText keeps a label to what Mermaid reads as text: no statement separators, no
// arrows, no colon (which starts a description).
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "-->", "to", "#", "no.", "{", "(", "}", ")", ":", " —").Replace(s)
}

// Table is the process's transitions as a Markdown table: from, what moves the case and
// on which rule, to, who may send it.
func (m *StateMachine) Table() string {
	var b strings.Builder
	b.WriteString("| from | via | to | who may send it |\n|---|---|---|---|\n")
	name := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s
			if s == Start {
				out[i] = "(start)"
			}
		}
		return strings.Join(out, ", ")
	}
	for _, r := range m.Rows {
		via := r.Via.label()
		if r.When != "" {
			via += " — " + r.When
		}
		to := name(r.To)
		switch {
		case r.Ends:
			to = "(the run ends)"
		case len(r.To) == 0:
			to = "(stays)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name(r.From), tableText(via), to, tableText(r.Who))
	}
	return b.String()
}

func tableText(s string) string { return strings.ReplaceAll(s, "|", "/") }

// Markers around each process's generated part of docs/processes.md.
func stateMarkers(process string) (begin, end string) {
	return "<!-- states:" + process + ":begin -->", "<!-- states:" + process + ":end -->"
}

// ProcessesDoc is doc (docs/processes.md) with each process's diagram and table written
// between its markers; everything outside them is kept as it is. A process whose markers
// are missing is an error: the diagram would silently not be shown.
func ProcessesDoc(doc string) (string, error) {
	for _, m := range StateMachines() {
		begin, end := stateMarkers(m.Process)
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i || strings.Count(doc, begin) != 1 || strings.Count(doc, end) != 1 {
			return "", fmt.Errorf("docs/processes.md: want one %s and one %s after it", begin, end)
		}
		body := "\n<!-- generated by `make docs` from " + m.Source[:len(m.Source)-len(".go")] + "_states.go: do not edit here -->\n\n" +
			"```mermaid\n" + m.Mermaid() + "```\n\n" + m.Table() + "\n"
		doc = doc[:i+len(begin)] + body + doc[j:]
	}
	return doc, nil
}
