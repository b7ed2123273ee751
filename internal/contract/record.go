package contract

import (
	"fmt"
	"strings"
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
	// Owner, on a case's first step, is who created it (the API's create, a batch line):
	// the step writes the case's owner row in its own transaction, so the case's first
	// event and its first task list entry never exist without their tenant.
	Owner *CaseOwner `json:"owner,omitempty"`
}

// CaseOwner is the tenant and principal that created a case (the case_owners row).
type CaseOwner struct {
	Tenant    string `json:"tenant"`
	CreatedBy string `json:"created_by"`
	KeyID     string `json:"key_id,omitempty"`
}

// RecordResult: Duplicate is true when this step had been written before with the same
// content (a retry), and nothing was written now.
type RecordResult struct {
	Key       string `json:"key"`
	Duplicate bool   `json:"duplicate"`
}

// RecordKey is the idempotency key of a case's step.
func RecordKey(caseID string, seq int64) string { return fmt.Sprintf("%s/%d", caseID, seq) }

// A step can ride in the transaction of the operation it records, instead of a
// record-transition call of its own: the `approved` step in the ledger's reservation
// (LedgerInput.Step) and the `paid` step in the payout's posting (PayoutInput.Step).
// The step's content is fixed by the workflow (it is in the activity's input, so in the
// history): the function writes it as record-transition would — same items, same
// conditions, same digest — in the same TransactWriteItems as the operation's own items,
// so the record and the money never disagree. One value only is filled in by the
// function: TransferPlaceholder, in the payout's step, by the treasury's transfer id,
// which the treasury fixes once per payout key (every retry fills the same text).

// TransferPlaceholder in a payout step's journal reasons and notification parameters is
// replaced by the treasury's transfer id when the step is written.
const TransferPlaceholder = "{transfer_id}"

// StepOutcome says what became of a step that rode in another operation's transaction.
// Written: the step is in the record (written now, or found written with the same
// content). Not written and no Refused: the operation decided something the step does
// not describe (a capped or refused reservation) and wrote no step; its seq is free.
// Refused: the record holds something else under the step's key or is not at the step
// this one follows (fnerr KeyReused or Conflict, in RefusedType): the step was not
// written, the operation's own effect may have been (a payout whose money left is
// posted all the same).
type StepOutcome struct {
	Written     bool   `json:"written"`
	Duplicate   bool   `json:"duplicate,omitempty"`
	RefusedType string `json:"refused_type,omitempty"`
	Refused     string `json:"refused,omitempty"`
	// Reason is the first journal entry's reason as written (the payout's with the
	// transfer id filled in), for the workflow's own history of the case.
	Reason string `json:"reason,omitempty"`
}

// FillTransfer replaces TransferPlaceholder in the step's journal reasons and
// notification parameters by the transfer id; the input is not changed.
func FillTransfer(in RecordInput, transferID string) RecordInput {
	out := in
	out.Entries = make([]AuditEntry, len(in.Entries))
	for i, e := range in.Entries {
		e.Reason = strings.ReplaceAll(e.Reason, TransferPlaceholder, transferID)
		out.Entries[i] = e
	}
	out.Notifications = make([]Notification, len(in.Notifications))
	for i, n := range in.Notifications {
		if n.Params != nil {
			p := make(map[string]string, len(n.Params))
			for k, v := range n.Params {
				p[k] = strings.ReplaceAll(v, TransferPlaceholder, transferID)
			}
			n.Params = p
		}
		out.Notifications[i] = n
	}
	if in.Case != nil {
		c := *in.Case
		out.Case = &c
	}
	return out
}
