package contract

import "fmt"

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
}

// RecordResult: Duplicate is true when this step had been written before with the same
// content (a retry), and nothing was written now.
type RecordResult struct {
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate"`
}

// RecordKey is the idempotency key of a case's step.
func RecordKey(caseID string, seq int64) string { return fmt.Sprintf("%s/%d", caseID, seq) }
