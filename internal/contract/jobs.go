package contract

import "time"

// Functions of the scheduled jobs.
const (
	FnReminderSweep  = "reminder-sweep"
	FnInactiveSweep  = "inactive-sweep"
	FnRetentionSweep = "retention-sweep"
	// FnObligationSweep creates the statutory obligations of a tax period from the ledger.
	FnObligationSweep = "obligation-sweep"
)

// Obligation is a tax payment or report due (table "obligations", index by_due).
type Obligation struct {
	ObligationID string `json:"obligation_id"`
	INN          string `json:"inn"`
	Tax          string `json:"tax"`
	Amount       int64  `json:"amount_kopecks"`
	DueDate      string `json:"due_date"`  // YYYY-MM-DD
	DueMonth     string `json:"due_month"` // YYYY-MM: the index partition
	// Kind: payment (pay by the due date) or report (file by it); empty is a payment.
	Kind   string `json:"kind,omitempty"`
	Period int    `json:"period,omitempty"` // the tax period the obligation is for
	// Status [004:81]: empty or "due" until paid; "paid" stops the reminders.
	Status string     `json:"status,omitempty"`
	PaidAt *time.Time `json:"paid_at,omitempty"`
	// Basis is the statutory source of the due date (for example "Tax Code art. 409 p.1").
	Basis string `json:"basis,omitempty"`
	// DueProvisional: the due date was moved over a calendar year with no decree loaded.
	DueProvisional bool `json:"due_provisional,omitempty"`
}

// Obligation kinds and statuses.
const (
	ObligationPayment = "payment"
	ObligationReport  = "report"
	ObligationDue     = "due"
	ObligationPaid    = "paid"
)

// Paid tells whether the obligation is settled (no reminder is sent for it).
func (o Obligation) Paid() bool { return o.Status == ObligationPaid }

// SweepPage asks for one page of a sweep; Cursor is opaque (empty to start).
type SweepPage struct {
	Date     string `json:"date"`      // the day the sweep runs for, YYYY-MM-DD
	LeadDays int    `json:"lead_days"` // reminders sent this many days before the due date
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit"`
	// GraceDays: inactive accounts flagged this long after the notice [000:40].
	GraceDays int `json:"grace_days,omitempty"`
	// InactiveMonths: an account without activity this long gets the notice [000:40];
	// 0 means the default of 12 (config TAXFLOW_INACTIVE_MONTHS).
	InactiveMonths int `json:"inactive_months,omitempty"`
	// KeepDays: retention of generated documents [004:169].
	KeepDays int `json:"keep_days,omitempty"`
	// Period: the tax period whose obligations the obligations job creates; 0 means the
	// Moscow year before Date.
	Period int `json:"period,omitempty"`
}

// SweepResult counts one page; Cursor is empty when the sweep is done.
type SweepResult struct {
	Processed  int `json:"processed"`
	Sent       int `json:"sent"`
	Duplicates int `json:"duplicates"`
	Flagged    int `json:"flagged,omitempty"`
	// Created: obligations written (new, or an unpaid one brought up to date).
	Created int    `json:"created,omitempty"`
	Cursor  string `json:"cursor,omitempty"`
}
