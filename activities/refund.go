package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/refunddue"
)

// ReadOptions: registry and ledger reads (functions time out after 10-30 s).
var ReadOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 45 * time.Second,
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(20),
}

// DocumentOptions: validating and storing a file of up to 10 MB (function: 60 s).
var DocumentOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 90 * time.Second,
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(10),
}

// ReadLocalOptions: the refund's two first reads as local activities (change
// refund-folded-steps), with the attempts of ReadOptions. A local activity's
// ScheduleToClose defaults to its StartToClose, which would bound all its attempts to one
// timeout; it is set to cover every attempt with its backoff.
var ReadLocalOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    ReadOptions.StartToCloseTimeout,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            ReadOptions.RetryPolicy,
}

// PayoutOptions: the transfer is idempotent by payout key, so a retry after a timeout is
// safe; after the last attempt the case waits for an operator (payout_failed).
var PayoutOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 40 * time.Second, // function: 20 s
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(12),
}

// LedgerOptions: reserving and releasing money must not be lost either (a lost void
// would hold the taxpayer's overpayment), so retries go on as long as the journal's.
var LedgerOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second, // function: 10 s
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         retry(50),
}

// RecordOptions: audit journal, case projection and notifications must not be lost.
var RecordOptions = AuditOptions

// RecordLocalOptions: the same step as a local activity, for the runs recorded on the path
// of the change "record-step-local" only (new runs write every step as an activity task:
// change "record-step-task"), with the attempts of RecordOptions. A local activity's
// ScheduleToClose defaults to its StartToClose, which would bound all its attempts to
// 30 s; it is set to cover every attempt with its backoff (a test checks).
var RecordLocalOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    RecordOptions.StartToCloseTimeout,
	ScheduleToCloseTimeout: 2 * time.Hour,
	RetryPolicy:            RecordOptions.RetryPolicy,
}

// InterestOptions: the late interest is computed in the worker from the key-rate table;
// it fails only on a defect of the table, which a retry cannot fix soon.
var InterestOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         retry(5),
}

// RefundInterestInput asks for the interest on a refund paid at PaidAt whose term ended at
// Deadline (term.Result.End).
type RefundInterestInput struct {
	Amount   int64     `json:"amount_kopecks"`
	Deadline time.Time `json:"deadline"`
	PaidAt   time.Time `json:"paid_at"`
}

// RefundInterest is the interest the tax authority owes on a refund paid late: for each
// day of delay, at the key rate in force that day (Tax Code art. 78 p.10; see
// internal/keyrate, the operator's table when one is stored), to the day of this payout
// attempt (internal/refunddue). Nothing when paid by the end of the term's last day.
func (a *Activities) RefundInterest(ctx context.Context, in RefundInterestInput) (keyrate.Interest, error) {
	t := a.KeyRates
	if a.KeyRateSource != nil {
		// A store that cannot be read gives the last table read (the worker logs why).
		if cur, _ := a.KeyRateSource.Table(ctx); cur != nil {
			t = cur
		}
	}
	if t == nil {
		var err error
		if t, err = keyrate.Open("", time.Now()); err != nil {
			return keyrate.Interest{}, temporal.NewNonRetryableApplicationError("key-rate table: "+err.Error(), "KeyRateTable", err)
		}
	}
	res, err := refunddue.Interest(t, in.Amount, in.Deadline, in.PaidAt)
	if err != nil {
		return keyrate.Interest{}, temporal.NewNonRetryableApplicationError("late interest: "+err.Error(), "KeyRateTable", err)
	}
	return res, nil
}

// CheckTaxpayer checks the preconditions of a process against the registry.
func (a *Activities) CheckTaxpayer(ctx context.Context, in contract.TaxpayerCheckInput) (contract.TaxpayerCheckResult, error) {
	return call[contract.TaxpayerCheckResult](ctx, a.Invoker, contract.FnTaxpayerCheck, in)
}

// ComputeOverpayment computes the refundable overpayment from the ledger.
func (a *Activities) ComputeOverpayment(ctx context.Context, in contract.OverpaymentInput) (contract.OverpaymentResult, error) {
	return call[contract.OverpaymentResult](ctx, a.Invoker, contract.FnOverpayment, in)
}

// StoreDocument validates an upload and stores it for good.
func (a *Activities) StoreDocument(ctx context.Context, in contract.DocumentInput) (contract.DocumentResult, error) {
	return call[contract.DocumentResult](ctx, a.Invoker, contract.FnDocumentStore, in)
}

// Payout transfers money, at most once per payout key.
func (a *Activities) Payout(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	return call[contract.PayoutResult](ctx, a.Invoker, contract.FnPayout, in)
}

// Reserve holds a case's refund against the (taxpayer, period)'s refundable overpayment.
func (a *Activities) Reserve(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	in.Op = contract.LedgerReserve
	return call[contract.LedgerResult](ctx, a.Invoker, contract.FnLedger, in)
}

// VoidReservation releases a case's reservation (no payout in flight).
func (a *Activities) VoidReservation(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	in.Op = contract.LedgerVoid
	return call[contract.LedgerResult](ctx, a.Invoker, contract.FnLedger, in)
}

// CancelPayout fences a payout key (no transfer under it afterwards) and reports the
// transfer if one had happened; with Void it also releases the reservation.
func (a *Activities) CancelPayout(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	in.Op = contract.PayoutCancel
	return call[contract.PayoutResult](ctx, a.Invoker, contract.FnPayout, in)
}

// SweepReservations voids one page of reservations that expired by the sweep's day (the
// start of that day in Moscow) with no payout in flight; those with one are counted as
// Flagged, for an operator.
func (a *Activities) SweepReservations(ctx context.Context, p contract.SweepPage) (contract.SweepResult, error) {
	in := contract.LedgerInput{Op: contract.LedgerExpire, Cursor: p.Cursor, Limit: p.Limit}
	if day, err := time.ParseInLocation(time.DateOnly, p.Date, calendar.Moscow); err == nil {
		in.Now = day
	}
	res, err := call[contract.LedgerResult](ctx, a.Invoker, contract.FnLedger, in)
	return contract.SweepResult{Processed: res.Scanned, Sent: res.Voided, Flagged: res.InFlight, Cursor: res.Cursor}, err
}

// MatchIdentity compares submitted data and documents with the registry.
func (a *Activities) MatchIdentity(ctx context.Context, in contract.IdentityMatchInput) (contract.IdentityMatchResult, error) {
	return call[contract.IdentityMatchResult](ctx, a.Invoker, contract.FnIdentityMatch, in)
}

// CheckESignature checks a qualified certificate for the taxpayer.
func (a *Activities) CheckESignature(ctx context.Context, in contract.ESignCheckInput) (contract.ESignCheckResult, error) {
	return call[contract.ESignCheckResult](ctx, a.Invoker, contract.FnESignCheck, in)
}

// ConfirmIdentity sets the confirmed mark.
func (a *Activities) ConfirmIdentity(ctx context.Context, in contract.IdentityConfirmInput) (contract.IdentityConfirmResult, error) {
	return call[contract.IdentityConfirmResult](ctx, a.Invoker, contract.FnIdentityConfirm, in)
}

// CheckUnblock compares a self-service unblock request with the registry.
func (a *Activities) CheckUnblock(ctx context.Context, in contract.UnblockCheckInput) (contract.UnblockCheckResult, error) {
	return call[contract.UnblockCheckResult](ctx, a.Invoker, contract.FnUnblockCheck, in)
}

// ClearIdentity clears the confirmed mark after an unblock.
func (a *Activities) ClearIdentity(ctx context.Context, in contract.IdentityClearInput) (contract.IdentityConfirmResult, error) {
	return call[contract.IdentityConfirmResult](ctx, a.Invoker, contract.FnIdentityClear, in)
}

// CheckDeclaration runs a declaration's automatic checks.
func (a *Activities) CheckDeclaration(ctx context.Context, in contract.DeclarationCheckInput) (contract.DeclarationCheckResult, error) {
	return call[contract.DeclarationCheckResult](ctx, a.Invoker, contract.FnDeclarationCheck, in)
}

// GenerateDecision renders and stores a decision document.
func (a *Activities) GenerateDecision(ctx context.Context, in contract.DecisionPDFInput) (contract.DecisionPDFResult, error) {
	return call[contract.DecisionPDFResult](ctx, a.Invoker, contract.FnDecisionPDF, in)
}

// SweepOptions: a page of a sweep takes at most the function's 120 s.
var SweepOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 180 * time.Second,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy:         retry(20),
}

// SweepReminders sends one page of deadline reminders.
func (a *Activities) SweepReminders(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	return call[contract.SweepResult](ctx, a.Invoker, contract.FnReminderSweep, in)
}

// SweepInactive handles one page of the inactive-accounts job.
func (a *Activities) SweepInactive(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	return call[contract.SweepResult](ctx, a.Invoker, contract.FnInactiveSweep, in)
}

// SweepRetention handles one page of the document-retention job.
func (a *Activities) SweepRetention(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	return call[contract.SweepResult](ctx, a.Invoker, contract.FnRetentionSweep, in)
}
