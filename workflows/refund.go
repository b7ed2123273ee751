package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Refund of overpaid tax within 30 calendar days [004:198-211], domain.md §3.

// Names of the refund workflow's handlers.
const (
	RefundQueryStatus       = "status"
	RefundUpdateDecide      = "decide"       // reviewer: approve or reject, with a reason
	RefundUpdateWithdraw    = "withdraw"     // taxpayer: until the payout starts
	RefundSignalDocument    = "document"     // an upload is waiting under incoming/
	RefundSignalRequisites  = "requisites"   // back office: a requisites change was verified or rejected
	RefundSignalRetryPayout = "retry-payout" // operator: try a failed payout again
)

// Refund statuses: code → label shown in the cabinet.
const (
	RefundReceived     = "received"
	RefundInReview     = "in_review"
	RefundAwaitingInfo = "awaiting_info"
	RefundApproved     = "approved"
	RefundPaid         = "paid"
	RefundRejected     = "rejected"
	RefundWithdrawn    = "withdrawn"
	RefundPayoutFailed = "payout_failed"
)

// RefundLabels are the Russian labels the cabinet shows [001:107, 004:137].
var RefundLabels = map[string]string{
	RefundReceived:     "Принято",
	RefundInReview:     "На проверке",
	RefundAwaitingInfo: "Ожидает дополнительной информации",
	RefundApproved:     "Одобрено",
	RefundPaid:         "Перечислено",
	RefundRejected:     "Отклонено",
	RefundWithdrawn:    "Отозвано",
	RefundPayoutFailed: "Ошибка перечисления",
}

// RefundPolicy is the configuration a refund runs under. The API fills it from
// configuration at start, so a running case keeps the rules it started with.
type RefundPolicy struct {
	DeadlineDays    int           `json:"deadline_days"`    // 30 calendar days [004:210]
	ReminderBefore  time.Duration `json:"reminder_before"`  // reviewer reminder before the deadline
	DocumentWait    time.Duration `json:"document_wait"`    // how long to wait for supporting documents
	AutoApproveMax  int64         `json:"auto_approve_max"` // kopecks; 0 turns automatic approval off
	InterestRateBP  int64         `json:"interest_rate_bp"` // annual rate for late payment, basis points
	RequisitesDays  int           `json:"requisites_days"`  // working days a requisites check may hold the payout [004:116]
	OperatorTimeout time.Duration `json:"operator_timeout"` // how long a failed payout waits for an operator
}

// DefaultRefundPolicy is domain.md's defaults.
func DefaultRefundPolicy() RefundPolicy {
	return RefundPolicy{
		DeadlineDays:    30,
		ReminderBefore:  72 * time.Hour,
		DocumentWait:    14 * 24 * time.Hour,
		AutoApproveMax:  1_000_000, // 10 000 ₽
		InterestRateBP:  1600,      // 16 % a year
		RequisitesDays:  5,
		OperatorTimeout: 30 * 24 * time.Hour,
	}
}

// DocumentRef names an upload waiting under incoming/<case>/<doc>.
type DocumentRef struct {
	DocID string `json:"doc_id"`
}

// RefundWorkflowInput is a refund request.
type RefundWorkflowInput struct {
	CaseID    string `json:"case_id"`
	INN       string `json:"inn"`
	Period    int    `json:"period"`
	Amount    int64  `json:"amount_kopecks"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
	// RequestSHA256 identifies the request body, so a reused idempotency key with another
	// body can be told apart from a retry.
	RequestSHA256 string `json:"request_sha256,omitempty"`
	CreatedBy     string `json:"created_by,omitempty"`
	// LinkedDeclaration: the accepted declaration that claimed this refund; it is the
	// supporting document.
	LinkedDeclaration string        `json:"linked_declaration,omitempty"`
	Documents         []DocumentRef `json:"documents,omitempty"`
	Policy            RefundPolicy  `json:"policy"`
}

// RefundDecision is a reviewer's decision.
type RefundDecision struct {
	Approve  bool   `json:"approve"`
	Reason   string `json:"reason"`
	Reviewer string `json:"reviewer"`
}

// RefundWithdrawal is the taxpayer's withdrawal.
type RefundWithdrawal struct {
	Reason string `json:"reason"`
}

// RefundRequisites is the back office's word on a change of bank requisites.
type RefundRequisites struct {
	Verified bool `json:"verified"`
}

// Transition is one line of a case's history.
type Transition struct {
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
}

// Document is a supporting document as the case knows it.
type Document struct {
	DocID    string `json:"doc_id"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
	Type     string `json:"type,omitempty"`
	Key      string `json:"key,omitempty"`
}

// RefundStatus is what the status query returns (no personal data).
type RefundStatus struct {
	CaseID        string    `json:"case_id"`
	RequestSHA256 string    `json:"request_sha256,omitempty"`
	Status        string    `json:"status"`
	Label         string    `json:"label"`
	RequestedAt   time.Time `json:"requested_at"`
	Deadline      time.Time `json:"deadline"`
	Period        int       `json:"period"`
	Claimed       int64     `json:"claimed_kopecks"`
	Overpaid      int64     `json:"overpaid_kopecks"`
	Debts         int64     `json:"debts_kopecks"`
	Refundable    int64     `json:"refundable_kopecks"`
	Approved      int64     `json:"approved_kopecks"`
	Capped        bool      `json:"capped"`
	Interest      int64     `json:"interest_kopecks"`
	DaysLate      int64     `json:"days_late"`
	Paid          int64     `json:"paid_kopecks"`
	TransferID    string    `json:"transfer_id,omitempty"`
	Reminded      bool      `json:"reminded"`
	Escalated     bool      `json:"escalated"`
	BankHold      bool      `json:"bank_hold"`
	// RequisitesDue: until when (5 working days) a requisites check may hold the payout.
	RequisitesDue *time.Time   `json:"requisites_due,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	DecidedBy     string       `json:"decided_by,omitempty"`
	Documents     []Document   `json:"documents"`
	History       []Transition `json:"history"`
}

// RefundID builds a refund's workflow id from an opaque random or derived id.
func RefundID(key string) string { return "refund-" + key }

// Errors of the update validators. Their types (fnerr's) tell the API which answer to give.
var (
	ErrNotAwaitingDecision = temporal.NewApplicationError("the case is not awaiting a decision", fnerr.TypeConflict)
	ErrPayoutStarted       = temporal.NewApplicationError("the payout has started or the case is closed; it can no longer be withdrawn", fnerr.TypeConflict)
)

func invalid(msg string) error { return temporal.NewApplicationError(msg, fnerr.TypeInvalidInput) }

type refund struct {
	in RefundWorkflowInput
	st RefundStatus
	j  *journal

	bankState string // as the last registry check saw it

	pendingDocs   []DocumentRef
	decision      *RefundDecision
	withdrawal    *RefundWithdrawal
	requisites    *RefundRequisites
	retryPayout   bool
	payoutStarted bool
	final         bool
}

// Refund runs one refund request from receipt to payout (or rejection or withdrawal).
func Refund(ctx workflow.Context, in RefundWorkflowInput) (RefundStatus, error) {
	r := &refund{in: in}
	now := workflow.Now(ctx)
	r.st = RefundStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Status: RefundReceived, Label: RefundLabels[RefundReceived], RequestedAt: now,
		Deadline: now.AddDate(0, 0, in.Policy.DeadlineDays), Period: in.Period, Claimed: in.Amount, Documents: []Document{}}
	r.pendingDocs = append(r.pendingDocs, in.Documents...)
	if in.LinkedDeclaration != "" {
		r.st.Documents = append(r.st.Documents, Document{DocID: "declaration", Accepted: true, Type: "declaration", Key: in.LinkedDeclaration})
	}
	r.j = &journal{process: "refund", caseID: in.CaseID, inn: in.INN, requestID: in.RequestID, labels: RefundLabels,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	r.st.Status = "" // the first record sets it
	if err := r.handlers(ctx); err != nil {
		return r.st, err
	}
	r.watchDeadline(ctx)
	if err := r.j.record(ctx, RefundReceived, "taxpayer", in.Reason); err != nil {
		return r.st, err
	}
	err := r.run(ctx)
	r.final = true
	// Let an update that was accepted finish before the workflow completes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.st, err
}

func (r *refund) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, RefundQueryStatus, func() (RefundStatus, error) { return r.st, nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateDecide,
		func(ctx workflow.Context, d RefundDecision) (RefundStatus, error) {
			r.decision = &d
			// answer once the decision has been acted on
			err := workflow.Await(ctx, func() bool { return r.st.Status != RefundInReview || r.final })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(d RefundDecision) error {
			if r.st.Status != RefundInReview || r.decision != nil || r.withdrawal != nil {
				return ErrNotAwaitingDecision
			}
			if d.Reviewer == "" {
				return invalid("reviewer: must name the reviewer")
			}
			if !d.Approve && d.Reason == "" {
				return invalid("reason: a rejection must give the reason the taxpayer will see")
			}
			return nil
		}})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateWithdraw,
		func(ctx workflow.Context, w RefundWithdrawal) (RefundStatus, error) {
			r.withdrawal = &w
			err := workflow.Await(ctx, func() bool { return r.final })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(RefundWithdrawal) error {
			if r.payoutStarted || r.final {
				return ErrPayoutStarted
			}
			if r.withdrawal != nil {
				return temporal.NewApplicationError("the request is already being withdrawn", fnerr.TypeConflict)
			}
			return nil
		}})
	if err != nil {
		return err
	}
	docs := workflow.GetSignalChannel(ctx, RefundSignalDocument)
	reqs := workflow.GetSignalChannel(ctx, RefundSignalRequisites)
	retry := workflow.GetSignalChannel(ctx, RefundSignalRetryPayout)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			s := workflow.NewSelector(ctx)
			s.AddReceive(docs, func(c workflow.ReceiveChannel, _ bool) {
				var d DocumentRef
				c.Receive(ctx, &d)
				r.pendingDocs = append(r.pendingDocs, d)
			})
			s.AddReceive(reqs, func(c workflow.ReceiveChannel, _ bool) {
				var q RefundRequisites
				c.Receive(ctx, &q)
				r.requisites = &q
			})
			s.AddReceive(retry, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				r.retryPayout = true
			})
			s.Select(ctx)
		}
	})
	return nil
}

// watchDeadline reminds the reviewer before the 30-day deadline and escalates when it
// passes, unless the case has finished or its payout has started.
func (r *refund) watchDeadline(ctx workflow.Context) {
	r.j.watch(ctx, deadlineWatch{deadline: r.st.Deadline, reminderBefore: r.in.Policy.ReminderBefore,
		settled: func() bool { return r.final || r.payoutStarted || r.st.Status == RefundPaid },
		remind:  "refund.deadline_reminder", escalate: "refund.deadline_passed", reason: "30-day review deadline passed",
		reminded: &r.st.Reminded, escalated: &r.st.Escalated})
}

func (r *refund) run(ctx workflow.Context) error {
	var a *activities.Activities
	read := workflow.WithActivityOptions(ctx, activities.ReadOptions)

	// 1-2. Preconditions (active account, confirmed profile, linked INN [004:200]) and
	// the overpayment from the ledger, read at once: both are reads.
	checkF := workflow.ExecuteActivity(read, a.CheckTaxpayer, contract.TaxpayerCheckInput{INN: r.in.INN})
	opF := workflow.ExecuteActivity(read, a.ComputeOverpayment, contract.OverpaymentInput{INN: r.in.INN, Period: r.in.Period})
	var check contract.TaxpayerCheckResult
	var op contract.OverpaymentResult
	checkErr, opErr := checkF.Get(ctx, &check), opF.Get(ctx, &op)
	for _, err := range []error{checkErr, opErr} {
		if reason, ok := businessReason(err); ok {
			return r.reject(ctx, "system", reason)
		} else if err != nil {
			return err
		}
	}
	if !check.Eligible {
		return r.reject(ctx, "system", check.Reason)
	}
	r.bankState = check.BankState
	r.st.Overpaid, r.st.Debts, r.st.Refundable = op.Overpaid, op.Debts, op.Refundable
	if op.Refundable <= 0 {
		return r.reject(ctx, "system", "no overpayment to refund once debts are offset")
	}
	r.st.Approved = min(r.in.Amount, op.Refundable)
	r.st.Capped = r.in.Amount > op.Refundable

	// 3. Supporting documents: at least one accepted.
	for !r.hasDocument() {
		if err := r.storeDocuments(ctx); err != nil {
			return err
		}
		if r.hasDocument() {
			break
		}
		if r.st.Status != RefundAwaitingInfo {
			if err := r.j.record(ctx, RefundAwaitingInfo, "system", "supporting documents are required"); err != nil {
				return err
			}
		}
		ok, err := workflow.AwaitWithTimeout(ctx, r.in.Policy.DocumentWait, func() bool { return len(r.pendingDocs) > 0 || r.withdrawal != nil })
		if err != nil {
			return err
		}
		if r.withdrawal != nil {
			return r.withdraw(ctx)
		}
		if !ok {
			return r.reject(ctx, "system", "no supporting documents were received in time")
		}
	}

	// 4. Review: automatic where the rules allow, otherwise a reviewer's decision.
	if err := r.j.record(ctx, RefundInReview, "system", ""); err != nil {
		return err
	}
	if r.in.Policy.AutoApproveMax > 0 && !r.st.Capped && r.st.Approved <= r.in.Policy.AutoApproveMax {
		r.decision = &RefundDecision{Approve: true, Reviewer: "system", Reason: "automatic approval: claim within the confirmed overpayment and the automatic limit"}
	}
	for r.decision == nil {
		if err := workflow.Await(ctx, func() bool { return r.decision != nil || r.withdrawal != nil || len(r.pendingDocs) > 0 }); err != nil {
			return err
		}
		if r.withdrawal != nil {
			return r.withdraw(ctx)
		}
		if err := r.storeDocuments(ctx); err != nil {
			return err
		}
	}
	r.st.DecidedBy = r.decision.Reviewer
	if !r.decision.Approve {
		return r.reject(ctx, r.decision.Reviewer, r.decision.Reason)
	}
	if err := r.j.record(ctx, RefundApproved, r.decision.Reviewer, r.decision.Reason); err != nil {
		return err
	}

	// 5. Bank requisites: a pending change holds the payout until it is verified.
	if err := r.awaitRequisites(ctx); err != nil || r.final || r.withdrawal != nil {
		if r.withdrawal != nil && err == nil {
			return r.withdraw(ctx)
		}
		return err
	}

	// 6. Payout, exactly once (the payout key is the case id), with interest when late.
	return r.pay(ctx)
}

func (r *refund) hasDocument() bool {
	for _, d := range r.st.Documents {
		if d.Accepted {
			return true
		}
	}
	return false
}

// storeDocuments validates and stores every waiting upload; a refused one is reported
// to the taxpayer with its reason.
func (r *refund) storeDocuments(ctx workflow.Context) error {
	var a *activities.Activities
	dctx := workflow.WithActivityOptions(ctx, activities.DocumentOptions)
	for len(r.pendingDocs) > 0 {
		d := r.pendingDocs[0]
		r.pendingDocs = r.pendingDocs[1:]
		var res contract.DocumentResult
		err := workflow.ExecuteActivity(dctx, a.StoreDocument, contract.DocumentInput{CaseID: r.in.CaseID, DocID: d.DocID,
			Purpose: "supporting", IncomingKey: "incoming/" + r.in.CaseID + "/" + d.DocID}).Get(ctx, &res)
		if reason, ok := businessReason(err); ok {
			res = contract.DocumentResult{Accepted: false, Reason: reason}
		} else if err != nil {
			return err
		}
		r.st.Documents = append(r.st.Documents, Document{DocID: d.DocID, Accepted: res.Accepted, Reason: res.Reason, Type: res.Type, Key: res.Key})
		action := "document_accepted"
		if !res.Accepted {
			action = "document_refused"
			if err := r.j.notify(ctx, "taxpayer", "refund.document_refused", "doc_id", d.DocID, "reason", res.Reason); err != nil {
				return err
			}
		}
		// Waited for with the next status change, so it costs no step of its own.
		r.j.pending = append(r.j.pending, r.j.auditAsync(ctx, action, "system", res.Reason))
	}
	return nil
}

func (r *refund) awaitRequisites(ctx workflow.Context) error {
	var a *activities.Activities
	read := workflow.WithActivityOptions(ctx, activities.ReadOptions)
	for {
		// The first check's answer stands unless a hold is being waited out; the payout
		// function refuses (Conflict) if a change began meanwhile, and we come back here.
		check := contract.TaxpayerCheckResult{BankState: r.bankState}
		if r.st.BankHold || r.bankState == "" {
			if err := workflow.ExecuteActivity(read, a.CheckTaxpayer, contract.TaxpayerCheckInput{INN: r.in.INN}).Get(ctx, &check); err != nil {
				return err
			}
			r.bankState = check.BankState
		}
		if check.BankState == contract.BankVerified {
			if r.st.BankHold {
				r.st.BankHold = false
				if err := r.j.audit(ctx, "payout_released", "system", "bank requisites verified"); err != nil {
					return err
				}
			}
			return nil
		}
		if !r.st.BankHold {
			r.st.BankHold = true
			reason := "a change of bank requisites is being verified (up to 5 working days)"
			if check.BankState == contract.BankNone {
				reason = "no verified bank requisites on record: add them in the cabinet"
			}
			if err := r.j.audit(ctx, "payout_held", "system", reason); err != nil {
				return err
			}
			if err := r.j.notify(ctx, "taxpayer", "refund.payout_held", "reason", reason); err != nil {
				return err
			}
			if err := r.j.refresh(ctx); err != nil {
				return err
			}
		}
		r.requisites = nil
		if r.st.RequisitesDue == nil {
			now, days := workflow.Now(ctx), r.in.Policy.RequisitesDays
			var due time.Time
			// The calendar is data that can change between deploys: record the deadline once.
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return calendar.Shared().AddWorkingDays(now, days) }).Get(&due); err != nil {
				return err
			}
			r.st.RequisitesDue = &due
		}
		wait := max(r.st.RequisitesDue.Sub(workflow.Now(ctx)), 0)
		if r.st.Escalated {
			wait = r.in.Policy.OperatorTimeout
		}
		ok, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.requisites != nil || r.withdrawal != nil })
		if err != nil || r.withdrawal != nil {
			return err
		}
		r.bankState = ""
		if !ok && !r.st.Escalated {
			r.st.Escalated = true
			if err := r.j.notify(ctx, "supervisor", "refund.requisites_overdue"); err != nil {
				return err
			}
		}
	}
}

func (r *refund) pay(ctx workflow.Context) error {
	var a *activities.Activities
	r.payoutStarted = true
	for {
		now := workflow.Now(ctx)
		r.st.DaysLate, r.st.Interest = LateInterest(r.st.Approved, r.in.Policy.InterestRateBP, r.st.Deadline, now)
		amount := r.st.Approved + r.st.Interest
		var res contract.PayoutResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.PayoutOptions), a.Payout,
			contract.PayoutInput{PayoutKey: r.in.CaseID, CaseID: r.in.CaseID, INN: r.in.INN, Amount: amount}).Get(ctx, &res)
		if err == nil {
			r.st.Paid, r.st.TransferID = res.Amount, res.TransferID
			if err := r.j.record(ctx, RefundPaid, "system", fmt.Sprintf("transfer %s", res.TransferID)); err != nil {
				return err
			}
			r.final = true
			return nil
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == fnerr.TypeConflict {
			// A requisites change began after the check: hold until it is settled.
			r.bankState = ""
			if err := r.awaitRequisites(ctx); err != nil {
				return err
			}
			if r.withdrawal != nil {
				return r.withdraw(ctx)
			}
			continue
		}
		// Retries exhausted, or the treasury refused: an operator must look.
		reason := "the payout failed after every retry"
		if br, ok := businessReason(err); ok {
			reason = br
		}
		if err := r.j.record(ctx, RefundPayoutFailed, "system", reason); err != nil {
			return err
		}
		if err := r.j.notify(ctx, "operator", "refund.payout_failed", "reason", reason); err != nil {
			return err
		}
		r.retryPayout = false
		ok, err := workflow.AwaitWithTimeout(ctx, r.in.Policy.OperatorTimeout, func() bool { return r.retryPayout })
		if err != nil {
			return err
		}
		if !ok {
			return temporal.NewNonRetryableApplicationError("payout failed and no operator retried it", "PayoutFailed", nil)
		}
		if err := r.j.audit(ctx, "payout_retry", "operator", ""); err != nil {
			return err
		}
	}
}

// LateInterest is the interest for each day of delay past the deadline at an annual
// rate in basis points, rounded half up to the kopeck.
func LateInterest(amount, rateBP int64, deadline, paidAt time.Time) (days, interest int64) {
	if !paidAt.After(deadline) || rateBP <= 0 {
		return 0, 0
	}
	late := paidAt.Sub(deadline)
	days = int64(late / (24 * time.Hour))
	if late%(24*time.Hour) != 0 {
		days++
	}
	const denom = 10_000 * 365
	return days, (amount*rateBP*days + denom/2) / denom
}

func (r *refund) reject(ctx workflow.Context, actor, reason string) error {
	r.st.Reason = reason
	err := r.j.record(ctx, RefundRejected, actor, reason)
	r.final = true
	return err
}

func (r *refund) withdraw(ctx workflow.Context) error {
	r.st.Reason = r.withdrawal.Reason
	err := r.j.record(ctx, RefundWithdrawn, "taxpayer", r.withdrawal.Reason)
	r.final = true
	return err
}

// businessReason extracts the message of a function's business refusal.
func businessReason(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if err != nil && errors.As(err, &appErr) && fnerr.IsBusiness(appErr.Type()) {
		return appErr.Message(), true
	}
	return "", false
}

// project describes the case for the read projection.
func (r *refund) project(workflow.Context) contract.CaseRecord {
	return contract.CaseRecord{Deadline: r.st.Deadline, Escalated: r.st.Escalated,
		Amounts: map[string]int64{"claimed": r.st.Claimed, "approved": r.st.Approved, "interest": r.st.Interest, "paid": r.st.Paid}}
}
