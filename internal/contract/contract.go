// Package contract holds the inputs and outputs of taxflow's functions: the JSON the
// workflows' activities send and the functions receive. It imports nothing, so workflow
// code can use it without pulling in AWS packages.
package contract

import "time"

// Function names, logical. The deployed name is "<prefix>-<name>" (see config.Name).
const (
	FnSelfCheck = "selfcheck"
)

// AuditEntry is one line of a case's journal: who did what, when, from which status to
// which, why, on which request. EntryID is "<case id>/<seq>/<n>": the n-th entry of the
// case's step seq (see RecordInput), written once.
type AuditEntry struct {
	CaseID    string    `json:"case_id"`
	EntryID   string    `json:"entry_id"`
	At        time.Time `json:"at"`
	Seq       int64     `json:"seq,omitempty"` // the step that wrote it: orders entries of the same instant
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
}

// SelfCheckInput drives the self-check function, which proves a deployment end to end:
// it counts its attempts in DynamoDB, can be made slow for its first attempts (to show
// that a timeout is retried), and can refuse with a business error (to show that one is not).
type SelfCheckInput struct {
	Key          string `json:"key"`
	SlowAttempts int    `json:"slow_attempts,omitempty"`
	SleepMS      int    `json:"sleep_ms,omitempty"`
	Fail         string `json:"fail,omitempty"` // a business error type to return
}

// SelfCheckResult reports which attempt answered.
type SelfCheckResult struct {
	Attempt int `json:"attempt"`
}
