package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/refunddue"
	"github.com/taxflow/taxflow/internal/term"
)

// Declaration (3-НДФЛ) review, domain.md §2, seed-rules A2.

// Names of the declaration workflow's handlers.
const (
	DeclarationQueryStatus   = "status"
	DeclarationUpdateCorrect = "correct" // the taxpayer's corrected declaration (art. 81)
	DeclarationUpdateAttach  = "attach"  // the taxpayer's attachment; answers an inspector's open request
	// DeclarationSignalAnswer is what the API sent before the attach update: still taken
	// (on the main coroutine) for cases started before it.
	DeclarationSignalAnswer  = "answer"
	DeclarationUpdateRequest = "request_documents" // inspector [000:142]
	DeclarationUpdateDecide  = "decide"            // inspector: decision with grounds [000:143]
	DeclarationUpdateAppeal  = "appeal"            // taxpayer, within the window [000:143]
	// DeclarationUpdateRecomputeTerm: operator (taxflow terms recompute): count the desk
	// review's term again over the calendar the worker has now (recompute.go); refused
	// once a decision is taken.
	DeclarationUpdateRecomputeTerm = "recompute_term"
)

// Decisions an inspector may take, and what each means for a refund the declaration claims
// (Tax Code art. 78, 88): confirmed pays the refund computed, partly_confirmed the amount
// the decision names, additional_tax and refused pay nothing.
const (
	DecisionConfirmed       = "confirmed"
	DecisionPartlyConfirmed = "partly_confirmed"
	DecisionAdditionalTax   = "additional_tax"
	DecisionRefused         = "refused"
)

// Kinds of an inspector's request and the working days the taxpayer has to answer.
const (
	RequestExplanations = "explanations" // art. 88 p.3: 5 working days
	RequestDocuments    = "documents"    // art. 93 p.3: 10 working days
)

// Declaration statuses.
const (
	DeclarationReceived      = "received"
	DeclarationAutoCheck     = "auto_check"
	DeclarationAccepted      = "accepted"
	DeclarationClarification = "clarification_required"
	DeclarationInReview      = "in_review"
	DeclarationDecided       = "decided"
	DeclarationAppealed      = "appealed"
)

// DeclarationLabels are the labels the cabinet shows [004:128, 002:78].
var DeclarationLabels = map[string]string{
	DeclarationReceived:      "Принято",
	DeclarationAutoCheck:     "Автоматическая проверка",
	DeclarationAccepted:      "Принята",
	DeclarationClarification: "Требуется уточнение",
	DeclarationInReview:      "В обработке",
	DeclarationDecided:       "Завершено",
	DeclarationAppealed:      "Подана апелляция",
}

// DeclarationPolicy is what a declaration is reviewed under. Every term is counted by
// Tax Code art. 6.1 over the production calendar (internal/term), in Moscow time.
type DeclarationPolicy struct {
	ReviewMonths    int           `json:"review_months"`            // desk-review term from the filing, 3 months (art. 88 p.2)
	ReminderBefore  time.Duration `json:"reminder_before"`          // inspectors reminded before the deadline
	AppealMonths    int           `json:"appeal_months"`            // from the decision's delivery, 1 month (art. 139.1 p.2)
	ExplanationDays int           `json:"explanation_working_days"` // to answer a request for explanations, 5 (art. 88 p.3)
	DocumentDays    int           `json:"document_working_days"`    // to answer a request for documents, 10 (art. 93 p.3)
	// CorrectionDays: to correct or explain the errors the automatic check found, 5 working
	// days (art. 88 p.3); then an inspector reviews the declaration as filed.
	CorrectionDays int `json:"correction_working_days"`
	// ActDays: after the review term an act of the violations found is due within 10
	// working days (art. 100 p.1). A review with no decision by then ends by itself: a
	// declaration that passed the checks stands as filed, one that did not confirms nothing.
	ActDays int `json:"act_working_days"`
	// AppealReviewMonths: an appeal is decided within 1 month (art. 140 p.6); undecided by
	// then, the decision stands and the taxpayer may go to court (art. 138 p.2).
	AppealReviewMonths int          `json:"appeal_review_months"`
	Refund             RefundPolicy `json:"refund"` // for the refund a decision confirms
}

// DefaultDeclarationPolicy is domain.md's defaults.
func DefaultDeclarationPolicy() DeclarationPolicy {
	return DeclarationPolicy{ReviewMonths: 3, ReminderBefore: 14 * 24 * time.Hour, AppealMonths: 1, ExplanationDays: 5, DocumentDays: 10,
		CorrectionDays: 5, ActDays: 10, AppealReviewMonths: 1, Refund: DefaultRefundPolicy()}
}

// withDefaults fills terms a policy leaves at zero (an input from before they existed).
func (p DeclarationPolicy) withDefaults() DeclarationPolicy {
	d := DefaultDeclarationPolicy()
	if p.ReviewMonths <= 0 {
		p.ReviewMonths = d.ReviewMonths
	}
	if p.AppealMonths <= 0 {
		p.AppealMonths = d.AppealMonths
	}
	if p.ExplanationDays <= 0 {
		p.ExplanationDays = d.ExplanationDays
	}
	if p.DocumentDays <= 0 {
		p.DocumentDays = d.DocumentDays
	}
	if p.CorrectionDays <= 0 {
		p.CorrectionDays = d.CorrectionDays
	}
	if p.ActDays <= 0 {
		p.ActDays = d.ActDays
	}
	if p.AppealReviewMonths <= 0 {
		p.AppealReviewMonths = d.AppealReviewMonths
	}
	return p
}

// DeclarationSubmission names a stored version of the declaration.
type DeclarationSubmission struct {
	Key    string `json:"key"`    // declarations/<case>/v<n>.<format>
	Format string `json:"format"` // json or xml
	// At: when the API accepted a correction (it stamps it); the new review's term runs from it.
	At time.Time `json:"at,omitzero"`
}

// DeclarationWorkflowInput starts a review.
type DeclarationWorkflowInput struct {
	CaseID        string                `json:"case_id"`
	INN           string                `json:"inn"`
	RequestID     string                `json:"request_id"`
	RequestSHA256 string                `json:"request_sha256,omitempty"`
	Submission    DeclarationSubmission `json:"submission"`
	Confirmation  string                `json:"confirmation"` // esignature or sms [002:322, 004:127]
	// ConfirmationReference names the signature or code check that confirmed it
	// (contract.ValidateConfirmation); empty for cases started before it was recorded.
	ConfirmationReference string            `json:"confirmation_reference,omitempty"`
	ClaimsRefund          bool              `json:"claims_refund"`
	Policy                DeclarationPolicy `json:"policy"`
	// Owner is who created the case (the API's create, a batch line): its first step
	// writes the case's owner row with it. Cases started before it existed carry none
	// (their owner was written before they started).
	Owner *contract.CaseOwner `json:"owner,omitempty"`
}

// DocumentRequest is an inspector's request for explanations or documents.
type DocumentRequest struct {
	What      string `json:"what"`
	Kind      string `json:"kind,omitempty"` // explanations or documents (the default)
	Inspector string `json:"inspector"`
	// At: when the request was made (the API stamps it); the answer's term runs from it.
	At time.Time `json:"at,omitempty"`
}

// DeclarationDecision is an inspector's decision.
type DeclarationDecision struct {
	Decision string `json:"decision"` // confirmed, partly_confirmed, additional_tax, refused
	// RefundKopecks: the refund a partly_confirmed decision confirms (more than 0, less than
	// the refund computed); the other decisions name none.
	RefundKopecks int64  `json:"refund_kopecks,omitempty"`
	Grounds       string `json:"grounds"`
	Inspector     string `json:"inspector"`
	// At: when the decision was taken (the API stamps it); the appeal window runs from it.
	At time.Time `json:"at,omitempty"`
}

// DeclarationAttachment names an attachment the API stored under
// declarations/<case>/attachments/.
type DeclarationAttachment struct {
	Key string `json:"key"`
}

// AttachmentResult is the attach update's answer.
type AttachmentResult struct {
	AnswersRequest bool   `json:"answers_request"` // it answered the inspector's open request
	Status         string `json:"status"`
	Label          string `json:"label"`
}

// Appeal is the taxpayer's appeal of a decision.
type Appeal struct {
	Reason string `json:"reason"`
	// At: when the appeal was filed (the API stamps it); the appeal review's term runs from it.
	At time.Time `json:"at,omitempty"`
}

// DeclarationStatus is what the status query returns (no personal data).
type DeclarationStatus struct {
	CaseID        string `json:"case_id"`
	RequestSHA256 string `json:"request_sha256,omitempty"`
	Status        string `json:"status"`
	Label         string `json:"label"`
	Confirmation  string `json:"confirmation"`
	// ConfirmationReference: the check that confirmed the declaration, as filed.
	ConfirmationReference string                        `json:"confirmation_reference,omitempty"`
	Period                int                           `json:"period,omitempty"`
	Versions              int                           `json:"versions"`
	Problems              []domain.FieldError           `json:"problems,omitempty"`
	Computed              *contract.DeclarationComputed `json:"computed,omitempty"`
	// Deadline is the end of the desk review's term (24:00 Moscow time of DeadlineDay):
	// ReviewMonths from the filing of the version under review (art. 88 p.2, 9.1; art. 6.1).
	Deadline    time.Time `json:"deadline"`
	DeadlineDay string    `json:"deadline_day,omitempty"` // YYYY-MM-DD, Moscow
	// DeadlineProvisional lists calendar years without a production-calendar decree that
	// the deadline was counted over: it may move when the decree is published.
	DeadlineProvisional []int  `json:"deadline_provisional_years,omitempty"`
	Reminded            bool   `json:"reminded"`
	Escalated           bool   `json:"escalated"`
	Requested           string `json:"requested,omitempty"`    // what the inspector asked for
	RequestKind         string `json:"request_kind,omitempty"` // explanations or documents
	// AnswerBy: the answer to the open request is due before this instant (art. 88 p.3,
	// art. 93 p.3); after it the review goes on without the answer.
	AnswerBy *time.Time `json:"answer_by,omitempty"`
	// CorrectBy: the errors the automatic check found are to be corrected or explained
	// before this instant (art. 88 p.3); then an inspector reviews the declaration as filed.
	CorrectBy *time.Time `json:"correct_by,omitempty"`
	// DecideBy: the review running ends by itself at this instant if no decision comes
	// (art. 100 p.1 for a desk review, art. 140 p.6 for an appeal).
	DecideBy    *time.Time `json:"decide_by,omitempty"`
	Attachments int        `json:"attachments"`
	// LateSignals counts answer signals (from before the attach update) that came when no
	// request was open: taken and counted, never left on the channel.
	LateSignals int        `json:"late_signals,omitempty"`
	Decision    string     `json:"decision,omitempty"`
	Grounds     string     `json:"grounds,omitempty"`
	DecidedBy   string     `json:"decided_by,omitempty"`
	DecisionKey string     `json:"decision_key,omitempty"`
	Decisions   int        `json:"decisions"`
	AppealBy    *time.Time `json:"appeal_by,omitempty"`
	// ConfirmedRefund is the refund the latest decision confirms; only it is ever paid.
	ConfirmedRefund int64        `json:"confirmed_refund_kopecks,omitempty"`
	RefundCase      string       `json:"refund_case,omitempty"`
	History         []Transition `json:"history"`
}

// DeclarationID builds a declaration's workflow id.
func DeclarationID(key string) string { return "declaration-" + key }

type declaration struct {
	in  DeclarationWorkflowInput
	st  DeclarationStatus
	j   *journal
	sub DeclarationSubmission
	// decidedAt: when the last decision was taken (its message's time; zero: none carried)
	decidedAt time.Time

	correction  *DeclarationSubmission
	correctedAt time.Time // when the correction was filed: the new review's term runs from it
	generation  int       // desk reviews started; a correction starts the next one
	answer      bool
	request     *DocumentRequest
	decision    *DeclarationDecision
	appeal      *Appeal
	excluded    string // the inspector an appeal must not go back to
	// appealClosed: the appeal window of the last decision has passed. An appeal that
	// comes between the decision and the window's computation is taken (the window
	// starts with the decision).
	appealClosed bool
	// assessed: the refund the case's decisions confirmed that was taken to the ledger
	// (change declaration-assessment); reduced: what the ledger wrote of it (less when
	// another declaration of the period had already brought it into the account); vouched:
	// the part of reduced the refunds started so far were told needs no second review.
	assessed, reduced, vouched int64
	// refunded: the refund the cases started so far claim (an appeal that confirms more
	// starts another for the difference, change declaration-refund-difference).
	refunded  int64
	stopWatch workflow.CancelFunc
	// For the recompute_term update (recompute.go): rootCtx is the workflow's context (the
	// deadline watch runs under it); actBy is the instant the desk review under way ends by
	// itself (art. 100 p.1), counted from its term; window and delivered are the open
	// appeal window and the day it runs from; termMoves counts the terms recomputed to
	// another day (a wait goes on to the new instant).
	rootCtx      workflow.Context
	actBy        time.Time
	window       *term.Result
	delivered    time.Time
	termMoves    int
	done         bool // the case has ended (or failed): no handler waits any longer
	answerOpen   bool // the main coroutine waits for the answer to a request
	checksFailed bool // the version under review failed the automatic checks
	answers      workflow.ReceiveChannel
}

// errCorrected ends the running review: a corrected declaration was filed (art. 88 p.9.1).
var errCorrected = errors.New("a corrected declaration ends the running review")

// errAppealLapsed ends the case: an appeal was not decided in its term (art. 140 p.6).
var errAppealLapsed = errors.New("the appeal was not decided in its term")

// Declaration reviews a 3-НДФЛ: automatic checks, clarification, desk review, decision
// document, appeal. A corrected declaration filed before the decision ends the running
// review and starts a new one; a refund the declaration claims starts only once a
// decision confirms it, for the amount confirmed.
func Declaration(ctx workflow.Context, in DeclarationWorkflowInput) (DeclarationStatus, error) {
	in.Policy = in.Policy.withDefaults()
	r := &declaration{in: in, sub: in.Submission}
	r.st = DeclarationStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Confirmation: in.Confirmation,
		ConfirmationReference: in.ConfirmationReference, Versions: 1}
	r.j = &journal{process: "declaration", caseID: in.CaseID, inn: in.INN, requestID: in.RequestID, labels: DeclarationLabels, owner: in.Owner,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	if err := r.handlers(ctx); err != nil {
		return r.st, err
	}
	// The term runs from the filing: the moment the API started the case.
	deadline, err := r.reviewTerm(ctx, workflow.GetInfo(ctx).WorkflowStartTime)
	if err == nil {
		err = r.j.record(ctx, DeclarationReceived, "taxpayer", "confirmed by "+in.Confirmation)
	}
	if err == nil {
		err = r.startReview(ctx, deadline)
	}
	if err == nil {
		err = r.run(ctx)
	}
	// Every exit (the end, a failure, a cancellation) releases the handlers that wait.
	r.done = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	r.takeAnswers()
	return r.st, err
}

// lateFor refuses a message once the case has ended.
func (r *declaration) lateFor(what string) error {
	if r.done || r.appealClosed {
		return errLate(what, r.st.Status, r.st.Label)
	}
	return nil
}

// takeAnswers takes the answer signals waiting; only the main coroutine calls it.
func (r *declaration) takeAnswers() {
	for r.answers.ReceiveAsync(nil) {
		if r.answerOpen && !r.done {
			r.answer = true
		} else {
			r.st.LateSignals++
		}
	}
}

// wait waits until cond holds or *by passes, taking answer signals as they come; ok is
// false when *by passed first. A term recomputed to another day (termMoves) moves *by:
// the wait goes on to the new instant.
func (r *declaration) wait(ctx workflow.Context, by *time.Time, cond func() bool) (ok bool, err error) {
	for {
		r.takeAnswers()
		if cond() {
			return true, nil
		}
		d := by.Sub(workflow.Now(ctx))
		if d <= 0 {
			return false, nil
		}
		moves := r.termMoves
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return cond() || r.answers.Len() > 0 || r.termMoves != moves }); err != nil {
			return false, err
		}
	}
}

func (r *declaration) project(workflow.Context) contract.CaseRecord {
	rec := contract.CaseRecord{Deadline: r.st.Deadline, Escalated: r.st.Escalated}
	if c := r.st.Computed; c != nil {
		rec.Amounts = map[string]int64{"tax": c.Tax, "payable": c.Payable, "refund": c.Refund, "confirmed_refund": r.st.ConfirmedRefund}
	}
	return rec
}

func (r *declaration) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, DeclarationQueryStatus, func() (DeclarationStatus, error) { return r.st, nil }); err != nil {
		return err
	}
	inReview := func(update, what string) error {
		if err := r.lateFor(what); err != nil {
			return err
		}
		if !declarationStates.takes(r.st.Status, update) || r.request != nil || r.decision != nil || r.correction != nil {
			return errLate(what+": the declaration is not in desk review", r.st.Status, r.st.Label)
		}
		return nil
	}
	// A handler waits for the main coroutine to act on its message; a correction that ends
	// the review, or an end (or failure, or cancellation) of the case, ends the wait too.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateRequest,
		func(ctx workflow.Context, q DocumentRequest) (DeclarationStatus, error) {
			gen := r.generation
			if q.Kind == "" {
				q.Kind = RequestDocuments
			}
			r.request = &q
			// On a disconnected context: a cancelled case still answers (done ends the wait).
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			err := workflow.Await(dctx, func() bool { return r.st.Status == DeclarationClarification || r.generation != gen || r.done })
			switch {
			case err != nil:
			case r.generation != gen:
				err = errLate("documents request: a corrected declaration was filed and a new review has started", r.st.Status, r.st.Label)
			case r.st.Status != DeclarationClarification:
				err = errLate("documents request: the case ended before it was taken", r.st.Status, r.st.Label)
			}
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(q DocumentRequest) error {
			if err := inReview(DeclarationUpdateRequest, "documents request"); err != nil {
				return err
			}
			if q.What == "" || q.Inspector == "" {
				return invalid("what: say which documents are needed; inspector: who asks")
			}
			if err := checkReason("what", q.What); err != nil {
				return err
			}
			if q.Kind != "" && q.Kind != RequestExplanations && q.Kind != RequestDocuments {
				return invalid("kind: must be explanations (5 working days, art. 88 p.3) or documents (10 working days, art. 93 p.3)")
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateDecide,
		func(ctx workflow.Context, d DeclarationDecision) (DeclarationStatus, error) {
			before := r.st.Decisions
			r.decision = &d
			taken := func() bool { return r.st.Decisions > before && r.st.Status == DeclarationDecided }
			// On a disconnected context: a cancelled case still answers (done ends the wait).
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			err := workflow.Await(dctx, func() bool { return taken() || r.done })
			if err == nil && !taken() {
				err = errLate("decision: the case ended before it was taken", r.st.Status, r.st.Label)
			}
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(d DeclarationDecision) error {
			if err := inReview(DeclarationUpdateDecide, "decision"); err != nil {
				return err
			}
			switch {
			case d.Decision != DecisionConfirmed && d.Decision != DecisionPartlyConfirmed && d.Decision != DecisionAdditionalTax && d.Decision != DecisionRefused:
				return invalid("decision: must be confirmed, partly_confirmed, additional_tax or refused")
			case d.Decision == DecisionPartlyConfirmed && (r.st.Computed == nil || d.RefundKopecks <= 0 || d.RefundKopecks >= r.st.Computed.Refund):
				return invalid("refund_kopecks: a partly confirmed decision names the refund it confirms, more than 0 and less than the refund claimed")
			case d.Decision != DecisionPartlyConfirmed && d.RefundKopecks != 0:
				return invalid("refund_kopecks: only a partly_confirmed decision names an amount")
			case d.Grounds == "":
				return invalid("grounds: a decision states its grounds [000:143]")
			case checkReason("grounds", d.Grounds) != nil:
				return checkReason("grounds", d.Grounds)
			case d.Inspector == "":
				return invalid("inspector: must name the inspector")
			case d.Inspector == r.excluded:
				return errLate("decision: an appeal is reviewed by a different inspector", r.st.Status, r.st.Label)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateAppeal,
		func(ctx workflow.Context, a Appeal) (DeclarationStatus, error) {
			decisions := r.st.Decisions
			r.appeal = &a
			// On a disconnected context: a cancelled case still answers (done ends the wait).
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			err := workflow.Await(dctx, func() bool { return r.st.Status == DeclarationInReview || r.st.Decisions > decisions || r.done })
			if err == nil && r.st.Status != DeclarationInReview {
				err = errLate("appeal: the case ended before it was taken", r.st.Status, r.st.Label)
			}
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(a Appeal) error {
			if err := r.lateFor("appeal"); err != nil {
				return err
			}
			if !declarationStates.takes(r.st.Status, DeclarationUpdateAppeal) || r.appeal != nil || (r.st.AppealBy != nil && !workflow.Now(ctx).Before(*r.st.AppealBy)) {
				return errLate("appeal: no decision open to appeal", r.st.Status, r.st.Label)
			}
			if a.Reason == "" {
				return invalid("reason: say why the decision is wrong")
			}
			return checkReason("reason", a.Reason)
		}}); err != nil {
		return err
	}
	// A corrected declaration (art. 81) is taken at any time before the first decision:
	// it ends the running review and starts a new one (art. 88 p.9.1). The update answers
	// once the workflow has taken it, with the new version and deadline.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateCorrect,
		func(ctx workflow.Context, sub DeclarationSubmission) (DeclarationStatus, error) {
			versions := r.st.Versions
			r.correction, r.correctedAt = &sub, causeTime(ctx, sub.At)
			// On a disconnected context: a cancelled case still answers (done ends the wait).
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			err := workflow.Await(dctx, func() bool { return r.st.Versions > versions || r.done })
			if err == nil && r.st.Versions == versions {
				err = errLate("correction: the case ended before it was taken", r.st.Status, r.st.Label)
			}
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(sub DeclarationSubmission) error {
			if err := r.lateFor("correction"); err != nil {
				return err
			}
			switch {
			case r.st.Decisions > 0 || r.decision != nil:
				return errLate("correction: a decision has been taken on this declaration: file a new declaration for the period", r.st.Status, r.st.Label)
			case r.correction != nil:
				return errLate("correction: another corrected declaration is being taken", r.st.Status, r.st.Label)
			case !declarationStates.takes(r.st.Status, DeclarationUpdateCorrect): // decided and appealed are refused above: a decision was taken
				return errLate("correction: the declaration is not yet received", DeclarationReceived, DeclarationLabels[DeclarationReceived])
			case sub.Format != "json" && sub.Format != "xml":
				return invalid("format: must be json or xml")
			case !strings.HasPrefix(sub.Key, "declarations/"+r.in.CaseID+"/") || len(sub.Key) <= len("declarations/"+r.in.CaseID+"/"):
				return invalid("key: must be declarations/<case_id>/…")
			}
			return nil
		}}); err != nil {
		return err
	}
	// An attachment is recorded; while an inspector's request is open it answers it (the
	// main coroutine returns the declaration to review). After the decision, with no appeal
	// running, it is refused: nothing would read it.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateAttach,
		func(ctx workflow.Context, a DeclarationAttachment) (AttachmentResult, error) {
			r.st.Attachments++
			res := AttachmentResult{AnswersRequest: r.answerOpen && !r.answer, Status: r.st.Status, Label: r.st.Label}
			if res.AnswersRequest {
				r.answer = true
			}
			return res, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(a DeclarationAttachment) error {
			if err := r.lateFor("attachment"); err != nil {
				return err
			}
			prefix := "declarations/" + r.in.CaseID + "/attachments/"
			if !strings.HasPrefix(a.Key, prefix) || len(a.Key) <= len(prefix) {
				return invalid("key: must be " + prefix + "…")
			}
			if !declarationStates.takes(r.st.Status, DeclarationUpdateAttach) && r.appeal == nil {
				return errLate("attachment: a decision has been taken; appeal it to have documents reviewed", r.st.Status, r.st.Label)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateRecomputeTerm, r.recomputeTerm,
		workflow.UpdateHandlerOptions{Validator: func() error {
			if !declarationStates.takes(r.st.Status, DeclarationUpdateRecomputeTerm) || r.runningTerm() == "" {
				return errLate("recompute term: no desk review or appeal window is running", r.st.Status, r.st.Label)
			}
			return nil
		}}); err != nil {
		return err
	}
	r.answers = workflow.GetSignalChannel(ctx, DeclarationSignalAnswer)
	return nil
}

// runningTerm is the term the recompute update can move: the desk review's (before the
// first decision: its last day and the act bound of art. 100 p.1), the appeal window
// (a decision open to appeal), or none.
func (r *declaration) runningTerm() string {
	switch {
	case r.done || r.appealClosed || r.st.Status == "":
	case r.st.Decisions == 0 && r.decision == nil && r.correction == nil && r.rootCtx != nil: // its watch has started
		return "review"
	case r.st.Status == DeclarationDecided && r.window != nil && r.st.AppealBy != nil && r.appeal == nil:
		return "appeal"
	}
	return ""
}

// recomputeTerm is the recompute_term update (recompute.go): the running term counted
// first, in a SideEffect, from what it ran from, over the calendar the worker has now;
// then, under the step mutex, a changed term is written (term_recomputed, with the
// projection carrying the new deadline), the deadline moves, the watch starts again on it
// and the wait under way goes on to the new instant.
func (r *declaration) recomputeTerm(ctx workflow.Context) (TermRecomputed, error) {
	kind, p := r.runningTerm(), r.in.Policy
	filed, delivered := workflow.GetInfo(ctx).WorkflowStartTime, r.delivered
	if r.generation > 0 { // a corrected declaration's review runs from its filing
		filed = r.correctedAt
	}
	var res struct{ Review, Act, Window term.Result }
	if err := workflow.SideEffect(ctx, func(workflow.Context) any {
		t := currentTerms()
		if kind == "review" {
			res.Review = t.Months(filed, p.ReviewMonths)
			res.Act = t.WorkingDays(res.Review.LastDay, p.ActDays)
		} else {
			res.Window = t.Months(delivered, p.AppealMonths)
		}
		return res
	}).Get(&res); err != nil {
		return TermRecomputed{}, err
	}
	if err := r.j.lock(ctx); err != nil {
		return TermRecomputed{}, err
	}
	defer r.j.mu.Unlock()
	if r.runningTerm() != kind { // the case moved on while the update waited for the step mutex
		return TermRecomputed{CaseID: r.in.CaseID}, errLate("recompute term: the term it counted no longer runs", r.st.Status, r.st.Label)
	}
	if kind == "appeal" {
		return r.recomputeWindow(ctx, res.Window)
	}
	out := TermRecomputed{CaseID: r.in.CaseID, Previous: r.st.DeadlineDay, DeadlineDay: r.st.DeadlineDay, Deadline: r.st.Deadline,
		Provisional: res.Review.Provisional, Decreed: decreedSince(r.st.DeadlineProvisional, res.Review.Provisional)}
	if res.Review.End.Equal(r.st.Deadline) && res.Act.End.Equal(r.actBy) {
		return out, nil
	}
	was, wasAct := r.st, r.actBy
	now := workflow.Now(ctx)
	r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional = res.Review.End, res.Review.LastDay.Format(time.DateOnly), res.Review.Provisional
	r.actBy = res.Act.End
	if r.st.DecideBy != nil { // the desk review under way ends by itself at the new bound
		*r.st.DecideBy = r.actBy
	}
	moved := !r.st.Deadline.Equal(was.Deadline)
	if moved && r.st.Deadline.After(now) {
		r.st.Escalated = false
		if r.st.Deadline.Add(-p.ReminderBefore).After(now) {
			r.st.Reminded = false
		}
	}
	reason := recomputedReason("the desk review's term", was.DeadlineDay, res.Review, out.Decreed, "Tax Code art. 88 p.2, art. 6.1") +
		"; without a decision it ends by " + res.Act.LastDay.Format(time.DateOnly) + " (art. 100 p.1)"
	r.j.queue(ctx, "term_recomputed", r.j.current(), r.j.current(), "system", clip(reason))
	if err := r.j.writeLocked(ctx, r.j.current()); err != nil {
		r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional, r.st.Escalated, r.st.Reminded = was.Deadline, was.DeadlineDay, was.DeadlineProvisional, was.Escalated, was.Reminded
		r.actBy = wasAct
		if r.st.DecideBy != nil {
			*r.st.DecideBy = wasAct
		}
		return out, fmt.Errorf("record the recomputed term: %w", err)
	}
	// The old watch stops before the mutex is released: its timers never fire.
	if moved && (r.st.Deadline.After(now) || !r.st.Escalated) {
		r.watchReview()
	}
	r.termMoves++
	out.Changed, out.DeadlineDay, out.Deadline = true, r.st.DeadlineDay, r.st.Deadline
	return out, nil
}

// recomputeWindow moves the open appeal window (art. 139.1 p.2) to its recomputed end;
// the step mutex is held.
func (r *declaration) recomputeWindow(ctx workflow.Context, w term.Result) (TermRecomputed, error) {
	old := *r.window
	out := TermRecomputed{CaseID: r.in.CaseID, Previous: old.LastDay.Format(time.DateOnly), DeadlineDay: old.LastDay.Format(time.DateOnly),
		Deadline: old.End, Provisional: w.Provisional, Decreed: decreedSince(old.Provisional, w.Provisional)}
	if w.End.Equal(old.End) {
		return out, nil
	}
	*r.window, *r.st.AppealBy = w, w.End
	r.j.queue(ctx, "term_recomputed", r.j.current(), r.j.current(), "system",
		clip(recomputedReason("the appeal window", out.Previous, w, out.Decreed, "Tax Code art. 139.1 p.2, art. 6.1")))
	if err := r.j.writeLocked(ctx, r.j.current()); err != nil {
		*r.window, *r.st.AppealBy = old, old.End
		return out, fmt.Errorf("record the recomputed appeal window: %w", err)
	}
	r.termMoves++
	out.Changed, out.DeadlineDay, out.Deadline = true, w.LastDay.Format(time.DateOnly), w.End
	return out, nil
}

// termOf computes a statutory term once and keeps it in the history: the production
// calendar is data that may change between deploys, and a running case keeps its term.
func termOf(ctx workflow.Context, f func(term.Terms) term.Result) (term.Result, error) {
	var res term.Result
	err := workflow.SideEffect(ctx, func(workflow.Context) any { return f(currentTerms()) }).Get(&res)
	return res, err
}

// reviewTerm is the desk review's term from a filing: ReviewMonths by art. 6.1 p.5, 7,
// ending at 24:00 Moscow time of the last day (art. 88 p.2).
func (r *declaration) reviewTerm(ctx workflow.Context, filed time.Time) (term.Result, error) {
	res, err := termOf(ctx, func(t term.Terms) term.Result { return t.Months(filed, r.in.Policy.ReviewMonths) })
	if err != nil {
		return res, err
	}
	r.st.Deadline, r.st.DeadlineDay, r.st.DeadlineProvisional = res.End, res.LastDay.Format(time.DateOnly), res.Provisional
	r.st.Reminded, r.st.Escalated = false, false
	return res, nil
}

// startReview notes a provisional deadline in the journal and watches the deadline:
// reminders before it, escalation after it. A new review (after a correction) stops the
// previous review's watch.
func (r *declaration) startReview(ctx workflow.Context, deadline term.Result) error {
	if deadline.IsProvisional() {
		if err := r.j.audit(ctx, "deadline_provisional", "system", "desk review ends "+deadline.String()+
			": the production calendar of that year is not yet decreed, so the last day may move"); err != nil {
			return err
		}
	}
	r.rootCtx = ctx
	r.watchReview()
	return nil
}

// watchReview starts the watch of the desk review's deadline under a context of its own
// (no command: WithCancel is local to the workflow) and stops the one running, whose
// timers then never fire.
func (r *declaration) watchReview() {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	wctx, cancel := workflow.WithCancel(r.rootCtx)
	r.stopWatch = cancel
	r.j.watch(wctx, deadlineWatch{deadline: r.st.Deadline, reminderBefore: r.in.Policy.ReminderBefore,
		settled: func() bool { return r.st.Decisions > 0 },
		remind:  "declaration.deadline_reminder", escalate: "declaration.deadline_passed", reason: "desk-review term passed",
		reminded: &r.st.Reminded, escalated: &r.st.Escalated})
}

// takeCorrection makes the corrected declaration the version under review, with a new
// term from its filing (art. 88 p.9.1, art. 81).
func (r *declaration) takeCorrection(ctx workflow.Context) error {
	r.sub, r.correction = *r.correction, nil
	r.generation++
	r.request, r.decision, r.answer = nil, nil, false
	r.st.Requested, r.st.RequestKind, r.st.AnswerBy, r.st.Computed, r.st.Problems = "", "", nil, nil, nil
	deadline, err := r.reviewTerm(ctx, r.correctedAt)
	if err != nil {
		return err
	}
	version := r.st.Versions + 1
	if err := r.j.record(ctx, DeclarationAutoCheck, "taxpayer", fmt.Sprintf(
		"corrected declaration, version %d: the running review ends and a new one starts (Tax Code art. 81, art. 88 p.9.1); desk review until %s",
		version, r.st.DeadlineDay)); err != nil {
		return err
	}
	// the update that filed the correction answers now, with the new review's status
	r.st.Versions = version
	return r.startReview(ctx, deadline)
}

func (r *declaration) run(ctx workflow.Context) error {
	// Automatic checks and the desk review of the latest version, until a decision.
	checked := false // the version under review has its auto_check recorded
	for {
		err := r.examine(ctx, checked)
		if !errors.Is(err, errCorrected) {
			if err != nil {
				return err
			}
			break
		}
		if err := r.takeCorrection(ctx); err != nil {
			return err
		}
		checked = true
	}
	for {
		if err := r.refundDecided(ctx); err != nil {
			return err
		}
		// The decision may be appealed within a month of its delivery (art. 139.1 p.2,
		// art. 101 p.9); then another inspector reviews. Counted from the decision's own
		// time, not from the task that records it: a reset run writes the same window.
		delivered := deliveredOn(causeTime(ctx, r.decidedAt))
		window, err := termOf(ctx, func(t term.Terms) term.Result { return t.Months(delivered, r.in.Policy.AppealMonths) })
		if err != nil {
			return err
		}
		by := window.End
		r.st.AppealBy, r.window, r.delivered = &by, &window, delivered
		if window.IsProvisional() {
			if err := r.j.audit(ctx, "appeal_window_provisional", "system", "appeal until "+window.String()); err != nil {
				return err
			}
		}
		ok, err := r.wait(ctx, &by, func() bool { return r.appeal != nil })
		r.window = nil
		if err != nil || !ok {
			r.st.AppealBy, r.appealClosed = nil, true // from here every message is late
			if err != nil {
				return err
			}
			return r.j.audit(ctx, "appeal_window_closed", "system", fmt.Sprintf("no appeal by %s: decision %d is final", window.String(), r.st.Decisions))
		}
		r.excluded, r.st.AppealBy = r.st.DecidedBy, nil
		appealReason, appealAt := r.appeal.Reason, r.appeal.At
		if err := r.j.record(ctx, DeclarationAppealed, "taxpayer", appealReason); err != nil {
			return err
		}
		r.appeal = nil // taken once recorded: the next decision may be appealed again
		appealed := causeTime(ctx, appealAt)
		bound, err := termOf(ctx, func(t term.Terms) term.Result { return t.Months(appealed, r.in.Policy.AppealReviewMonths) })
		if err != nil {
			return err
		}
		err = r.review(ctx, bound.End, true, "")
		if errors.Is(err, errAppealLapsed) {
			r.appealClosed = true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// examine runs the automatic checks of the version under review, repeated for each
// correction until one passes, then the desk review up to a decision. It returns
// errCorrected when a corrected declaration ends the review.
func (r *declaration) examine(ctx workflow.Context, checked bool) error {
	var a *activities.Activities
	if !checked {
		if err := r.j.record(ctx, DeclarationAutoCheck, "system", ""); err != nil {
			return err
		}
	}
	var res contract.DeclarationCheckResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckDeclaration,
		contract.DeclarationCheckInput{CaseID: r.in.CaseID, Key: r.sub.Key, Format: r.sub.Format, At: workflow.Now(ctx)}).Get(ctx, &res); err != nil {
		return err
	}
	if r.correction != nil { // a newer version came while this one was checked
		return errCorrected
	}
	r.st.Problems, r.st.Period = res.Problems, res.Period
	c := res.Computed
	bound, err := r.actBound(ctx)
	if err != nil {
		return err
	}
	r.actBy = bound
	if !res.OK {
		// The taxpayer corrects or explains within 5 working days (art. 88 p.3); without
		// either, an inspector reviews the declaration as filed.
		asked := workflow.Now(ctx)
		due, err := termOf(ctx, func(t term.Terms) term.Result { return t.WorkingDays(asked, r.in.Policy.CorrectionDays) })
		if err != nil {
			return err
		}
		by := due.End
		r.st.CorrectBy = &by
		if err := r.j.record(ctx, DeclarationClarification, "system", fmt.Sprintf("%s (correct or explain within %d working days, Tax Code art. 88 p.3: until %s)",
			problemsText(res.Problems), r.in.Policy.CorrectionDays, due.String())); err != nil {
			return err
		}
		corrected, err := r.wait(ctx, &by, func() bool { return r.correction != nil })
		r.st.CorrectBy = nil
		if err != nil {
			return err
		}
		if corrected {
			return errCorrected
		}
		r.st.Computed, r.checksFailed = &c, true
		return r.review(ctx, bound, false, fmt.Sprintf("no correction or explanation by %s (Tax Code art. 88 p.3): an inspector reviews the declaration as filed",
			due.LastDay.Format(time.DateOnly)))
	}
	r.st.Computed, r.checksFailed = &c, false
	if err := r.j.record(ctx, DeclarationAccepted, "system", ""); err != nil {
		return err
	}
	return r.review(ctx, bound, false, "")
}

// actBound is when a desk review with no decision ends by itself: ActDays working days
// after the review term (art. 100 p.1). The term counts from the review's last day (the
// working days are those after it, art. 6.1 p.2, 6); Deadline is 24:00 of that day, i.e.
// 00:00 of the next one, so counting from Deadline would end one working day late.
func (r *declaration) actBound(ctx workflow.Context) (time.Time, error) {
	last := r.st.Deadline.AddDate(0, 0, -1) // 00:00 Moscow of the last day (a fixed zone: no DST)
	res, err := termOf(ctx, func(t term.Terms) term.Result { return t.WorkingDays(last, r.in.Policy.ActDays) })
	return res.End, err
}

// deliveredOn is the day a decision taken at decided is delivered (art. 101 p.9). The
// reading we implement: the decision document is placed in the taxpayer's personal
// cabinet as the decision is recorded (GenerateDecision, then the notification), and a
// document placed in the cabinet counts as received on the day after its placement
// (art. 31 p.4, art. 11.2 p.2). Not the six working days of a registered letter: taxflow
// sends no letters. The appeal month (art. 139.1 p.2) runs from this day.
func deliveredOn(decided time.Time) time.Time {
	return term.Today(decided).AddDate(0, 0, 1)
}

// refundDecided starts the refund the decision confirms, once per declaration: a refund
// is paid only for an overpayment the desk review confirmed (Tax Code art. 78, 88).
func (r *declaration) refundDecided(ctx workflow.Context) error {
	if r.st.ConfirmedRefund <= 0 {
		return nil
	}
	if r.st.RefundCase == "" {
		return r.startRefund(ctx, r.st.ConfirmedRefund, "")
	}
	// An appeal's decision that confirms more than the refunds started claim: the
	// difference is a refund of its own, so the payout equals what was confirmed (Tax
	// Code art. 78, 140). Runs from before change declaration-refund-difference (no
	// marker) started one refund only.
	more := r.st.ConfirmedRefund - r.refunded
	if more <= 0 || workflow.GetVersion(ctx, changeDeclarationRefundDifference, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return r.startRefund(ctx, more, fmt.Sprintf("-%d", r.st.Decisions))
}

// changeDeclarationRefundDifference is the workflow.GetVersion change id of the refund an
// appeal's decision starts for what it confirms beyond the refunds already started.
// Asked only when there is such a difference.
const changeDeclarationRefundDifference = "declaration-refund-difference"

// confirmedRefund is the refund a decision confirms.
func (r *declaration) confirmedRefund(d DeclarationDecision) int64 {
	switch d.Decision {
	case DecisionConfirmed:
		return r.st.Computed.Refund
	case DecisionPartlyConfirmed:
		return min(d.RefundKopecks, r.st.Computed.Refund)
	}
	return 0
}

// startRefund starts the refund a decision confirmed, for the amount confirmed.
func (r *declaration) startRefund(ctx workflow.Context, amount int64, suffix string) error {
	if amount <= 0 {
		return nil
	}
	id := "refund-" + r.in.CaseID[len("declaration-"):] + suffix
	in := RefundWorkflowInput{CaseID: id, INN: r.in.INN, Period: r.st.Period, Amount: amount,
		Reason: "refund claimed in declaration " + r.in.CaseID, RequestID: r.in.RequestID, LinkedDeclaration: r.in.CaseID,
		Policy: r.in.Policy.Refund, DeskReview: &refunddue.DeskReview{Decided: causeTime(ctx, r.decidedAt), Due: r.st.Deadline}} // its term runs from the review's end (art. 78 p.6, art. 88)
	// The desk review confirmed it and the ledger holds it: no second review — for what the
	// ledger wrote and no earlier refund of the case was told already.
	if v := min(amount, r.reduced-r.vouched); r.assessed > 0 && v > 0 {
		in.ConfirmedByReview = v
	}
	// The refund carries the taxpayer's subject hash too, so the back office's requisites
	// verdict finds it like a refund claimed through the API.
	opts := workflow.ChildWorkflowOptions{WorkflowID: id, ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: childAttributes(ctx, SearchProcess.ValueSet("refund"), SearchStatus.ValueSet(RefundReceived))}
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Refund, in)
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return err
	}
	if r.st.RefundCase == "" {
		r.st.RefundCase = id
	}
	r.refunded += amount
	r.vouched += in.ConfirmedByReview
	return r.j.audit(ctx, "refund_started", "system", id)
}

// review is one desk review (or the review of an appeal): requests for explanations or
// documents, each with its term to answer, then a decision with a document. It returns
// errCorrected when a corrected declaration ends it. A review with no decision by bound
// ends by itself: a desk review with the declaration as filed (no violation established
// in the term, art. 88 p.2, art. 100 p.1), an appeal with the decision standing
// (errAppealLapsed, art. 140 p.6).
func (r *declaration) review(ctx workflow.Context, bound time.Time, appeal bool, reason string) error {
	var a *activities.Activities
	actor := "system"
	r.request, r.decision = nil, nil
	if !appeal && !r.actBy.IsZero() { // the act bound, as a recomputed term may have moved it
		bound = r.actBy
	}
	r.st.DecideBy = &bound
	if err := r.j.record(ctx, DeclarationInReview, actor, reason); err != nil {
		return err
	}
	for {
		ok, err := r.wait(ctx, &bound, func() bool { return r.request != nil || r.decision != nil || r.correction != nil })
		if err != nil {
			return err
		}
		if r.correction != nil {
			return errCorrected
		}
		if !ok {
			if appeal {
				r.st.DecideBy = nil
				r.decision = &DeclarationDecision{Decision: r.st.Decision, Inspector: "system"} // no other decision is taken
				if err := r.j.record(ctx, DeclarationDecided, "system", fmt.Sprintf(
					"the appeal was not decided by %s (Tax Code art. 140 p.6): decision %d stands; the taxpayer may go to court (art. 138 p.2)",
					bound.In(term.Moscow).Format(time.DateOnly), r.st.Decisions)); err != nil {
					return err
				}
				return errAppealLapsed
			}
			r.decision = r.lapsedDecision(bound)
			break
		}
		if r.decision != nil {
			break
		}
		q := *r.request
		if err := r.awaitAnswer(ctx, q); err != nil {
			return err
		}
		r.request = nil // taken: the next request may come
	}
	r.st.DecideBy = nil
	d := *r.decision
	r.decidedAt = d.At
	confirmed := r.confirmedRefund(d)
	var doc contract.DecisionPDFResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.DocumentOptions), a.GenerateDecision,
		contract.DecisionPDFInput{CaseID: r.in.CaseID, INN: r.in.INN, Number: r.st.Decisions + 1, Decision: d.Decision, Grounds: d.Grounds,
			Inspector: d.Inspector, Period: r.st.Period, Computed: *r.st.Computed, ConfirmedRefund: confirmed, At: workflow.Now(ctx)}).Get(ctx, &doc)
	if err != nil {
		return err
	}
	r.st.Decisions++
	r.st.Decision, r.st.Grounds, r.st.DecidedBy, r.st.DecisionKey = d.Decision, d.Grounds, d.Inspector, doc.Key
	r.st.ConfirmedRefund = confirmed
	reason = d.Decision + ": " + d.Grounds
	if r.st.Computed.Refund > 0 {
		reason += fmt.Sprintf("; refund confirmed: %d kopecks", r.st.ConfirmedRefund)
	}
	return r.recordDecision(ctx, d, reason)
}

// changeDeclarationAssessment is the workflow.GetVersion change id of the decision that
// writes the assessed tax to the taxpayer's ledger: a decision that confirms a refund
// (Tax Code art. 78 p.6, art. 88) reduces the tax charged for the period (the employer's
// figures) by the refund it confirms, in the transaction of the step that records it
// (functions/ledger Assess), and the refund it starts is approved without a second
// review (RefundWorkflowInput.ConfirmedByReview). Asked only at a decision that has a
// reduction to write, so other histories carry no marker; runs decided before it (no
// marker) record the decision alone and start the refund as before.
const changeDeclarationAssessment = "declaration-assessment"

// recordDecision records the decision taken. One that confirms more refund than the
// earlier decisions of the case wrote to the ledger writes the difference as a reduction
// of the tax charged (contract.LedgerReduction) with the `decided` step, in one
// transaction: the record and the taxpayer's account never disagree, and the refund the
// decision starts finds the overpayment it pays. The entry is dated by the filing of the
// version decided: the overpayment a 3-НДФЛ makes arises when it is filed (art. 78 p.7,
// see functions/overpayment).
func (r *declaration) recordDecision(ctx workflow.Context, d DeclarationDecision, reason string) error {
	amount := r.st.ConfirmedRefund - r.assessed
	if amount <= 0 || workflow.GetVersion(ctx, changeDeclarationAssessment, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.j.record(ctx, DeclarationDecided, d.Inspector, reason)
	}
	filed := workflow.GetInfo(ctx).WorkflowStartTime
	if r.generation > 0 { // a corrected declaration is the version decided: filed when the API took it
		filed = r.correctedAt
	}
	entry := contract.LedgerEntry{INN: r.in.INN, Kind: contract.LedgerReduction, Tax: "ndfl", Period: r.st.Period, Amount: amount,
		Date: filed, CaseID: r.in.CaseID,
		EntryID: fmt.Sprintf("%d#ndfl#decl-%s#%d", r.st.Period, strings.TrimPrefix(r.in.CaseID, "declaration-"), r.st.Decisions)}
	var a *activities.Activities
	var res contract.LedgerResult
	var resErr error
	written, err := r.j.fold(ctx, DeclarationDecided, d.Inspector, reason, nil,
		func(ctx workflow.Context, step contract.RecordInput) (*contract.StepOutcome, error) {
			// On a disconnected context, as every step: a cancellation waits for the answer.
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			resErr = workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, activities.LedgerOptions), a.Assess,
				contract.LedgerInput{CaseID: r.in.CaseID, Entry: &entry, Step: &step}).Get(dctx, &res)
			switch {
			case resErr == nil:
				return res.Step, nil
			case definite(resErr): // the function refused it: nothing was written
				return nil, nil
			}
			return nil, resErr
		})
	if err != nil {
		return err
	}
	if written {
		r.assessed += amount
		r.reduced += res.Amount
		return nil
	}
	// The ledger refused the entry (a defect: its content is ours): the decision stands
	// and is recorded, and the journal says the account was not changed, for an operator.
	why := "the ledger refused it"
	if resErr != nil {
		why = resErr.Error()
	}
	return r.j.record(ctx, DeclarationDecided, d.Inspector, reason, note{action: "assessment_refused", actor: "system",
		reason: clip("the reduction of the tax charged by " + domainKopecks(amount) + " was not written to the ledger: " + why)})
}

// lapsedDecision is how a desk review with no decision in its term ends: no violation
// was established, so a declaration that passed the automatic checks stands as filed; one
// whose errors were neither corrected nor reviewed confirms no refund (art. 78, 88).
func (r *declaration) lapsedDecision(bound time.Time) *DeclarationDecision {
	day := bound.In(term.Moscow).Format(time.DateOnly)
	if r.checksFailed {
		return &DeclarationDecision{Decision: DecisionRefused, Inspector: "system",
			Grounds: "the errors the automatic check found were neither corrected nor reviewed by " + day + " (Tax Code art. 88 p.3, art. 100 p.1): no refund is confirmed"}
	}
	return &DeclarationDecision{Decision: DecisionConfirmed, Inspector: "system",
		Grounds: "no violation was established in the desk-review term and no act was drawn by " + day + " (Tax Code art. 88 p.2, art. 100 p.1): the declaration stands as filed"}
}

// awaitAnswer waits for the taxpayer's answer to a request within its term: explanations
// 5 working days (art. 88 p.3), documents 10 (art. 93 p.3), from the day after the request.
// When the term passes unanswered, the review goes on without the answer.
func (r *declaration) awaitAnswer(ctx workflow.Context, q DocumentRequest) error {
	days, article := r.in.Policy.DocumentDays, "Tax Code art. 93 p.3"
	if q.Kind == RequestExplanations {
		days, article = r.in.Policy.ExplanationDays, "Tax Code art. 88 p.3"
	}
	asked := causeTime(ctx, q.At)
	due, err := termOf(ctx, func(t term.Terms) term.Result { return t.WorkingDays(asked, days) })
	if err != nil {
		return err
	}
	by := due.End
	r.st.Requested, r.st.RequestKind, r.st.AnswerBy = q.What, q.Kind, &by
	if err := r.j.record(ctx, DeclarationClarification, q.Inspector, fmt.Sprintf("%s (%s within %d working days, %s: until %s)",
		q.What, q.Kind, days, article, due.String())); err != nil {
		return err
	}
	r.answer, r.answerOpen = false, true
	answered, err := r.wait(ctx, &by, func() bool { return r.answer || r.correction != nil })
	r.answerOpen = false // no yield since the wait: an attachment from now on answers nothing
	if err != nil {
		return err
	}
	answered = answered && r.answer
	if r.correction != nil {
		return errCorrected
	}
	r.st.Requested, r.st.RequestKind, r.st.AnswerBy = "", "", nil
	if !answered {
		return r.j.record(ctx, DeclarationInReview, "system", fmt.Sprintf(
			"no answer to the %s request by %s (%s): the review goes on without it", q.Kind, due.LastDay.Format(time.DateOnly), article))
	}
	// the taxpayer's answer returns the declaration to review [002:81]
	return r.j.record(ctx, DeclarationInReview, "taxpayer", "documents provided")
}

func problemsText(ps []domain.FieldError) string {
	out := ""
	for i, p := range ps {
		if i > 0 {
			out += "; "
		}
		out += p.Field + ": " + p.Reason
	}
	return out
}
