package contract

// Functions of the scheduled jobs.
const (
	FnReminderSweep  = "reminder-sweep"
	FnInactiveSweep  = "inactive-sweep"
	FnRetentionSweep = "retention-sweep"
)

// Obligation is a tax payment or report due (table "obligations", index by_due).
type Obligation struct {
	ObligationID string `json:"obligation_id"`
	INN          string `json:"inn"`
	Tax          string `json:"tax"`
	Amount       int64  `json:"amount_kopecks"`
	DueDate      string `json:"due_date"`  // YYYY-MM-DD
	DueMonth     string `json:"due_month"` // YYYY-MM: the index partition
	// Paid: settled before it fell due; a paid obligation gets no reminder.
	Paid bool `json:"paid,omitempty"`
}

// SweepPage asks for one page of a sweep; Cursor is opaque (empty to start).
type SweepPage struct {
	Date     string `json:"date"`      // the day the sweep runs for, YYYY-MM-DD
	LeadDays int    `json:"lead_days"` // reminders sent this many days before the due date
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit"`
	// GraceDays: inactive accounts flagged this long after the notice [000:40].
	GraceDays int `json:"grace_days,omitempty"`
	// KeepDays: retention of generated documents [004:169].
	KeepDays int `json:"keep_days,omitempty"`
}

// SweepResult counts one page; Cursor is empty when the sweep is done.
type SweepResult struct {
	Processed  int    `json:"processed"`
	Sent       int    `json:"sent"`
	Duplicates int    `json:"duplicates"`
	Flagged    int    `json:"flagged,omitempty"`
	Cursor     string `json:"cursor,omitempty"`
}
