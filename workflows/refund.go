package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/keyrate"
	"github.com/taxflow/taxflow/internal/refunddue"
	"github.com/taxflow/taxflow/internal/term"
)

// Refund of overpaid tax [004:198-211], domain.md §3: due one month from the claim, or
// from the end of the desk review that confirmed it (Tax Code art. 78 p.6; see
// internal/refunddue, the one place that computes the term and the late interest).

// Names of the refund workflow's handlers.
const (
	RefundQueryStatus    = "status"
	RefundUpdateDecide   = "decide"       // reviewer: approve or reject, with a reason
	RefundUpdateWithdraw = "withdraw"     // taxpayer: until the payout starts
	RefundUpdateDocument = "add-document" // taxpayer: an upload is waiting under incoming/; refused once the case can no longer use it
	// RefundSignalDocument is the old way to hand over an upload, answered by nobody: still
	// read (by the main coroutine) for cases started before RefundUpdateDocument; the API
	// no longer sends it.
	RefundSignalDocument    = "document"
	RefundUpdateRequisites  = "requisites"   // back office: the change of requisites was verified or rejected
	RefundUpdateRetryPayout = "retry-payout" // operator: try a failed payout again
	// RefundUpdateRecomputeTerm: operator (taxflow terms recompute): count the term again
	// over the calendar the worker has now (recompute.go); refused once the payout started.
	RefundUpdateRecomputeTerm = "recompute_term"
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
	RefundCancelled    = "cancelled"
	// RefundExpired: no reviewer decided, though reminded before the deadline and escalated
	// at it, within the review expiry after the deadline. Only runs started before change
	// refund-inaction-escalates end so: the authority's silence does not end a claim.
	RefundExpired = "expired"
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
	RefundCancelled:    "Отменено",
	RefundExpired:      "Срок рассмотрения истёк",
}

// RefundPolicy is the configuration a refund runs under. The API fills it from
// configuration at start, so a running case keeps the rules it started with.
type RefundPolicy struct {
	// DeadlineDays: the term in calendar days of runs started before change
	// refund-term-art78 (the seeds' 30 days [004:210]); later runs are due by the Code's
	// one month (internal/refunddue), whatever this says.
	DeadlineDays    int           `json:"deadline_days"`
	ReminderBefore  time.Duration `json:"reminder_before"`  // reviewer reminder before the deadline
	DocumentWait    time.Duration `json:"document_wait"`    // how long to wait for supporting documents
	AutoApproveMax  int64         `json:"auto_approve_max"` // kopecks; 0 turns automatic approval off
	RequisitesDays  int           `json:"requisites_days"`  // working days a requisites check may hold the payout [004:116]
	OperatorTimeout time.Duration `json:"operator_timeout"` // how long a failed payout waits for an operator
	// DeadlineAt, when set, is the instant the case's term ends instead of the Code's
	// month: only `taxflow bench --wave` sets it, to make a wave of deadlines fall within a
	// run (starting workflows directly). The API never does: it fills the policy from
	// configuration, which has no such setting, so no integrator or batch line can shorten
	// or lengthen a statutory term. Runs started without it (all before it existed) take
	// the Code's term, so their commands are unchanged.
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	// ReviewExpiry: how long past the deadline (reminded before it, escalated at it) a case
	// waits for a reviewer's decision before it is escalated again, and again each such
	// period after (before change refund-inaction-escalates: before it expired); 0 means
	// the default.
	ReviewExpiry time.Duration `json:"review_expiry,omitempty"`
}

// DefaultRefundPolicy is domain.md's defaults.
func DefaultRefundPolicy() RefundPolicy {
	return RefundPolicy{
		DeadlineDays:    30,
		ReminderBefore:  72 * time.Hour,
		DocumentWait:    14 * 24 * time.Hour,
		AutoApproveMax:  1_000_000, // 10 000 ₽
		RequisitesDays:  5,
		OperatorTimeout: 30 * 24 * time.Hour,
		ReviewExpiry:    defaultReviewExpiry,
	}
}

const defaultReviewExpiry = 30 * 24 * time.Hour

// reviewExpiry is the policy's, or the default for a policy that predates it.
func (p RefundPolicy) reviewExpiry() time.Duration {
	if p.ReviewExpiry > 0 {
		return p.ReviewExpiry
	}
	return defaultReviewExpiry
}

// DocumentRef names an upload waiting under incoming/<case>/<doc>.
type DocumentRef struct {
	DocID string `json:"doc_id"`
	// At: when the API accepted the upload's message (it stamps it); a wait it ends counts
	// from it, so a reset case that takes the message again writes the same content.
	At time.Time `json:"at,omitzero"`
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
	LinkedDeclaration string `json:"linked_declaration,omitempty"`
	// ConfirmedByReview: the refund the desk review of LinkedDeclaration confirmed, in
	// kopecks (Tax Code art. 78 p.6, art. 88): the decision is the review, so the refund is
	// approved without a second one, whatever AutoApproveMax (change
	// refund-confirmed-by-review).
	ConfirmedByReview int64         `json:"confirmed_by_review_kopecks,omitempty"`
	Documents         []DocumentRef `json:"documents,omitempty"`
	Policy            RefundPolicy  `json:"policy"`
	// DeskReview: the desk review that confirmed a refund claimed in a declaration (its
	// decision's time and the end of its term): the refund is due one month from the day
	// it ended or had to end, whichever is earlier (art. 78 p.6 with art. 88), not from
	// when this case starts.
	DeskReview *refunddue.DeskReview `json:"desk_review,omitempty"`
	// Owner is who created the case (the API's create, a batch line): its first step
	// writes the case's owner row with it. Cases started before it existed carry none
	// (their owner was written before they started).
	Owner *contract.CaseOwner `json:"owner,omitempty"`
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

// RefundRequisites is the back office's word on a change of bank requisites. The API
// writes the registry first (the change verified, or dropped), then tells the cases
// that hold a payout for it.
type RefundRequisites struct {
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
	By       string `json:"by,omitempty"`
}

// RefundRetry is an operator's request to try a failed payout again.
type RefundRetry struct {
	Operator string `json:"operator"`
	Reason   string `json:"reason,omitempty"`
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
	// Deadline is the end of the refund's term (24:00 Moscow time of DeadlineDay):
	// DeadlineDays calendar days from the day after the request, moved off a non-working
	// last day (Tax Code art. 78 p.6, art. 6.1).
	Deadline    time.Time `json:"deadline"`
	DeadlineDay string    `json:"deadline_day,omitempty"` // YYYY-MM-DD, Moscow
	// DeadlineProvisional lists calendar years without a production-calendar decree that
	// the deadline was counted over: it may move when the decree is published.
	DeadlineProvisional []int `json:"deadline_provisional_years,omitempty"`
	// DeadlineSource and DeadlineRule say what the term runs from and by which articles
	// (internal/refunddue): claim, desk_review_ended, desk_review_due.
	DeadlineSource string `json:"deadline_source,omitempty"`
	DeadlineRule   string `json:"deadline_rule,omitempty"`
	// Overdue counts the escalations of a case still undecided past its term (each review
	// expiry): it stays due, and interest accrues.
	Overdue    int   `json:"overdue,omitempty"`
	Period     int   `json:"period"`
	Claimed    int64 `json:"claimed_kopecks"`
	Overpaid   int64 `json:"overpaid_kopecks"`
	Debts      int64 `json:"debts_kopecks"`
	Refundable int64 `json:"refundable_kopecks"`
	Approved   int64 `json:"approved_kopecks"`
	// Capped: less than claimed is approved; CapReason says why (the confirmed
	// overpayment, or what other refunds of the period already hold).
	Capped    bool   `json:"capped"`
	CapReason string `json:"cap_reason,omitempty"`
	// Reservation is the state of the case's hold in the refund ledger: reserved,
	// posted (paid), voided, refused; empty before approval.
	Reservation string `json:"reservation,omitempty"`
	// Interest for each day the refund is paid late, at the key rate of that day (art. 78
	// p.10); InterestUncheckedDays of them fall after the key-rate table's checked date.
	Interest              int64  `json:"interest_kopecks"`
	DaysLate              int64  `json:"days_late"`
	InterestUncheckedDays int    `json:"interest_unchecked_days,omitempty"`
	Paid                  int64  `json:"paid_kopecks"`
	TransferID            string `json:"transfer_id,omitempty"`
	// PayoutKey names the payout in flight or made (`<case>/payout/<attempt>`).
	PayoutKey   string `json:"payout_key,omitempty"`
	PayoutError string `json:"payout_error,omitempty"`
	Reminded    bool   `json:"reminded"`
	// DeadlineEscalated: the 30-day review deadline passed unsettled (the supervisor was told).
	DeadlineEscalated bool `json:"deadline_escalated"`
	// RequisitesEscalated: a requisites check held the payout past its 5 working days.
	RequisitesEscalated bool `json:"requisites_escalated"`
	// Escalated is either of the two (kept for callers that read it before they existed).
	Escalated bool `json:"escalated"`
	BankHold  bool `json:"bank_hold"`
	// RequisitesDue: until when (5 working days) a requisites check may hold the payout.
	RequisitesDue *time.Time   `json:"requisites_due,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	DecidedBy     string       `json:"decided_by,omitempty"`
	Documents     []Document   `json:"documents"`
	History       []Transition `json:"history"`
	// Version is the last step this run took: the case projection's version once that
	// step is written. A reader compares the two: a run reset by an operator starts over
	// behind what the case has already recorded (the record, not the run, is the truth).
	Version int64 `json:"version"`
}

// RefundID builds a refund's workflow id from an opaque random or derived id.
func RefundID(key string) string { return "refund-" + key }

// MaxReasonChars bounds the free text of a reason (decision, withdrawal, requisites,
// retry). The API refuses longer text with a 400 naming the field; the workflow's
// validators refuse it too, and what reaches the journal is clipped to what the journal
// holds, so free text can never fail a case.
const MaxReasonChars = contract.MaxReasonChars

func invalid(msg string) error { return temporal.NewApplicationError(msg, fnerr.TypeInvalidInput) }

func checkReason(field, reason string) error {
	if utf8.RuneCountInString(reason) > MaxReasonChars {
		return invalid(fmt.Sprintf("%s: at most %d characters", field, MaxReasonChars))
	}
	return nil
}

// changeAutoApprovalSkipsReview is the workflow.GetVersion change id of the automatic
// approval without an in_review transition (README, "Changing a workflow safely").
const changeAutoApprovalSkipsReview = "auto-approval-skips-review"

// changeRefundConfirmedByReview is the workflow.GetVersion change id of the refund a
// desk review confirmed (RefundWorkflowInput.ConfirmedByReview), approved without a
// second review.
const changeRefundConfirmedByReview = "refund-confirmed-by-review"

// changeDocumentAnswersOnceStored is the workflow.GetVersion change id of the document
// update that answers once its upload is stored (or as late), not on receipt.
const changeDocumentAnswersOnceStored = "document-answers-once-stored"

// changeDocumentWaitNotRestarted is the workflow.GetVersion change id of the document wait
// that runs once from the request for documents, not again after each refused upload.
const changeDocumentWaitNotRestarted = "document-wait-not-restarted"

// changeRefundFoldedSteps is the workflow.GetVersion change id of the refund whose steps
// cost fewer activity tasks, each still safe to repeat: the two reads run as local
// activities (a read repeated by a failed task's next attempt writes nothing), the
// `received` step is scheduled with them, the `approved` step rides in the ledger
// reservation's transaction and the `paid` step in the payout's posting transaction
// (still one write per transition, with content fixed in the history). A payout key
// whose pay carried the step is settled by the pay's success or by a cancel carrying
// the same step, which fences the key: a failed payout is cancelled before anything
// else is written, and a retry makes a new key. Asked once, when the case begins; runs
// recorded before it (no marker) keep their own steps and key.
const changeRefundFoldedSteps = "refund-folded-steps"

// changeRefundVoidOnFailure: a failed or cancelled case of refund-folded-steps voids its
// reservation by key whatever it knows of it (see cleanup).
const changeRefundVoidOnFailure = "refund-void-on-failure"

// changeRefundTermArt78 is the workflow.GetVersion change id of the refund term computed
// by internal/refunddue: one month from the claim, or from the day the desk review that
// confirmed the refund ended or had to end (Tax Code art. 78 p.6 with art. 88), noted in
// the journal with the first step. Runs recorded before it (no marker) keep the policy's
// 30 calendar days from the claim.
const changeRefundTermArt78 = "refund-term-art78"

// changeRefundInactionEscalates is the workflow.GetVersion change id of the review that
// never expires: when no reviewer decides within the review expiry past the term, the
// case is escalated again (journal, supervisor) and stays due, each expiry period, until
// someone decides (Tax Code art. 78, 79: the authority's silence does not end the
// claim). Asked when the expiry timer fires, so waiting runs take the new path too;
// runs that expired before it (no marker) replay their expiry.
const changeRefundInactionEscalates = "refund-inaction-escalates"

// changeRefundInterestPerAttempt is the workflow.GetVersion change id of the interest
// recomputed for each payout key to its own day (Tax Code art. 78 p.10), the change a
// journal entry: a key of a run before refund-folded-steps that failed is cancelled
// after the operator's retry and a new key is made, instead of sending the first key's
// interest again. Asked when a second key is made or an operator retries.
const changeRefundInterestPerAttempt = "refund-interest-per-attempt"

// maxPayoutRounds bounds the payout loop: each round prepares or retries a payout after
// a requisites hold or an operator's retry. Past it the case gives up (the reservation is
// voided) instead of looping.
const maxPayoutRounds = 8

// reservationLease is how long the ledger keeps a reservation before the expire sweep may
// void it: longer than this workflow can hold one (every payout round can wait out a
// requisites check with its escalation and an operator), so only a case that ended
// without settling it (terminated) loses it.
func (p RefundPolicy) reservationLease() time.Duration {
	return time.Duration(maxPayoutRounds)*(21*24*time.Hour+2*p.OperatorTimeout) + 30*24*time.Hour
}

// payoutAttempt is one payout key and its content, fixed when the key is made: a retry
// sends exactly this, and different content needs a new key (after the old is cancelled).
type payoutAttempt struct {
	N         int    `json:"n"`
	Key       string `json:"key"`
	Principal int64  `json:"principal"`
	Interest  int64  `json:"interest"`
	DaysLate  int64  `json:"days_late"`
	Payee     string `json:"payee"`
	// Step: the `paid` step a pay under this key carried whose outcome is unknown (the
	// cancel that was to settle it failed): the next cancel of the key carries it again.
	Step *contract.RecordInput `json:"step,omitempty"`
}

type refund struct {
	in RefundWorkflowInput
	st RefundStatus
	j  *journal

	// folded: the run is on the path of change refund-folded-steps; received is its
	// `received` step, written in the background.
	folded   bool
	received workflow.Future

	bankState string // as the last registry check saw it
	payeeRef  string // the verified account it saw

	pendingDocs []DocumentRef
	// docSignals carries the old document signal; the main coroutine drains it
	// (takeDocSignals), never a goroutine. lateDocs are those that came too late to use.
	docSignals workflow.ReceiveChannel
	lateDocs   []string
	// docsIn counts the uploads ever queued in pendingDocs, docsStored those stored (or
	// refused by the store) since, in the same order: the document update answers once its
	// own upload is stored, and as late when the case ended first.
	docsIn, docsStored int
	decision           *RefundDecision
	// decisionTaken: the main coroutine has acted on r.decision (an automatic one too).
	decisionTaken bool
	withdrawal    *RefundWithdrawal
	// requisites is a back-office message not yet acted on; requisitesAcked counts
	// those acted on, so the update that brought one answers after its effect.
	requisites      *RefundRequisites
	ackRequisites   bool
	requisitesAcked int
	retry           *RefundRetry
	retriesTaken    int  // operator retries acted on
	operatorOpen    bool // an operator's task is open: the case waits for a retry
	attempt         *payoutAttempt
	attempts        int  // payout keys made so far
	rounds          int  // of the payout loop
	holdEscalated   bool // the current requisites hold has passed its 5 working days
	payoutStarted   bool
	// reserveUnknown: a reservation was asked for and no answer came (its activity failed
	// for good): it may hold the amount, so a release voids it all the same.
	reserveUnknown bool
	// ending: the case is on its way to a final status (rejected, withdrawn, expired,
	// given up, cancelled); final: it is there. Either refuses every message.
	ending bool
	final  bool

	// art78: the term is counted by internal/refunddue (change refund-term-art78), not as
	// the policy's calendar days; the recompute update counts it the same way again.
	art78 bool
	// watchCtx is the context the deadline watch runs under (the workflow's); stopWatch
	// cancels the running watch, so a moved deadline's old timers never fire.
	watchCtx  workflow.Context
	stopWatch workflow.CancelFunc
	// termMoves counts the terms recomputed to another day: the review's expiry timer is
	// set again from the new deadline.
	termMoves int
}

// current is the status a refusal names (a case queried before its first record has
// been received).
func (r *refund) current() string { return or(r.st.Status, RefundReceived) }

// late refuses a message the case cannot take in its current status (too early, too
// late, or already being answered): a Conflict with the status, which the API answers
// as 409 with current_status.
func (r *refund) late(what string) error {
	s := r.current()
	return errLate(what, s, RefundLabels[s])
}

func (r *refund) closed() bool { return r.final || r.ending }

// Validators of the refund's updates: each refuses what the case could not act on, so an
// accepted message is never dropped. They read state only.

func (r *refund) validateDecision(d RefundDecision) error {
	if !refundStates.takes(r.current(), RefundUpdateDecide) || r.decision != nil || r.withdrawal != nil || r.closed() {
		return r.late("no decision can be taken")
	}
	if d.Reviewer == "" {
		return invalid("reviewer: must name the reviewer")
	}
	if !d.Approve && d.Reason == "" {
		return invalid("reason: a rejection must give the reason the taxpayer will see")
	}
	return checkReason("reason", d.Reason)
}

func (r *refund) validateWithdrawal(w RefundWithdrawal) error {
	if !refundStates.takes(r.current(), RefundUpdateWithdraw) || r.payoutStarted || r.withdrawal != nil || r.closed() {
		return r.late("the request can no longer be withdrawn (the payout has started, or the case is closed or being withdrawn)")
	}
	return checkReason("reason", w.Reason)
}

func (r *refund) validateRequisites(q RefundRequisites) error {
	if !refundStates.takes(r.current(), RefundUpdateRequisites) || !r.st.BankHold || r.requisites != nil || r.closed() {
		return r.late("no payout is held for bank requisites")
	}
	if !q.Verified && q.Reason == "" {
		return invalid("reason: a rejected change of requisites must say why")
	}
	return checkReason("reason", q.Reason)
}

func (r *refund) validateRetry(q RefundRetry) error {
	if !refundStates.takes(r.current(), RefundUpdateRetryPayout) || !r.operatorOpen || r.retry != nil || r.closed() {
		return r.late("no failed payout awaits a retry")
	}
	if q.Operator == "" {
		return invalid("operator: must name the operator")
	}
	return checkReason("reason", q.Reason)
}

// maxDocIDLen bounds a document id: it names an object under incoming/<case>/.
const maxDocIDLen = 80

func (r *refund) validateDocument(d DocumentRef) error {
	if !validDocID(d.DocID) {
		return invalid(fmt.Sprintf("doc_id: 1-%d lower-case letters, digits and '-', starting with a letter or digit", maxDocIDLen))
	}
	if !r.takesDocuments() {
		return r.late("the case can no longer use a document")
	}
	return nil
}

func validDocID(id string) bool {
	if id == "" || len(id) > maxDocIDLen || id[0] == '-' {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// takesDocuments: a document can still count (before a decision is taken: the statuses
// refundStates lists for add-document, with no decision or withdrawal pending). The old
// document signal is taken in the same statuses as the update.
func (r *refund) takesDocuments() bool {
	if r.closed() || r.decision != nil || r.withdrawal != nil {
		return false
	}
	return refundStates.takes(r.current(), RefundUpdateDocument)
}

// takeDocSignals moves the old document signals that have arrived into pendingDocs, or,
// when the case can no longer use them, into lateDocs (recorded in the journal at the
// end). Called by the main coroutine only.
func (r *refund) takeDocSignals() {
	for {
		var d DocumentRef
		if !r.docSignals.ReceiveAsync(&d) {
			return
		}
		if r.takesDocuments() {
			r.pendingDocs = append(r.pendingDocs, d)
			r.docsIn++
		} else {
			r.lateDocs = append(r.lateDocs, d.DocID)
		}
	}
}

// docsWaiting: an upload has been handed over and not yet stored.
func (r *refund) docsWaiting() bool { return len(r.pendingDocs) > 0 || r.docSignals.Len() > 0 }

// Refund runs one refund request from receipt to payout (or rejection or withdrawal).
func Refund(ctx workflow.Context, in RefundWorkflowInput) (RefundStatus, error) {
	r := &refund{in: in}
	// The claim's time is the case's start (the API starts it when it takes the claim), not
	// the first workflow task's: a reset run re-runs that task later and must write the
	// same term and the same first step.
	now := workflow.GetInfo(ctx).WorkflowStartTime
	r.st = RefundStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Status: RefundReceived, Label: RefundLabels[RefundReceived], RequestedAt: now,
		Period: in.Period, Claimed: in.Amount, Documents: []Document{}}
	r.pendingDocs = append(r.pendingDocs, in.Documents...)
	r.docsIn = len(r.pendingDocs)
	if in.LinkedDeclaration != "" {
		r.st.Documents = append(r.st.Documents, Document{DocID: "declaration", Accepted: true, Type: "declaration", Key: in.LinkedDeclaration})
	}
	r.j = &journal{process: "refund", caseID: in.CaseID, inn: in.INN, requestID: in.RequestID, labels: RefundLabels, owner: in.Owner,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	r.st.Status = "" // the first record sets it
	if err := r.handlers(ctx); err != nil {
		return r.status(), err
	}
	err := r.begin(ctx, now)
	if err != nil && !r.final {
		err = r.cleanup(ctx, err)
	}
	r.final = true
	// Let every update that was accepted answer (each sees final and answers with the
	// outcome or a refusal) and record the old document signals that came too late,
	// before the workflow completes; on a disconnected context: a cancelled case still
	// answers its callers.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	if r.received != nil { // a case that failed before its next step: its first is settled
		_ = r.received.Get(dctx, nil)
	}
	r.recordLateDocs(dctx)
	return r.status(), err
}

// begin fixes the case's term, records its receipt and runs it.
func (r *refund) begin(ctx workflow.Context, now time.Time) error {
	r.folded = workflow.GetVersion(ctx, changeRefundFoldedSteps, workflow.DefaultVersion, 1) != workflow.DefaultVersion
	r.j.recheck = r.folded
	// The term of art. 78 p.6, counted by art. 6.1 over the production calendar, once: a
	// running case keeps its term when the calendar data change.
	deadline, termNote, err := r.term(ctx, now)
	if err != nil {
		return err
	}
	r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional = deadline.End, deadline.LastDay.Format(time.DateOnly), deadline.Provisional
	r.watchCtx = ctx
	r.watchDeadline()
	provisional := note{"deadline_provisional", "system", "the refund is due by " + deadline.String() +
		": the production calendar of that year is not yet decreed, so the last day may move"}
	// Since change record-step-local the note rides with the first step: a claim whose term
	// runs into an undecreed year (every claim of December) takes no step more. Runs from
	// before it (no marker) write the note as a step of its own.
	if r.folded {
		// The step is written while the reads run; every later step follows it.
		var notes []note
		if termNote != nil {
			notes = append(notes, *termNote)
		}
		if deadline.IsProvisional() {
			notes = append(notes, provisional)
		}
		r.received = r.j.recordAsync(ctx, RefundReceived, "taxpayer", clip(r.in.Reason), notes...)
		return r.run(ctx)
	}
	var notes []note
	if termNote != nil && r.j.newSteps(ctx) {
		notes = append(notes, *termNote)
	}
	if deadline.IsProvisional() && r.j.newSteps(ctx) {
		notes = append(notes, provisional)
	}
	err = r.j.record(ctx, RefundReceived, "taxpayer", clip(r.in.Reason), notes...)
	if err == nil && deadline.IsProvisional() && len(notes) == 0 {
		err = r.j.audit(ctx, provisional.action, provisional.actor, provisional.reason)
	}
	if err == nil {
		err = r.run(ctx)
	}
	return err
}

// term is the case's term: since change refund-term-art78 computed by internal/refunddue
// (one month from the claim, or from the end of the desk review that confirmed it, then
// noted in the journal with the rule it follows); before it, the policy's calendar days
// from the claim.
func (r *refund) term(ctx workflow.Context, now time.Time) (term.Result, *note, error) {
	if workflow.GetVersion(ctx, changeRefundTermArt78, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		res, err := termOf(ctx, func(t term.Terms) term.Result { return t.Days(now, r.in.Policy.DeadlineDays) })
		return res, nil, err
	}
	r.art78 = true
	if at := r.in.Policy.DeadlineAt; at != nil {
		r.st.DeadlineSource, r.st.DeadlineRule = "policy", "a bench's deadline (policy deadline_at), not the Code's"
		last := time.Date(at.In(term.Moscow).Year(), at.In(term.Moscow).Month(), at.In(term.Moscow).Day(), 0, 0, 0, 0, term.Moscow)
		return term.Result{LastDay: last, End: at.UTC()}, &note{"refund_term", "system", "the refund is due at " + at.UTC().Format(time.RFC3339) +
			": set by the policy of a bench run, not by the Code"}, nil
	}
	basis := refunddue.Basis{Claimed: now, Review: r.in.DeskReview}
	var due refunddue.Due
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return refunddue.Term(currentTerms(), basis) }).Get(&due); err != nil {
		return term.Result{}, nil, err
	}
	r.st.DeadlineSource, r.st.DeadlineRule = string(due.Source), due.Rule
	if due.Source == refunddue.Claim { // the status says it; the journal has the claim's step
		return due.Result, nil, nil
	}
	// A term that does not run from the claim says in the journal what it runs from.
	return due.Result, &note{"refund_term", "system", clip("the refund is due by " + due.LastDay.Format(time.DateOnly) + ": " + due.Rule)}, nil
}

// maxLateDocRounds bounds the final drain: a signal that arrives while the last journal
// step is written gets another round, not an unbounded loop.
const maxLateDocRounds = 3

// recordLateDocs drains the old document signal and writes what the case could not use
// to the journal, so that a document handed over after the decision is not lost without
// a trace. It runs when the case is final, just before the workflow completes.
func (r *refund) recordLateDocs(ctx workflow.Context) {
	for range maxLateDocRounds {
		r.takeDocSignals()
		if len(r.lateDocs) == 0 {
			return
		}
		ids := strings.Join(r.lateDocs, ", ")
		r.lateDocs = nil
		reason := clip("documents handed over after the case stopped taking them were not used: " + ids)
		if err := r.j.audit(ctx, "document_ignored", "system", reason); err != nil {
			workflow.GetLogger(ctx).Error("refund: recording late documents failed", "error", err)
			return
		}
	}
	r.takeDocSignals()
	if len(r.lateDocs) > 0 {
		workflow.GetLogger(ctx).Warn("refund: late documents left unrecorded", "doc_ids", strings.Join(r.lateDocs, ", "))
	}
}

// status is the query's answer: the state, with the combined escalation flag.
func (r *refund) status() RefundStatus {
	st := r.st
	st.Escalated = st.DeadlineEscalated || st.RequisitesEscalated
	if r.j != nil {
		st.Version = r.j.Seq()
	}
	return st
}

// handlers registers the query, the updates and the old signal. Each update handler
// only records its message; the main coroutine acts on it. A handler that answers
// after the effect waits on a disconnected context for the effect or for the end of
// the case (final), and answers a message the case ended without taking with a late
// refusal, never a silent success.
func (r *refund) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, RefundQueryStatus, func() (RefundStatus, error) { return r.status(), nil }); err != nil {
		return err
	}
	wait := func(ctx workflow.Context, done func() bool) error {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		return workflow.Await(dctx, func() bool { return done() || r.final })
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateDecide,
		func(ctx workflow.Context, d RefundDecision) (RefundStatus, error) {
			r.decision = &d
			// answer once the decision has been acted on (approved or rejected)
			if err := wait(ctx, func() bool { return r.decisionTaken && r.st.Status != RefundInReview }); err != nil {
				return r.status(), err
			}
			// Success only once the decision has had its effect: a case cancelled or failed
			// while acting on it (still in_review, or cancelled) did not carry it out.
			if !r.decisionTaken || (r.st.Status != RefundApproved && r.st.Status != RefundRejected) {
				return r.status(), r.late("the decision came too late")
			}
			return r.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateDecision})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateWithdraw,
		func(ctx workflow.Context, w RefundWithdrawal) (RefundStatus, error) {
			r.withdrawal = &w
			if err := wait(ctx, func() bool { return false }); err != nil {
				return r.status(), err
			}
			if r.st.Status != RefundWithdrawn {
				return r.status(), r.late("the withdrawal came too late")
			}
			return r.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateWithdrawal})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateRequisites,
		func(ctx workflow.Context, q RefundRequisites) (RefundStatus, error) {
			seen := r.requisitesAcked
			r.requisites = &q
			// answer once the registry has been checked again: released, or still held
			if err := wait(ctx, func() bool { return r.requisitesAcked > seen }); err != nil {
				return r.status(), err
			}
			if r.requisitesAcked == seen {
				return r.status(), r.late("the requisites came too late")
			}
			return r.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateRequisites})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateRetryPayout,
		func(ctx workflow.Context, q RefundRetry) (RefundStatus, error) {
			seen := r.retriesTaken
			r.retry = &q
			// answer once the case has taken the retry (the payout runs after)
			if err := wait(ctx, func() bool { return r.retriesTaken > seen }); err != nil {
				return r.status(), err
			}
			if r.retriesTaken == seen {
				return r.status(), r.late("the retry came too late")
			}
			return r.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateRetry})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateDocument,
		func(ctx workflow.Context, d DocumentRef) (RefundStatus, error) {
			n := r.docsIn
			r.pendingDocs = append(r.pendingDocs, d)
			r.docsIn++
			// Change "document-answers-once-stored" (version 1): answer once the upload is
			// stored, as late when the case ends first (rejected by its preconditions,
			// withdrawn, cancelled), instead of a success for an upload nobody read. Runs
			// that answered at once before the change (no marker) keep doing so.
			if workflow.GetVersion(ctx, changeDocumentAnswersOnceStored, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return r.status(), nil
			}
			if err := wait(ctx, func() bool { return r.docsStored > n }); err != nil {
				return r.status(), err
			}
			if r.docsStored <= n {
				return r.status(), r.late("the document was not used")
			}
			return r.status(), nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateDocument})
	if err != nil {
		return err
	}
	err = workflow.SetUpdateHandlerWithOptions(ctx, RefundUpdateRecomputeTerm, r.recomputeTerm,
		workflow.UpdateHandlerOptions{Validator: func() error {
			if !r.termMatters() {
				return r.late("the term no longer matters (the payout has started, or the case is closed)")
			}
			return nil
		}})
	if err != nil {
		return err
	}
	r.docSignals = workflow.GetSignalChannel(ctx, RefundSignalDocument)
	return nil
}

// termMatters: the case has a term that can still change what happens (no payout has
// started: its interest is counted from the deadline when it starts).
func (r *refund) termMatters() bool {
	return !r.closed() && !r.payoutStarted && refundStates.takes(r.current(), RefundUpdateRecomputeTerm) && !r.st.Deadline.IsZero()
}

// recomputeTerm is the recompute_term update (recompute.go): the term counted first, in a
// SideEffect, as begin counted it, over the calendar the worker has now; then, under the
// step mutex, a changed term is written (term_recomputed, with the projection carrying the
// new deadline), the deadline moves and the watch starts again on it.
func (r *refund) recomputeTerm(ctx workflow.Context) (TermRecomputed, error) {
	basis, art78, days := refunddue.Basis{Claimed: r.st.RequestedAt, Review: r.in.DeskReview}, r.art78, r.in.Policy.DeadlineDays
	var due refunddue.Due
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		if !art78 { // a run from before refund-term-art78 keeps its rule
			return refunddue.Due{Result: currentTerms().Days(basis.Claimed, days), Source: refunddue.Claim,
				Rule: fmt.Sprintf("%d calendar days from the claim (Tax Code art. 6.1)", days)}
		}
		return refunddue.Term(currentTerms(), basis)
	}).Get(&due); err != nil {
		return TermRecomputed{}, err
	}
	if err := r.j.lock(ctx); err != nil {
		return TermRecomputed{}, err
	}
	defer r.j.mu.Unlock()
	out := TermRecomputed{CaseID: r.in.CaseID, Previous: r.st.DeadlineDay, DeadlineDay: r.st.DeadlineDay, Deadline: r.st.Deadline,
		Provisional: due.Provisional, Decreed: decreedSince(r.st.DeadlineProvisional, due.Provisional)}
	if !r.termMatters() { // the case moved on while the update waited for the step mutex
		return out, r.late("the term no longer matters (the payout has started, or the case is closed)")
	}
	if due.End.Equal(r.st.Deadline) {
		return out, nil
	}
	was := r.st
	now := workflow.Now(ctx)
	r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional = due.End, due.LastDay.Format(time.DateOnly), due.Provisional
	if art78 {
		r.st.DeadlineRule = due.Rule
	}
	// A deadline still ahead is watched from the start: reminded before it, escalated at
	// it (an escalation of the old one stays in the journal).
	if due.End.After(now) {
		r.st.DeadlineEscalated = false
		if due.End.Add(-r.in.Policy.ReminderBefore).After(now) {
			r.st.Reminded = false
		}
	}
	r.j.queue(ctx, "term_recomputed", r.j.current(), r.j.current(), "system",
		clip(recomputedReason("the refund's term", was.DeadlineDay, due.Result, out.Decreed, due.Rule)))
	if err := r.j.writeLocked(ctx, r.j.current()); err != nil {
		r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional, r.st.DeadlineRule = was.Deadline, was.DeadlineDay, was.DeadlineProvisional, was.DeadlineRule
		r.st.DeadlineEscalated, r.st.Reminded = was.DeadlineEscalated, was.Reminded
		return out, fmt.Errorf("record the recomputed term: %w", err)
	}
	// The old watch stops before the mutex is released: its timers never fire, and an
	// escalation of the old deadline waiting for the mutex gives up.
	r.stopWatch()
	if due.End.After(now) || !r.st.DeadlineEscalated {
		r.watchDeadline()
	}
	r.termMoves++
	out.Changed, out.DeadlineDay, out.Deadline = true, r.st.DeadlineDay, r.st.Deadline
	return out, nil
}

// watchDeadline reminds the reviewer before the 30-day deadline and escalates when it
// passes, unless the case has finished or its payout has started.
// The watch runs under a context of its own (no command of its own: WithCancel is local
// to the workflow), cancelled when a recomputed term starts another.
func (r *refund) watchDeadline() {
	ctx, cancel := workflow.WithCancel(r.watchCtx)
	r.stopWatch = cancel
	r.j.watch(ctx, deadlineWatch{deadline: r.st.Deadline, reminderBefore: r.in.Policy.ReminderBefore,
		settled: func() bool { return r.final || r.payoutStarted || r.st.Status == RefundPaid },
		remind:  "refund.deadline_reminder", escalate: "refund.deadline_passed",
		reason:   "the refund's term passed undecided: interest accrues from the next day (Tax Code art. 78 p.6, 10)",
		reminded: &r.st.Reminded, escalated: &r.st.DeadlineEscalated})
}

func (r *refund) run(ctx workflow.Context) error {
	var a *activities.Activities
	read := workflow.WithActivityOptions(ctx, activities.ReadOptions)

	// 1-2. Preconditions (active account, confirmed profile, linked INN [004:200]) and
	// the overpayment from the ledger, read at once: both are reads.
	// At: the claim's time, so that only payments of the last 3 years count (art. 78 p.7).
	checkIn, opIn := contract.TaxpayerCheckInput{INN: r.in.INN}, contract.OverpaymentInput{INN: r.in.INN, Period: r.in.Period, At: r.st.RequestedAt}
	var checkF, opF workflow.Future
	if r.folded { // reads: a failed task's next attempt repeats them and writes nothing
		lread := workflow.WithLocalActivityOptions(ctx, activities.ReadLocalOptions)
		checkF, opF = workflow.ExecuteLocalActivity(lread, a.CheckTaxpayer, checkIn), workflow.ExecuteLocalActivity(lread, a.ComputeOverpayment, opIn)
	} else {
		checkF, opF = workflow.ExecuteActivity(read, a.CheckTaxpayer, checkIn), workflow.ExecuteActivity(read, a.ComputeOverpayment, opIn)
	}
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
	r.bankState, r.payeeRef = check.BankState, check.PayeeRef
	r.st.Overpaid, r.st.Debts, r.st.Refundable = op.Overpaid, op.Debts, op.Refundable
	if op.Refundable <= 0 {
		if op.Expired > 0 {
			return r.reject(ctx, "system", fmt.Sprintf("the overpayment of %s was formed by payments made more than 3 years before the claim: "+
				"a refund can no longer be claimed (Tax Code art. 78 p.7)", domainKopecks(op.Expired)))
		}
		return r.reject(ctx, "system", "no overpayment to refund once debts are offset")
	}
	r.st.Approved = min(r.in.Amount, op.Refundable)
	if r.st.Capped = r.in.Amount > op.Refundable; r.st.Capped {
		r.st.CapReason = fmt.Sprintf("the claim exceeds the confirmed overpayment of %s", domainKopecks(op.Refundable))
		if op.Expired > 0 {
			r.st.CapReason += fmt.Sprintf("; %s of it was paid more than 3 years before the claim (Tax Code art. 78 p.7)", domainKopecks(op.Expired))
		}
	}

	// 3. Supporting documents: at least one accepted, within DocumentWait of the request
	// for them.
	var docsBy time.Time
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
		if docsBy.IsZero() {
			docsBy = workflow.Now(ctx).Add(r.in.Policy.DocumentWait)
		}
		// Change "document-wait-not-restarted" (version 1): a refused upload no longer
		// starts the wait again (one every few days kept the case waiting for ever); runs
		// that waited before the change (no marker) keep a full wait each round.
		wait := r.in.Policy.DocumentWait
		if workflow.GetVersion(ctx, changeDocumentWaitNotRestarted, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
			wait = max(docsBy.Sub(workflow.Now(ctx)), 0)
		}
		ok, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.docsWaiting() || r.withdrawal != nil })
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
	if r.withdrawal != nil { // taken while the documents were stored
		return r.withdraw(ctx)
	}

	// 4. Review: automatic where the rules allow, otherwise a reviewer's decision (the
	// watch reminds before the deadline and escalates at it). Each review expiry past the
	// deadline without a decision escalates the case again: it stays due, with interest
	// accruing, until someone decides (runs before change refund-inaction-escalates
	// expired at the first).
	auto := r.in.Policy.AutoApproveMax > 0 && !r.st.Capped && r.st.Approved <= r.in.Policy.AutoApproveMax
	// Change "refund-confirmed-by-review" (version 1): a refund a desk review confirmed
	// (art. 78 p.6, art. 88) is approved as confirmed, never reviewed a second time; the
	// overpayment and the debts offset (art. 78 p.5) were computed above as for any
	// claim. Asked only for such a refund, so other histories carry no marker.
	confirmed := r.in.ConfirmedByReview > 0 && r.st.Approved <= r.in.ConfirmedByReview &&
		workflow.GetVersion(ctx, changeRefundConfirmedByReview, workflow.DefaultVersion, 1) != workflow.DefaultVersion
	// Change "auto-approval-skips-review" (version 1): a claim the rules approve
	// automatically goes straight to approved, as nobody reviews it — one transition
	// record fewer per refund. Runs that recorded the in_review step before this change
	// (no marker in their history) keep it. Asked only for automatic approvals, so a
	// reviewed case's history carries no marker.
	if !confirmed && (!auto || workflow.GetVersion(ctx, changeAutoApprovalSkipsReview, workflow.DefaultVersion, 1) == workflow.DefaultVersion) {
		if err := r.j.record(ctx, RefundInReview, "system", ""); err != nil {
			return err
		}
	}
	switch {
	case confirmed:
		r.decision = &RefundDecision{Approve: true, Reviewer: "system", Reason: "confirmed by the desk review of declaration " +
			r.in.LinkedDeclaration + " (Tax Code art. 78 p.6, art. 88): no second review"}
	case auto:
		r.decision = &RefundDecision{Approve: true, Reviewer: "system", Reason: "automatic approval: claim within the confirmed overpayment and the automatic limit"}
	}
	// The expiry counts from the deadline; a term recomputed to another day (termMoves)
	// sets it again from the new one (only a run that took a recompute_term update waits
	// otherwise than before).
	overdue := 0
	expires := r.st.Deadline.Add(r.in.Policy.reviewExpiry())
	for r.decision == nil {
		moves := r.termMoves
		ok, err := workflow.AwaitWithTimeout(ctx, max(expires.Sub(workflow.Now(ctx)), 0), func() bool {
			return r.decision != nil || r.withdrawal != nil || r.docsWaiting() || r.termMoves != moves
		})
		if err != nil {
			return err
		}
		if r.termMoves != moves {
			expires = r.st.Deadline.Add(time.Duration(overdue+1) * r.in.Policy.reviewExpiry())
			if r.decision == nil && r.withdrawal == nil && !r.docsWaiting() {
				continue // wait again, to the new expiry
			}
		}
		if r.decision == nil && r.withdrawal != nil {
			return r.withdraw(ctx)
		}
		if err := r.storeDocuments(ctx); err != nil {
			return err
		}
		if !ok && r.decision == nil {
			if workflow.GetVersion(ctx, changeRefundInactionEscalates, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return r.expire(ctx)
			}
			if err := r.overdue(ctx, expires); err != nil {
				return err
			}
			overdue++
			expires = expires.Add(r.in.Policy.reviewExpiry())
		}
	}
	// Documents handed over before the decision are stored before it is acted on.
	if err := r.storeDocuments(ctx); err != nil {
		return err
	}
	r.decisionTaken = true
	r.st.DecidedBy = r.decision.Reviewer
	if !r.decision.Approve {
		return r.reject(ctx, r.decision.Reviewer, r.decision.Reason)
	}

	// 5. Approval reserves the amount in the refund ledger: all of it, what is left of
	// the period's refundable overpayment (capped), or nothing (refused).
	if r.folded {
		if err := r.approve(ctx); err != nil || r.final {
			return err
		}
		return r.pay(ctx)
	}
	reason, err := r.reserve(ctx)
	if err != nil || r.final {
		return err
	}
	if err := r.j.record(ctx, RefundApproved, r.decision.Reviewer, clip(join(r.decision.Reason, reason))); err != nil {
		return err
	}

	// 6. Payout, exactly once, to the verified account; a pending change of requisites
	// holds it first.
	return r.pay(ctx)
}

// reserve holds the approved amount in the refund ledger. A capped reservation lowers
// the approved amount (and says why); a refused one rejects the case.
func (r *refund) reserve(ctx workflow.Context) (capReason string, err error) {
	var a *activities.Activities
	var res contract.LedgerResult
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.LedgerOptions), a.Reserve, r.reservation(ctx)).Get(ctx, &res)
	return r.reserved(ctx, res, err)
}

func (r *refund) reservation(ctx workflow.Context) contract.LedgerInput {
	return contract.LedgerInput{Key: r.in.CaseID, CaseID: r.in.CaseID, INN: r.in.INN, Period: r.in.Period, Amount: r.st.Approved,
		ExpiresAt: workflow.Now(ctx).Add(r.in.Policy.reservationLease())}
}

// reserved acts on the ledger's answer: a refusal rejects the case, a cap lowers the
// approved amount (and says why).
func (r *refund) reserved(ctx workflow.Context, res contract.LedgerResult, err error) (capReason string, _ error) {
	if reason, ok := businessReason(err); ok {
		return "", r.reject(ctx, "system", "the refund ledger refused the reservation: "+reason)
	} else if err != nil {
		return "", err
	}
	r.st.Refundable = res.Refundable
	if res.State == contract.ReservationRefused || res.Amount <= 0 {
		r.st.Reservation, r.st.Approved = contract.ReservationRefused, 0
		return "", r.reject(ctx, "system", res.Reason)
	}
	r.st.Reservation = contract.ReservationReserved
	if res.Amount < r.st.Approved {
		r.st.Approved, r.st.Capped, r.st.CapReason = res.Amount, true, res.Reason
		return res.Reason, nil
	}
	return "", nil
}

// approve reserves the approved amount with the `approved` step in the reservation's
// transaction (change refund-folded-steps). The step says the whole amount is reserved,
// so the ledger writes it only then; a capped reservation is recorded by a step of its
// own that says why, a refused one rejects the case.
func (r *refund) approve(ctx workflow.Context) error {
	var a *activities.Activities
	var res contract.LedgerResult
	var resErr error
	_, err := r.j.fold(ctx, RefundApproved, r.decision.Reviewer, clip(r.decision.Reason), nil,
		func(ctx workflow.Context, step contract.RecordInput) (*contract.StepOutcome, error) {
			in := r.reservation(ctx)
			in.Step = &step
			// On a disconnected context, as every step: a cancellation of the case waits
			// for the reservation's answer (then releases it) instead of leaving unknown
			// whether the step and the reservation were written.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			resErr = workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, activities.LedgerOptions), a.Reserve, in).Get(dctx, &res)
			switch {
			case resErr == nil:
				return res.Step, nil
			case definite(resErr): // the function refused it: nothing was written
				return nil, nil
			}
			r.reserveUnknown = true // it may have reserved, and written the step
			return nil, resErr
		})
	if err != nil {
		return err
	}
	written := res.Step != nil && res.Step.Written
	capReason, err := r.reserved(ctx, res, resErr)
	if err != nil || r.final || written {
		return err
	}
	return r.j.record(ctx, RefundApproved, r.decision.Reviewer, clip(join(r.decision.Reason, capReason)))
}

// definite says a function refused a request with one of its own error types: it
// decided, and wrote nothing.
func definite(err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return false
	}
	switch appErr.Type() {
	case fnerr.TypeInvalidInput, fnerr.TypeRejected, fnerr.TypeNotFound, fnerr.TypeConflict, fnerr.TypeKeyReused:
		return true
	}
	return fnerr.IsBusiness(appErr.Type())
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
	r.takeDocSignals()
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
		r.docsStored++
		action := "document_accepted"
		if !res.Accepted {
			action = "document_refused"
			if err := r.j.notify(ctx, "taxpayer", "refund.document_refused", "doc_id", d.DocID, "reason", clip(res.Reason)); err != nil {
				return err
			}
		}
		// Waited for with the next status change, so it costs no step of its own.
		r.j.pending = append(r.j.pending, r.j.auditAsync(ctx, action, "system", clip(res.Reason)))
	}
	return nil
}

// errRequisitesOverdue: a requisites check held the payout past its escalation and the
// operator's time as well.
var errRequisitesOverdue = errors.New("bank requisites were not verified in time")

// awaitRequisites returns once the registry has verified requisites (or a withdrawal
// arrived). A pending change, or none on record, holds the payout: until the back office
// answers (the requisites update), for at most 5 working days, then escalated to a
// supervisor for at most the operator timeout; then errRequisitesOverdue.
func (r *refund) awaitRequisites(ctx workflow.Context) error {
	var a *activities.Activities
	read := workflow.WithActivityOptions(ctx, activities.ReadOptions)
	for {
		// A back-office message (taken here too when it arrived while an operator's task
		// was open) is journalled, and the registry read again.
		if q := r.requisites; q != nil {
			action := "requisites_verified"
			if !q.Verified {
				action = "requisites_rejected"
			}
			if err := r.j.audit(ctx, action, or(q.By, "back office"), clip(q.Reason)); err != nil {
				return err
			}
			r.requisites, r.ackRequisites, r.bankState = nil, true, ""
		}
		// The first check's answer stands unless a hold is being waited out; the payout
		// function refuses (RequisitesChanged) if a change began meanwhile.
		if r.st.BankHold || r.bankState == "" {
			var check contract.TaxpayerCheckResult
			if err := workflow.ExecuteActivity(read, a.CheckTaxpayer, contract.TaxpayerCheckInput{INN: r.in.INN}).Get(ctx, &check); err != nil {
				return err
			}
			r.bankState, r.payeeRef = check.BankState, check.PayeeRef
		}
		if r.bankState == contract.BankVerified {
			if r.st.BankHold {
				// A later hold (a change after this one) gets its own 5 working days.
				r.st.BankHold, r.st.RequisitesDue, r.holdEscalated = false, nil, false
				if err := r.j.audit(ctx, "payout_released", "system", "bank requisites verified"); err != nil {
					return err
				}
			}
			r.ack()
			return nil
		}
		if !r.st.BankHold {
			r.st.BankHold = true
			reason := "a change of bank requisites is being verified (up to 5 working days)"
			if r.bankState == contract.BankNone {
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
		r.ack()
		if r.st.RequisitesDue == nil {
			now, days := workflow.Now(ctx), r.in.Policy.RequisitesDays
			var due time.Time
			// The calendar is data that can change between deploys: record the deadline once.
			if err := workflow.SideEffect(ctx, func(workflow.Context) any { return calendar.Shared().AddWorkingDays(now, days) }).Get(&due); err != nil {
				return err
			}
			r.st.RequisitesDue = &due
		}
		until := *r.st.RequisitesDue
		if r.holdEscalated {
			until = until.Add(r.in.Policy.OperatorTimeout)
		}
		ok, err := workflow.AwaitWithTimeout(ctx, max(until.Sub(workflow.Now(ctx)), 0), func() bool { return r.requisites != nil || r.withdrawal != nil })
		if err != nil {
			return err
		}
		if r.withdrawal != nil && !r.payoutStarted {
			return nil
		}
		if ok { // a requisites message: taken at the top
			continue
		}
		if r.holdEscalated {
			return errRequisitesOverdue
		}
		r.holdEscalated, r.st.RequisitesEscalated = true, true
		if err := r.j.notify(ctx, "supervisor", "refund.requisites_overdue"); err != nil {
			return err
		}
		if err := r.j.refresh(ctx); err != nil {
			return err
		}
	}
}

// ack answers the requisites update whose message has now been acted on.
func (r *refund) ack() {
	if r.ackRequisites {
		r.ackRequisites = false
		r.requisitesAcked++
	}
}

// pay runs the payout: a key with fixed content, sent until it succeeds; a change of
// requisites cancels the key (the treasury fences it) and, once settled, makes a new
// one; any other failure goes to an operator. Every wait has a timer and the loop a bound.
func (r *refund) pay(ctx workflow.Context) error {
	var a *activities.Activities
	for ; ; r.rounds++ {
		if r.rounds >= maxPayoutRounds {
			return r.giveUp(ctx, fmt.Sprintf("the payout did not succeed in %d rounds", maxPayoutRounds))
		}
		if r.attempt == nil {
			err := r.awaitRequisites(ctx)
			if r.withdrawal != nil && !r.payoutStarted {
				return r.withdraw(ctx)
			}
			if errors.Is(err, errRequisitesOverdue) {
				if done, err := r.operator(ctx, errRequisitesOverdue.Error()); done || err != nil {
					return err
				}
				if r.withdrawal != nil && !r.payoutStarted {
					return r.withdraw(ctx)
				}
				// The operator has looked: the hold starts a new 5 working days.
				r.st.RequisitesDue, r.holdEscalated = nil, false
				continue
			}
			if err != nil {
				return err
			}
			if err := r.prepare(ctx); err != nil {
				return err
			}
			if r.withdrawal != nil { // taken while the key was made: it is cancelled
				return r.withdraw(ctx)
			}
		}
		r.payoutStarted = true
		if r.folded {
			payErr, err := r.payFolded(ctx)
			if err != nil || r.final {
				return err
			}
			// Nothing was paid; the key is fenced (the next round makes a new key), or, when
			// it names another transfer, kept for the operator, then cancelled.
			var appErr *temporal.ApplicationError
			switch {
			case isType(payErr, fnerr.TypeKeyReused):
				reason := "payout key " + r.attempt.Key + " already names a different transfer: " + businessMessage(payErr)
				if done, err := r.operator(ctx, reason); done || err != nil {
					return err
				}
				if transferred, err := r.cancelAttempt(ctx, false, ""); err != nil || transferred {
					return err
				}
				continue
			case errors.As(payErr, &appErr) && appErr.Type() == fnerr.TypeRequisitesChanged:
				if err := r.j.audit(ctx, "payout_held", "system", clip(appErr.Message())); err != nil {
					return err
				}
				r.bankState = ""
				continue
			case temporal.IsCanceledError(payErr):
				return payErr
			}
			reason := "the payout failed after every retry"
			if br, ok := businessReason(payErr); ok {
				reason = br
			}
			if done, err := r.operator(ctx, reason); done || err != nil {
				return err
			}
			continue
		}
		var res contract.PayoutResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.PayoutOptions), a.Payout, r.payoutInput()).Get(ctx, &res)
		if err == nil {
			return r.paid(ctx, res)
		}
		var appErr *temporal.ApplicationError
		errType := ""
		if errors.As(err, &appErr) {
			errType = appErr.Type()
		}
		if errType == fnerr.TypeRequisitesChanged {
			// The payee the key was made for is no longer the verified account: cancel the
			// key (money may have left under it already: then it is paid), hold, and make
			// a new key once the requisites are settled.
			if transferred, err := r.cancelAttempt(ctx, false, ""); err != nil || transferred {
				return err
			}
			if err := r.j.audit(ctx, "payout_held", "system", clip(appErr.Message())); err != nil {
				return err
			}
			r.bankState = ""
			continue
		}
		if temporal.IsCanceledError(err) {
			return err
		}
		reason := "the payout failed after every retry"
		if br, ok := businessReason(err); ok {
			reason = br
		}
		if errType == fnerr.TypeKeyReused {
			reason = "payout key " + r.attempt.Key + " already names a different transfer: " + reason
		}
		done, err := r.operator(ctx, reason)
		if done || err != nil {
			return err
		}
		// The operator has looked: cancel the key and pay under a new one. The cancellation
		// tells if money left under the old key after all. A key that reused another
		// transfer's always; since change refund-interest-per-attempt any failed key, so the
		// next one carries the interest to its own day (art. 78 p.10), not the first key's.
		if errType == fnerr.TypeKeyReused ||
			workflow.GetVersion(ctx, changeRefundInterestPerAttempt, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
			if transferred, err := r.cancelAttempt(ctx, false, ""); err != nil || transferred {
				return err
			}
		}
	}
}

// prepare makes the next payout key and fixes its content: the approved amount, the
// interest for each day of delay past the deadline up to today at the key rate of each
// day (art. 78 p.10, computed by an activity from the key-rate table and kept in the
// history: the table changes when the Bank of Russia decides), the verified payee.
func (r *refund) prepare(ctx workflow.Context) error {
	var a *activities.Activities
	var interest keyrate.Interest
	// In time (until 24:00 Moscow of the term's last day) nothing is owed: no step for it.
	// A term recomputed (recompute_term) while the interest was being counted is counted
	// again from the term the case now has: the key carries the interest of its own term.
	for range 3 {
		deadline := r.st.Deadline
		interest = keyrate.Interest{}
		if now := workflow.Now(ctx); now.After(deadline) {
			in := activities.RefundInterestInput{Amount: r.st.Approved, Deadline: deadline, PaidAt: now}
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.InterestOptions), a.RefundInterest, in).Get(ctx, &interest); err != nil {
				return err
			}
		}
		if r.st.Deadline.Equal(deadline) {
			break
		}
	}
	prevKey, prevDays, prevInterest := r.st.PayoutKey, r.st.DaysLate, r.st.Interest
	r.attempts++
	n := r.attempts
	r.attempt = &payoutAttempt{N: n, Key: fmt.Sprintf("%s/payout/%d", r.in.CaseID, n), Principal: r.st.Approved,
		Interest: interest.Kopecks, DaysLate: int64(interest.Days), Payee: r.payeeRef}
	r.st.PayoutKey, r.st.DaysLate, r.st.Interest, r.st.InterestUncheckedDays = r.attempt.Key, r.attempt.DaysLate, interest.Kopecks, interest.UncheckedDays
	// A changed interest is a journal entry, never a silent edit (change
	// refund-interest-per-attempt).
	if prevKey == "" || (prevDays == r.attempt.DaysLate && prevInterest == r.attempt.Interest) ||
		workflow.GetVersion(ctx, changeRefundInterestPerAttempt, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return r.j.audit(ctx, "interest_recomputed", "system", clip(fmt.Sprintf(
		"payout %s carries interest for %d days of delay, %s (payout %s carried %d days, %s): to the day of the transfer (Tax Code art. 78 p.10)",
		r.attempt.Key, r.attempt.DaysLate, domainKopecks(r.attempt.Interest), prevKey, prevDays, domainKopecks(prevInterest))))
}

func (r *refund) payoutInput() contract.PayoutInput {
	p := r.attempt
	return contract.PayoutInput{PayoutKey: p.Key, CaseID: r.in.CaseID, INN: r.in.INN, Amount: p.Principal + p.Interest,
		Principal: p.Principal, Interest: p.Interest, Payee: p.Payee, Reservation: r.in.CaseID}
}

// paid marks the case final the moment the payout's effect is known — before the step
// that records it, which can fail or be cancelled — so that nothing after it (cleanup of
// a cancellation, a withdrawal, an expiry) can record another end over money that left.
// The step is written on a disconnected context: a cancellation of the case does not
// stop it. Should it fail for good, the case fails as paid (final), for an operator.
func (r *refund) paid(ctx workflow.Context, res contract.PayoutResult) error {
	r.final = true
	r.st.Paid, r.st.TransferID, r.st.Reservation, r.st.PayoutError = res.Amount, res.TransferID, contract.ReservationPosted, ""
	if res.Principal > 0 {
		r.st.Interest = res.Interest
	}
	r.attempt = nil
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return r.j.record(dctx, RefundPaid, "system", fmt.Sprintf("transfer %s", res.TransferID))
}

// payFolded pays under the current key with the `paid` step in the posting transaction
// (change refund-folded-steps). Any failure of the pay is settled at once, still under
// the step mutex, by a cancel carrying the same step: it fences the key, so afterwards
// either the money left under it and the step is written with the posting (the case is
// paid) or neither will ever happen (the key is dropped and payErr says why the pay
// failed). Only a failed cancel leaves the step's outcome unknown (err).
func (r *refund) payFolded(ctx workflow.Context) (payErr, err error) {
	var a *activities.Activities
	p := r.attempt
	paid := func(res contract.PayoutResult) {
		r.final = true // the money left: nothing may record another end
		r.st.Paid, r.st.TransferID, r.st.Reservation, r.st.PayoutError = res.Amount, res.TransferID, contract.ReservationPosted, ""
		if res.Principal > 0 {
			r.st.Interest = res.Interest
		}
		r.attempt = nil
	}
	written, err := r.j.fold(ctx, RefundPaid, "system", "transfer "+contract.TransferPlaceholder,
		func(c *contract.CaseRecord) {
			c.Amounts["paid"], c.Amounts["interest"] = p.Principal+p.Interest, p.Interest
		},
		func(ctx workflow.Context, step contract.RecordInput) (*contract.StepOutcome, error) {
			in := r.payoutInput()
			in.Step = &step
			var res contract.PayoutResult
			payErr = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.PayoutOptions), a.Payout, in).Get(ctx, &res)
			if payErr == nil {
				paid(res)
				return res.Step, nil
			}
			if isType(payErr, fnerr.TypeKeyReused) {
				// The key names another transfer (or the reservation another amount): this
				// pay never moved money under it, in any attempt (a repeated pay of a
				// transfer it made is a duplicate), so the step is not written. The key
				// stays for an operator to look at, as before the change.
				return nil, nil
			}
			// Settled on a disconnected context: a cancelled case learns whether it paid.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			cancel := contract.PayoutInput{PayoutKey: p.Key, CaseID: r.in.CaseID, Reservation: r.in.CaseID, Step: &step}
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, activities.LedgerOptions), a.CancelPayout, cancel).Get(dctx, &res); err != nil {
				p.Step = &step // its seq stays taken; the key's next cancel carries it (cancelAttempt)
				return nil, err
			}
			if res.Transferred {
				payErr = nil
				paid(res)
				return res.Step, nil
			}
			r.attempt = nil
			return res.Step, nil
		})
	if err == nil && r.final && !written {
		// The money left and the function wrote no step (one deployed before it took
		// steps): the step is written on its own, as before the change.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		err = r.j.record(dctx, RefundPaid, "system", fmt.Sprintf("transfer %s", r.st.TransferID))
	}
	return payErr, err
}

// cancelAttempt fences the current payout key. transferred says the money had left under
// it; the case is then paid (and recorded so). With void the reservation is released.
func (r *refund) cancelAttempt(ctx workflow.Context, void bool, reason string) (transferred bool, err error) {
	var a *activities.Activities
	var res contract.PayoutResult
	step := r.attempt.Step
	in := contract.PayoutInput{PayoutKey: r.attempt.Key, CaseID: r.in.CaseID, Reservation: r.in.CaseID, Void: void, VoidReason: clipN(reason, 300), Step: step}
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.LedgerOptions), a.CancelPayout, in).Get(ctx, &res); err != nil {
		return false, err
	}
	if res.Transferred && step != nil && res.Step != nil && res.Step.Written {
		// The step an earlier pay or cancel carried is written with the posting: the case
		// is paid, recorded by that step (never a second one).
		r.final = true
		r.st.Paid, r.st.TransferID, r.st.Reservation, r.st.PayoutError = res.Amount, res.TransferID, contract.ReservationPosted, ""
		if res.Principal > 0 {
			r.st.Interest = res.Interest
		}
		r.attempt = nil
		r.j.adopt(ctx, RefundPaid, "system", or(res.Step.Reason, "transfer "+res.TransferID))
		return true, nil
	}
	if res.Transferred {
		return true, r.paid(ctx, res)
	}
	if step != nil && r.j.seq == step.Seq {
		r.j.seq-- // the key is fenced without a transfer: its step is never written
	}
	r.attempt = nil
	if res.Voided {
		r.st.Reservation = contract.ReservationVoided
	}
	return false, nil
}

// operator puts the case before an operator (payout_failed, a task with the reason) and
// waits, at most the operator timeout, for a retry. done means the case has ended: no
// operator came, the reservation is voided and the case gives up.
func (r *refund) operator(ctx workflow.Context, reason string) (done bool, err error) {
	r.st.PayoutError = clip(reason)
	if r.st.Status != RefundPayoutFailed {
		err = r.j.record(ctx, RefundPayoutFailed, "system", clip(reason))
	} else {
		err = r.j.audit(ctx, "payout_failed", "system", clip(reason))
	}
	if err != nil {
		return false, err
	}
	if r.rounds+1 >= maxPayoutRounds {
		return true, r.giveUp(ctx, fmt.Sprintf("the payout failed in %d rounds: %s", maxPayoutRounds, reason))
	}
	r.operatorOpen = true
	defer func() { r.operatorOpen = false }()
	if err := r.j.notify(ctx, "operator", "refund.payout_failed", "reason", clip(reason)); err != nil {
		return false, err
	}
	// Besides the retry, the task closes on what else the case can act on here: a
	// withdrawal before any payout started, or the back office's word on the requisites
	// that hold the payout.
	ok, err := workflow.AwaitWithTimeout(ctx, r.in.Policy.OperatorTimeout, func() bool {
		return r.retry != nil || (r.withdrawal != nil && !r.payoutStarted) || (r.st.BankHold && r.requisites != nil)
	})
	if err != nil {
		return false, err
	}
	r.operatorOpen = false
	q := r.retry
	switch {
	case q != nil:
		r.retry = nil // consumed only now that it has been read
		r.retriesTaken++
		return false, r.j.audit(ctx, "payout_retry", q.Operator, clip(q.Reason))
	case r.withdrawal != nil && !r.payoutStarted:
		return true, r.withdraw(ctx)
	case ok: // the requisites message: the payout loop takes it
		return false, nil
	}
	return true, r.giveUp(ctx, "payout failed and no operator retried it")
}

// giveUp ends a case whose payout cannot be made: the key is fenced, the reservation
// voided (the overpayment is available again), and the case fails for operations to see.
func (r *refund) giveUp(ctx workflow.Context, reason string) error {
	r.ending = true
	if err := r.release(ctx, reason); err != nil || r.final {
		return err
	}
	r.final = true
	return temporal.NewNonRetryableApplicationError(reason, "PayoutFailed", nil)
}

// release gives back whatever the case holds in the ledger: it cancels a payout key in
// flight (if money left under it after all, the case is paid) and voids the reservation.
func (r *refund) release(ctx workflow.Context, reason string) error {
	var a *activities.Activities
	switch {
	case r.attempt != nil:
		if _, err := r.cancelAttempt(ctx, true, reason); err != nil || r.final {
			return err
		}
	case r.st.Reservation == contract.ReservationReserved || r.reserveUnknown:
		var res contract.LedgerResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.LedgerOptions), a.VoidReservation,
			contract.LedgerInput{Key: r.in.CaseID, Reason: clipN(reason, 300)}).Get(ctx, &res)
		if err != nil {
			return err
		}
		r.reserveUnknown = false
		if res.State == contract.ReservationNone { // the reservation whose answer was lost was never made
			return nil
		}
		r.st.Reservation = contract.ReservationVoided
	default:
		return nil
	}
	return r.j.audit(ctx, "reservation_voided", "system", clip(reason))
}

// cleanup brings a case that stopped on an error to a final state, on a disconnected
// context: a cancelled case releases what it holds and records "cancelled"; any other
// failure releases the reservation, so that the overpayment is not held by a dead case.
func (r *refund) cleanup(ctx workflow.Context, cause error) error {
	r.ending = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	// A run of refund-folded-steps voids the case's reservation by its key whatever it
	// knows of it: a reset run that fails before it reserved (it decided a step otherwise,
	// KeyReused) must not leave held what the run it was reset from reserved. A case that
	// reserved nothing is answered "none" and writes no step. Versioned: a run whose
	// cleanup began before this change (a worker restarted in the middle of it) goes on
	// without the void it never scheduled.
	if r.folded && workflow.GetVersion(dctx, changeRefundVoidOnFailure, workflow.DefaultVersion, 1) == 1 {
		r.reserveUnknown = true
	}
	if !temporal.IsCanceledError(cause) && ctx.Err() == nil {
		if err := r.release(dctx, "the case failed"); err != nil {
			workflow.GetLogger(ctx).Error("refund: releasing the reservation of a failed case failed", "error", err)
		}
		return cause
	}
	if err := r.release(dctx, "the case was cancelled"); err != nil {
		return err
	}
	if r.final { // the money had left: the case is paid
		return nil
	}
	if err := r.j.record(dctx, RefundCancelled, "system", "the case was cancelled"); err != nil {
		return err
	}
	r.final = true
	return cause
}

func (r *refund) reject(ctx workflow.Context, actor, reason string) error {
	r.ending = true
	r.st.Reason = reason
	if err := r.release(ctx, "rejected"); err != nil || r.final {
		return err
	}
	err := r.j.record(ctx, RefundRejected, actor, clip(reason))
	r.final = true
	return err
}

func (r *refund) withdraw(ctx workflow.Context) error {
	r.ending = true
	r.st.Reason = r.withdrawal.Reason
	if err := r.release(ctx, "withdrawn by the taxpayer"); err != nil || r.final {
		return err
	}
	err := r.j.record(ctx, RefundWithdrawn, "taxpayer", clip(r.withdrawal.Reason))
	r.final = true
	return err
}

// expire ends a case no reviewer decided within the review expiry past the deadline
// (reminded before the deadline and escalated at it): the supervisor and the taxpayer
// are told, and the case expires; nothing was reserved yet.
func (r *refund) expire(ctx workflow.Context) error {
	r.ending = true
	reason := fmt.Sprintf("no decision within %d days after the deadline of %s", int(r.in.Policy.reviewExpiry()/(24*time.Hour)), r.st.DeadlineDay)
	if err := r.j.auditNotify(ctx, "review_expired", "system", reason, "supervisor", "refund.review_expired"); err != nil {
		return err
	}
	err := r.j.record(ctx, RefundExpired, "system", reason)
	r.final = true
	return err
}

// overdue escalates a case no reviewer decided within a review expiry past its term
// (change refund-inaction-escalates): the journal says so and the supervisor is told,
// and the case stays in review, due, with interest accruing for each day (Tax Code
// art. 78 p.10); the tax office's silence does not end the claim (art. 78, 79).
func (r *refund) overdue(ctx workflow.Context, at time.Time) error {
	r.st.Overdue++
	days := int(at.Sub(r.st.Deadline) / (24 * time.Hour))
	reason := fmt.Sprintf("no decision %d days after the term of %s: the refund stays due and interest accrues for each day "+
		"until it is paid (Tax Code art. 78 p.6, 10); escalated again (%d)", days, r.st.DeadlineDay, r.st.Overdue)
	return r.j.auditNotify(ctx, "review_overdue", "system", reason, "supervisor", "refund.review_overdue")
}

// businessMessage is the message of a function's typed error.
func businessMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
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
	return contract.CaseRecord{Deadline: r.st.Deadline, Escalated: r.st.DeadlineEscalated || r.st.RequisitesEscalated,
		Amounts: map[string]int64{"claimed": r.st.Claimed, "approved": r.st.Approved, "interest": r.st.Interest, "paid": r.st.Paid}}
}

// journalBytes is what one journal field holds (internal/audit refuses longer ones).
const journalBytes = 500

// clip shortens free text to what the journal holds, on a rune boundary, marked with "…".
func clip(s string) string { return clipN(s, journalBytes) }

func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	n -= len(more)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + more
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func domainKopecks(k int64) string { return domain.Kopecks(k).String() }
