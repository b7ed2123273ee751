package contract

import "time"

// Functions of the refund process (and of every later process that needs them).
const (
	FnTaxpayerCheck = "taxpayer-check"
	FnOverpayment   = "overpayment"
	FnDocumentStore = "document-store"
	FnPayout        = "payout"
	FnNotify        = "notify"
	FnCaseUpdate    = "case-update"
)

// Taxpayer is a registry record (table "taxpayers", key inn). Personal data: it stays in
// DynamoDB and in encrypted payloads, never in logs, ids or search attributes.
type Taxpayer struct {
	INN          string          `json:"inn"`
	Name         string          `json:"name"`
	AccountState string          `json:"account_state"` // active | blocked
	Confirmed    bool            `json:"confirmed"`
	INNLinked    bool            `json:"inn_linked"`
	Bank         *BankRequisites `json:"bank,omitempty"`         // verified requisites
	PendingBank  *BankRequisites `json:"pending_bank,omitempty"` // a change being verified
	Channels     []string        `json:"channels,omitempty"`     // cabinet, email, sms, app

	// Identity: what the registry knows, and the confirmed mark [004:27].
	SNILS           string          `json:"snils,omitempty"`
	SNILSLinked     bool            `json:"snils_linked,omitempty"`
	Surname         string          `json:"surname,omitempty"`
	FirstName       string          `json:"first_name,omitempty"`
	Patronymic      string          `json:"patronymic,omitempty"`
	BirthDate       string          `json:"birth_date,omitempty"` // YYYY-MM-DD
	Passport        *PassportRecord `json:"passport,omitempty"`
	BankIdentified  bool            `json:"bank_identified,omitempty"` // a partner bank identified the person
	Consent         bool            `json:"consent,omitempty"`         // to personal-data processing [001:53-67]
	ConsentTenant   string          `json:"consent_tenant,omitempty"`  // the tenant it was given through: the INN routes' relationship
	ConsentAt       *time.Time      `json:"consent_at,omitempty"`
	ConfirmedAt     *time.Time      `json:"confirmed_at,omitempty"`
	ConfirmedMethod string          `json:"confirmed_method,omitempty"`
	// Activity [000:40]: the last login; the inactivity job's notice and deletion flag.
	LastActivity      string     `json:"last_activity,omitempty"` // YYYY-MM-DD
	InactiveNoticeAt  *time.Time `json:"inactive_notice_at,omitempty"`
	DeletionFlaggedAt *time.Time `json:"deletion_flagged_at,omitempty"`
}

// PassportRecord is the registry's passport: series, number, date of issue.
type PassportRecord struct {
	Series   string `json:"series"`
	Number   string `json:"number"`
	IssuedOn string `json:"issued_on"` // YYYY-MM-DD
}

// BankRequisites are where payouts go.
type BankRequisites struct {
	BIK     string `json:"bik"`
	Account string `json:"account"`
}

// LedgerEntry is a charge, a payment or a reduction of one tax for one period (table
// "ledger").
type LedgerEntry struct {
	INN     string    `json:"inn"`
	EntryID string    `json:"entry_id"` // "<period>#<tax>#<n>"
	Kind    string    `json:"kind"`     // charge | payment | reduction
	Tax     string    `json:"tax"`      // ndfl, property, transport, land
	Period  int       `json:"period"`
	Amount  int64     `json:"amount_kopecks"`
	Date    time.Time `json:"date"`
	// CaseID: the case whose decision wrote the entry (a reduction); empty for the
	// charges and payments that come from outside (employers, the treasury).
	CaseID string `json:"case_id,omitempty"`
}

// Kinds of ledger entry.
const (
	LedgerCharge  = "charge"
	LedgerPayment = "payment"
	// LedgerReduction lowers the tax charged for a period: a desk review that confirms
	// a 3-НДФЛ assesses less tax than was charged (withheld by the employer), by the
	// refund it confirms (Tax Code art. 78, 88). Amount is that reduction (> 0); Date is
	// when the overpayment it makes arises, the filing of the declaration (art. 78 p.7,
	// see functions/overpayment).
	LedgerReduction = "reduction"
)

// TaxpayerCheckInput asks whether a taxpayer may use a process.
type TaxpayerCheckInput struct {
	INN string `json:"inn"`
}

// Bank requisites states.
const (
	BankVerified = "verified"
	BankPending  = "pending"
	BankNone     = "none"
)

// TaxpayerCheckResult says whether the preconditions hold [004:200] and where a payout would go.
type TaxpayerCheckResult struct {
	Eligible     bool   `json:"eligible"`
	Reason       string `json:"reason,omitempty"`
	BankState    string `json:"bank_state"`
	AccountLast4 string `json:"account_last4,omitempty"`
	// PayeeRef names the verified account (a keyed digest, not the number): a payout is
	// prepared for it and refused if the verified account is another one by then.
	PayeeRef string `json:"payee_ref,omitempty"`
	// for identity verification
	Consent     bool `json:"consent"`
	INNLinked   bool `json:"inn_linked"`
	SNILSLinked bool `json:"snils_linked"`
	Confirmed   bool `json:"confirmed"`
	// BankIdentified: a partner bank already identified the person [001:45].
	BankIdentified bool `json:"bank_identified"`
}

// OverpaymentInput asks for a taxpayer's balance; Period 0 means every period. At is
// when the refund is claimed: payments older than 3 years then are not refundable
// (Tax Code art. 78 p.7); zero skips that check.
type OverpaymentInput struct {
	INN    string    `json:"inn"`
	Period int       `json:"period,omitempty"`
	At     time.Time `json:"at,omitempty"`
}

// TaxBalance is payments minus charges of one tax (of one period, where Period is set):
// positive is overpaid, negative a debt.
type TaxBalance struct {
	Tax     string `json:"tax"`
	Period  int    `json:"period,omitempty"`
	Balance int64  `json:"balance_kopecks"`
}

// OverpaymentResult: debts are offset against the overpayment first.
type OverpaymentResult struct {
	Overpaid   int64        `json:"overpaid_kopecks"`
	Debts      int64        `json:"debts_kopecks"`
	Refundable int64        `json:"refundable_kopecks"`
	Taxes      []TaxBalance `json:"taxes"`
	// Periods are the balances of each tax and period.
	Periods []TaxBalance `json:"periods,omitempty"`
	// Expired: overpayment formed by payments older than 3 years at the claim, no longer
	// refundable (art. 78 p.7).
	Expired int64 `json:"expired_kopecks,omitempty"`
}

// DocumentsBucket is the logical name of the documents bucket: the API puts uploads there
// (IncomingDocumentKey), the document-store function judges them and keeps the accepted
// ones (StoredDocumentKey).
const DocumentsBucket = "documents"

// StoredDocumentKey is where an accepted document lives.
func StoredDocumentKey(caseID, docID string) string { return "documents/" + caseID + "/" + docID }

// IncomingDocumentKey is where an upload waits to be judged.
func IncomingDocumentKey(caseID, docID string) string { return "incoming/" + caseID + "/" + docID }

// DocumentInput asks to validate an uploaded file and store it for good.
type DocumentInput struct {
	CaseID      string `json:"case_id"`
	DocID       string `json:"doc_id"`
	Purpose     string `json:"purpose"`
	IncomingKey string `json:"incoming_key"`
}

// DocumentResult: a refused file is an outcome (Accepted false, Reason for the taxpayer), not an error.
type DocumentResult struct {
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
	Key      string `json:"key,omitempty"`
	Type     string `json:"type,omitempty"`
	Size     int64  `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// Payout operations.
const (
	PayoutPay    = "pay"    // transfer (the default)
	PayoutCancel = "cancel" // fence the payout key: no transfer may happen under it afterwards
)

// PayoutInput asks for one transfer, or for its cancellation. PayoutKey makes it happen at
// most once (`<case>/payout/<attempt>`): its content (amount, principal, interest, payee)
// is fixed when the key is made and never changes on a retry.
type PayoutInput struct {
	Op        string `json:"op,omitempty"`
	PayoutKey string `json:"payout_key"`
	CaseID    string `json:"case_id"`
	INN       string `json:"inn"`
	// Amount is the transfer: Principal (the refund, from the ledger's reservation) plus
	// Interest (for a late payment, not taken from the overpayment).
	Amount    int64 `json:"amount_kopecks"`
	Principal int64 `json:"principal_kopecks"`
	Interest  int64 `json:"interest_kopecks"`
	// Payee is the PayeeRef of the verified account the payout was prepared for.
	Payee string `json:"payee,omitempty"`
	// Reservation is the ledger's reservation key (the case id) the payout settles.
	Reservation string `json:"reservation"`
	// Cancel: also void the reservation (a final failure or a cancelled case).
	Void       bool   `json:"void,omitempty"`
	VoidReason string `json:"void_reason,omitempty"`
	// Step: the case's `paid` step, written in the transaction that posts the
	// reservation once the money has left under this key (by the pay, or by a cancel
	// that finds the transfer made), with TransferPlaceholder filled in. A key whose pay
	// carried a step is settled by the pay's success or by a cancel carrying the same
	// step: the cancel fences the key, so after it the step is written or never will be.
	Step *RecordInput `json:"step,omitempty"`
}

// PayoutResult is the treasury's receipt, or what a cancellation found.
type PayoutResult struct {
	TransferID   string    `json:"transfer_id,omitempty"`
	Amount       int64     `json:"amount_kopecks"`
	Principal    int64     `json:"principal_kopecks"`
	Interest     int64     `json:"interest_kopecks"`
	AccountLast4 string    `json:"account_last4,omitempty"`
	At           time.Time `json:"at"`
	Duplicate    bool      `json:"duplicate"`
	// Cancel: Transferred says the money had left under the key (and the reservation is
	// now posted); otherwise the key is fenced and, when asked, the reservation voided.
	Transferred bool `json:"transferred,omitempty"`
	Cancelled   bool `json:"cancelled,omitempty"`
	Voided      bool `json:"voided,omitempty"`
	// Step: what became of PayoutInput.Step (nil when none was given).
	Step *StepOutcome `json:"step,omitempty"`
}

// Notification is a message to the taxpayer or to staff, written to the outbox once.
type Notification struct {
	NotificationID string            `json:"notification_id"`
	CaseID         string            `json:"case_id"`
	INN            string            `json:"inn,omitempty"`
	Recipient      string            `json:"recipient"` // taxpayer | reviewer | supervisor | operator
	Template       string            `json:"template"`
	Params         map[string]string `json:"params,omitempty"`
	At             time.Time         `json:"at"`
	Channels       []string          `json:"channels,omitempty"` // as the taxpayer chose; empty: the cabinet
	State          string            `json:"state,omitempty"`    // pending, set by the function
}

// NotifyResult says whether the notification was already in the outbox.
type NotifyResult struct {
	Duplicate bool `json:"duplicate"`
}

// CaseRecord is the read projection of a case (table "cases"). Version orders updates:
// an older version never overwrites a newer one.
type CaseRecord struct {
	CaseID    string           `json:"case_id"`
	Process   string           `json:"process"`
	Status    string           `json:"status"`
	Label     string           `json:"label"`
	Version   int64            `json:"version"`
	UpdatedAt time.Time        `json:"updated_at"`
	Deadline  time.Time        `json:"deadline,omitempty"`
	Escalated bool             `json:"escalated,omitempty"`
	Amounts   map[string]int64 `json:"amounts,omitempty"`
}

// CaseUpdateResult says whether the update was applied (false: a newer one is stored).
type CaseUpdateResult struct {
	Applied bool `json:"applied"`
}
