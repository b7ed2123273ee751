package workflows

import (
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Declaration (3-НДФЛ) review, domain.md §2, seed-rules A2.

// Names of the declaration workflow's handlers.
const (
	DeclarationQueryStatus      = "status"
	DeclarationSignalCorrection = "correction"        // the taxpayer's corrected declaration
	DeclarationSignalAnswer     = "answer"            // the taxpayer's documents for an inspector's request
	DeclarationUpdateRequest    = "request_documents" // inspector [000:142]
	DeclarationUpdateDecide     = "decide"            // inspector: decision with grounds [000:143]
	DeclarationUpdateAppeal     = "appeal"            // taxpayer, within the window [000:143]
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

// DeclarationPolicy is what a declaration is reviewed under.
type DeclarationPolicy struct {
	ReviewMonths   int           `json:"review_months"`   // desk-review term, 3 months
	ReminderBefore time.Duration `json:"reminder_before"` // inspectors reminded before the deadline
	AppealWindow   time.Duration `json:"appeal_window"`   // how long a decision may be appealed
	Refund         RefundPolicy  `json:"refund"`          // for the refund an accepted declaration starts
}

// DefaultDeclarationPolicy is domain.md's defaults.
func DefaultDeclarationPolicy() DeclarationPolicy {
	return DeclarationPolicy{ReviewMonths: 3, ReminderBefore: 14 * 24 * time.Hour, AppealWindow: 30 * 24 * time.Hour, Refund: DefaultRefundPolicy()}
}

// DeclarationSubmission names a stored version of the declaration.
type DeclarationSubmission struct {
	Key    string `json:"key"`    // declarations/<case>/v<n>.<format>
	Format string `json:"format"` // json or xml
}

// DeclarationWorkflowInput starts a review.
type DeclarationWorkflowInput struct {
	CaseID        string                `json:"case_id"`
	INN           string                `json:"inn"`
	RequestID     string                `json:"request_id"`
	RequestSHA256 string                `json:"request_sha256,omitempty"`
	Submission    DeclarationSubmission `json:"submission"`
	Confirmation  string                `json:"confirmation"` // esignature or sms [002:322, 004:127]
	ClaimsRefund  bool                  `json:"claims_refund"`
	Policy        DeclarationPolicy     `json:"policy"`
}

// DocumentRequest is an inspector's request for documents.
type DocumentRequest struct {
	What      string `json:"what"`
	Inspector string `json:"inspector"`
}

// DeclarationDecision is an inspector's decision.
type DeclarationDecision struct {
	Decision  string `json:"decision"` // confirmed, additional_tax, refused
	Grounds   string `json:"grounds"`
	Inspector string `json:"inspector"`
}

// Appeal is the taxpayer's appeal of a decision.
type Appeal struct {
	Reason string `json:"reason"`
}

// DeclarationStatus is what the status query returns (no personal data).
type DeclarationStatus struct {
	CaseID        string                        `json:"case_id"`
	RequestSHA256 string                        `json:"request_sha256,omitempty"`
	Status        string                        `json:"status"`
	Label         string                        `json:"label"`
	Confirmation  string                        `json:"confirmation"`
	Period        int                           `json:"period,omitempty"`
	Versions      int                           `json:"versions"`
	Problems      []domain.FieldError           `json:"problems,omitempty"`
	Computed      *contract.DeclarationComputed `json:"computed,omitempty"`
	Deadline      time.Time                     `json:"deadline"`
	Reminded      bool                          `json:"reminded"`
	Escalated     bool                          `json:"escalated"`
	Requested     string                        `json:"requested,omitempty"` // what the inspector asked for
	Decision      string                        `json:"decision,omitempty"`
	Grounds       string                        `json:"grounds,omitempty"`
	DecidedBy     string                        `json:"decided_by,omitempty"`
	DecisionKey   string                        `json:"decision_key,omitempty"`
	Decisions     int                           `json:"decisions"`
	AppealBy      *time.Time                    `json:"appeal_by,omitempty"`
	RefundCase    string                        `json:"refund_case,omitempty"`
	History       []Transition                  `json:"history"`
}

// DeclarationID builds a declaration's workflow id.
func DeclarationID(key string) string { return "declaration-" + key }

type declaration struct {
	in  DeclarationWorkflowInput
	st  DeclarationStatus
	j   *journal
	sub DeclarationSubmission

	correction *DeclarationSubmission
	answer     bool
	request    *DocumentRequest
	decision   *DeclarationDecision
	appeal     *Appeal
	excluded   string // the inspector an appeal must not go back to
}

// Declaration reviews a 3-НДФЛ: automatic checks, clarification, desk review, decision
// document, appeal; an accepted declaration claiming a refund starts the refund.
func Declaration(ctx workflow.Context, in DeclarationWorkflowInput) (DeclarationStatus, error) {
	r := &declaration{in: in, sub: in.Submission}
	now := workflow.Now(ctx)
	r.st = DeclarationStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Confirmation: in.Confirmation, Versions: 1,
		Deadline: now.AddDate(0, in.Policy.ReviewMonths, 0)}
	r.j = &journal{process: "declaration", caseID: in.CaseID, inn: in.INN, requestID: in.RequestID, labels: DeclarationLabels,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	if err := r.handlers(ctx); err != nil {
		return r.st, err
	}
	r.watchDeadline(ctx)
	if err := r.j.record(ctx, DeclarationReceived, "taxpayer", "confirmed by "+in.Confirmation); err != nil {
		return r.st, err
	}
	err := r.run(ctx)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.st, err
}

func (r *declaration) project(workflow.Context) contract.CaseRecord {
	rec := contract.CaseRecord{Deadline: r.st.Deadline, Escalated: r.st.Escalated}
	if c := r.st.Computed; c != nil {
		rec.Amounts = map[string]int64{"tax": c.Tax, "payable": c.Payable, "refund": c.Refund}
	}
	return rec
}

func (r *declaration) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, DeclarationQueryStatus, func() (DeclarationStatus, error) { return r.st, nil }); err != nil {
		return err
	}
	inReview := func() error {
		if r.st.Status != DeclarationInReview || r.request != nil || r.decision != nil {
			return temporal.NewApplicationError("the declaration is not in desk review", fnerr.TypeConflict)
		}
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateRequest,
		func(ctx workflow.Context, q DocumentRequest) (DeclarationStatus, error) {
			r.request = &q
			err := workflow.Await(ctx, func() bool { return r.st.Status == DeclarationClarification })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(q DocumentRequest) error {
			if err := inReview(); err != nil {
				return err
			}
			if q.What == "" || q.Inspector == "" {
				return invalid("what: say which documents are needed; inspector: who asks")
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateDecide,
		func(ctx workflow.Context, d DeclarationDecision) (DeclarationStatus, error) {
			r.decision = &d
			err := workflow.Await(ctx, func() bool { return r.st.Status == DeclarationDecided })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(d DeclarationDecision) error {
			if err := inReview(); err != nil {
				return err
			}
			switch {
			case d.Decision != "confirmed" && d.Decision != "additional_tax" && d.Decision != "refused":
				return invalid("decision: must be confirmed, additional_tax or refused")
			case d.Grounds == "":
				return invalid("grounds: a decision states its grounds [000:143]")
			case d.Inspector == "":
				return invalid("inspector: must name the inspector")
			case d.Inspector == r.excluded:
				return temporal.NewApplicationError("an appeal is reviewed by a different inspector", fnerr.TypeConflict)
			}
			return nil
		}}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, DeclarationUpdateAppeal,
		func(ctx workflow.Context, a Appeal) (DeclarationStatus, error) {
			r.appeal = &a
			err := workflow.Await(ctx, func() bool { return r.st.Status == DeclarationInReview })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(a Appeal) error {
			if r.st.Status != DeclarationDecided || r.appeal != nil || r.st.AppealBy == nil || workflow.Now(ctx).After(*r.st.AppealBy) {
				return temporal.NewApplicationError("no decision open to appeal", fnerr.TypeConflict)
			}
			if a.Reason == "" {
				return invalid("reason: say why the decision is wrong")
			}
			return nil
		}}); err != nil {
		return err
	}
	corrections := workflow.GetSignalChannel(ctx, DeclarationSignalCorrection)
	answers := workflow.GetSignalChannel(ctx, DeclarationSignalAnswer)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			s := workflow.NewSelector(ctx)
			s.AddReceive(corrections, func(c workflow.ReceiveChannel, _ bool) {
				var sub DeclarationSubmission
				c.Receive(ctx, &sub)
				r.correction = &sub
			})
			s.AddReceive(answers, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, nil)
				r.answer = true
			})
			s.Select(ctx)
		}
	})
	return nil
}

// watchDeadline reminds inspectors before the review deadline and escalates after it.
func (r *declaration) watchDeadline(ctx workflow.Context) {
	r.j.watch(ctx, deadlineWatch{deadline: r.st.Deadline, reminderBefore: r.in.Policy.ReminderBefore,
		settled: func() bool { return r.st.Decisions > 0 },
		remind:  "declaration.deadline_reminder", escalate: "declaration.deadline_passed", reason: "desk-review term passed",
		reminded: &r.st.Reminded, escalated: &r.st.Escalated})
}

func (r *declaration) run(ctx workflow.Context) error {
	var a *activities.Activities
	// Automatic checks, repeated for each correction until the declaration passes.
	for {
		if err := r.j.record(ctx, DeclarationAutoCheck, "system", ""); err != nil {
			return err
		}
		var res contract.DeclarationCheckResult
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckDeclaration,
			contract.DeclarationCheckInput{CaseID: r.in.CaseID, Key: r.sub.Key, Format: r.sub.Format, At: workflow.Now(ctx)}).Get(ctx, &res); err != nil {
			return err
		}
		r.st.Problems, r.st.Period = res.Problems, res.Period
		if res.OK {
			c := res.Computed
			r.st.Computed = &c
			break
		}
		if err := r.j.record(ctx, DeclarationClarification, "system", problemsText(res.Problems)); err != nil {
			return err
		}
		r.correction = nil
		if err := workflow.Await(ctx, func() bool { return r.correction != nil }); err != nil {
			return err
		}
		r.sub = *r.correction
		r.st.Versions++
	}
	if err := r.j.record(ctx, DeclarationAccepted, "system", ""); err != nil {
		return err
	}
	if err := r.startRefund(ctx); err != nil {
		return err
	}
	for {
		if err := r.review(ctx); err != nil {
			return err
		}
		// The decision may be appealed within the window; then another inspector reviews.
		by := workflow.Now(ctx).Add(r.in.Policy.AppealWindow)
		r.st.AppealBy = &by
		r.appeal = nil
		ok, err := workflow.AwaitWithTimeout(ctx, by.Sub(workflow.Now(ctx)), func() bool { return r.appeal != nil })
		if err != nil || !ok {
			r.st.AppealBy = nil
			return err
		}
		r.excluded, r.st.AppealBy = r.st.DecidedBy, nil
		if err := r.j.record(ctx, DeclarationAppealed, "taxpayer", r.appeal.Reason); err != nil {
			return err
		}
	}
}

// startRefund starts the refund an accepted declaration claims, for the computed amount.
func (r *declaration) startRefund(ctx workflow.Context) error {
	if !r.in.ClaimsRefund || r.st.Computed.Refund <= 0 {
		return nil
	}
	id := "refund-" + r.in.CaseID[len("declaration-"):]
	in := RefundWorkflowInput{CaseID: id, INN: r.in.INN, Period: r.st.Period, Amount: r.st.Computed.Refund,
		Reason: "refund claimed in declaration " + r.in.CaseID, RequestID: r.in.RequestID, LinkedDeclaration: r.in.CaseID,
		Policy: r.in.Policy.Refund}
	attrs := []temporal.SearchAttributeUpdate{SearchProcess.ValueSet("refund"), SearchStatus.ValueSet(RefundReceived)}
	// The refund carries the taxpayer's subject hash too, so the back office's requisites
	// verdict finds it like a refund claimed through the API.
	if subject, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(SearchSubject); ok {
		attrs = append(attrs, SearchSubject.ValueSet(subject))
	}
	opts := workflow.ChildWorkflowOptions{WorkflowID: id, ParentClosePolicy: enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...)}
	child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), Refund, in)
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return err
	}
	r.st.RefundCase = id
	return r.j.audit(ctx, "refund_started", "system", id)
}

// review is one desk review: document requests, then a decision with a document.
func (r *declaration) review(ctx workflow.Context) error {
	var a *activities.Activities
	if err := r.j.record(ctx, DeclarationInReview, "system", ""); err != nil {
		return err
	}
	for {
		r.request, r.decision = nil, nil
		if err := workflow.Await(ctx, func() bool { return r.request != nil || r.decision != nil }); err != nil {
			return err
		}
		if r.decision != nil {
			break
		}
		r.st.Requested = r.request.What
		if err := r.j.record(ctx, DeclarationClarification, r.request.Inspector, r.request.What); err != nil {
			return err
		}
		r.answer = false
		if err := workflow.Await(ctx, func() bool { return r.answer }); err != nil {
			return err
		}
		r.st.Requested = ""
		// the taxpayer's answer returns the declaration to review [002:81]
		if err := r.j.record(ctx, DeclarationInReview, "taxpayer", "documents provided"); err != nil {
			return err
		}
	}
	d := *r.decision
	var doc contract.DecisionPDFResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.DocumentOptions), a.GenerateDecision,
		contract.DecisionPDFInput{CaseID: r.in.CaseID, INN: r.in.INN, Number: r.st.Decisions + 1, Decision: d.Decision, Grounds: d.Grounds,
			Inspector: d.Inspector, Period: r.st.Period, Computed: *r.st.Computed, At: workflow.Now(ctx)}).Get(ctx, &doc)
	if err != nil {
		return err
	}
	r.st.Decisions++
	r.st.Decision, r.st.Grounds, r.st.DecidedBy, r.st.DecisionKey = d.Decision, d.Grounds, d.Inspector, doc.Key
	return r.j.record(ctx, DeclarationDecided, d.Inspector, d.Decision+": "+d.Grounds)
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
