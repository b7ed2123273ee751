package contract

import (
	"fmt"
	"strconv"
	"time"
)

// Functions that keep a case's record.
const (
	// FnRecordTransition writes one step of a case's record (journal entries, projection,
	// notifications) in one transaction.
	FnRecordTransition = "record-transition"
	// FnOutboxDeliver delivers pending notifications from the outbox (a sweep page).
	FnOutboxDeliver = "outbox-deliver"
)

// RecordInput is one step of a case's record: a status transition, or a step without
// one (a journal entry, a notification, a refreshed projection). Seq is the case's
// transition sequence, which the workflow carries in its state and across
// continue-as-new: 1 for the first write of a case, then one more for every write. It
// makes the idempotency key "<case id>/<seq>", from which the function derives every
// item's id: journal entry i is "<case id>/<seq>/<i>", notification i likewise in the
// outbox. The projection, when present, gets version Seq and is written only over
// version Seq-1 (or, for Seq 1, where there is none).
type RecordInput struct {
	CaseID        string         `json:"case_id"`
	Seq           int64          `json:"seq"`
	Entries       []AuditEntry   `json:"entries,omitempty"`
	Case          *CaseRecord    `json:"case,omitempty"`
	Notifications []Notification `json:"notifications,omitempty"`
	// Writer is set when the step is written by a local activity, inside the workflow
	// task that decided it. Such a write happens before that task is committed: when the
	// task fails (it timed out, its worker died), the next attempt decides again and may
	// decide otherwise — a later clock, signals that came meanwhile. The function then
	// finds the step written by an attempt that never counted; Writer tells it which
	// write is the later one, so the later attempt replaces the earlier one instead of
	// failing as KeyReused. Steps written by activity tasks carry none: their input is
	// fixed in the history when they are scheduled, and a retry repeats it.
	Writer *RecordWriter `json:"writer,omitempty"`
}

// RecordWriter names the workflow task attempt that wrote a step: its run, and the
// attempt's start on the workflow clock, which is later for every later attempt and every
// later task. Previous is the run this one continues as new (not stored): a step the
// previous run's last attempt wrote and did not keep may be replaced too.
type RecordWriter struct {
	Chain    string    `json:"chain"`
	Previous string    `json:"previous,omitempty"`
	At       time.Time `json:"at"`
}

// String is the writer as stored with the items of its step.
func (w RecordWriter) String() string { return fmt.Sprintf("%s|%020d", w.Chain, w.At.UnixNano()) }

// ParseRecordWriter reads a stored writer back; ok is false for anything else.
func ParseRecordWriter(s string) (w RecordWriter, ok bool) {
	i := len(s) - 21
	if i < 1 || s[i] != '|' {
		return RecordWriter{}, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil {
		return RecordWriter{}, false
	}
	return RecordWriter{Chain: s[:i], At: time.Unix(0, n).UTC()}, true
}

// RecordResult: Duplicate is true when this step had been written before with the same
// content (a retry), and nothing was written now.
type RecordResult struct {
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate"`
	// Replaced: the step had been written with other content by an earlier attempt of
	// the workflow task that never counted (see RecordInput.Writer); this one replaced it.
	Replaced bool `json:"replaced,omitempty"`
}

// RecordKey is the idempotency key of a case's step.
func RecordKey(caseID string, seq int64) string { return fmt.Sprintf("%s/%d", caseID, seq) }
