package contract

import "time"

// FnLedger reserves, voids and sweeps refund reservations against the refundable
// overpayment of a taxpayer's tax period (see functions/ledger).
const FnLedger = "ledger"

// LedgerTable is the logical name of the charges and payments ledger (LedgerEntry items):
// partition key inn, sort key entry_id. The overpayment and ledger functions read it, and
// so does the API on the hot path of a refund request.
const LedgerTable = "ledger"

// Ledger operations.
const (
	LedgerReserve = "reserve" // hold an amount for a case (idempotent by key)
	LedgerVoid    = "void"    // release a case's reservation (rejection, withdrawal, cancellation, final failure)
	LedgerGet     = "get"     // read a reservation and its balance
	LedgerExpire  = "expire"  // sweep: void reservations that outlived their case
	// LedgerAssess writes a decision's entry to the charges and payments ledger (Entry)
	// with the case's step that records the decision (Step), in one transaction.
	LedgerAssess = "assess"
)

// AssessmentWritten: the state of an assess answer whose entry is in the ledger.
const AssessmentWritten = "written"

// Reservation states. Refused is only reported, never stored: a refused claim holds nothing.
const (
	ReservationReserved = "reserved"
	ReservationPosted   = "posted"
	ReservationVoided   = "voided"
	ReservationRefused  = "refused"
	ReservationNone     = "none" // Void or Get of a key that never reserved anything
)

// LedgerInput asks the ledger for one operation. Key is the reservation key: the case id,
// which reserves at most once in its life.
type LedgerInput struct {
	Op     string `json:"op"`
	Key    string `json:"key,omitempty"`
	CaseID string `json:"case_id,omitempty"`
	INN    string `json:"inn,omitempty"`
	Period int    `json:"period,omitempty"`
	// Amount is what the case asks to reserve (reserve), in kopecks.
	Amount int64 `json:"amount_kopecks,omitempty"`
	// ExpiresAt: after it the expire sweep voids the reservation if it is still held
	// without a payout in flight (the case must have ended without settling it).
	ExpiresAt time.Time `json:"expires_at,omitempty"`
	// Reason of a void, for the reservation's record (no personal data).
	Reason string `json:"reason,omitempty"`
	// Expire: the sweep's page (Cursor opaque, Limit items) and the time it runs at.
	Cursor string    `json:"cursor,omitempty"`
	Limit  int       `json:"limit,omitempty"`
	Now    time.Time `json:"now,omitempty"`
	// Step (reserve): the case's `approved` step, written in the reservation's
	// transaction when the whole amount is reserved (not when capped or refused: the
	// step would not describe it). Step (assess): the case's step that records the
	// decision, written with Entry. LedgerResult.Step says what became of it.
	Step *RecordInput `json:"step,omitempty"`
	// Entry (assess): the entry of the charges and payments ledger the case's decision
	// makes, its content fixed by the workflow; its EntryID is its idempotency key.
	Entry *LedgerEntry `json:"entry,omitempty"`
}

// LedgerResult is the reservation after the operation and its balance's figures.
type LedgerResult struct {
	Key       string `json:"key,omitempty"`
	State     string `json:"state"`
	Requested int64  `json:"requested_kopecks"`
	// Amount is what is reserved (or was posted or voided): at most Requested.
	Amount int64 `json:"amount_kopecks"`
	// Capped: less than requested was available; Reason says why, for the journal.
	Capped bool   `json:"capped,omitempty"`
	Reason string `json:"reason,omitempty"`
	// The balance of the (taxpayer, period) after the operation.
	Refundable int64  `json:"refundable_kopecks"`
	Reserved   int64  `json:"reserved_kopecks"`
	Paid       int64  `json:"paid_kopecks"`
	PayoutKey  string `json:"payout_key,omitempty"`
	Duplicate  bool   `json:"duplicate,omitempty"`
	// Expire: what the page did.
	Voided   int    `json:"voided,omitempty"`
	InFlight int    `json:"in_flight,omitempty"` // expired, but a payout key is active: an operator must look
	Scanned  int    `json:"scanned,omitempty"`
	Cursor   string `json:"cursor,omitempty"`
	// Step: what became of LedgerInput.Step (nil when none was given).
	Step *StepOutcome `json:"step,omitempty"`
}
