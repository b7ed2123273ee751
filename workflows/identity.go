package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/term"
)

// Identity verification, domain.md §1, seed-rules A1.

// Names of the identity workflow's handlers.
const (
	IdentityQueryStatus    = "status"
	IdentityUpdateReview   = "review"   // operator: approve, or reject with a reason
	IdentitySignalResubmit = "resubmit" // the taxpayer's corrected data, documents or certificate
	IdentitySignalConsent  = "consent"  // consent to personal-data processing given or revoked
	IdentitySignalDocument = "document" // an upload is waiting under incoming/<case>/<doc>
)

// Identity statuses.
const (
	IdentityReceived       = "received"
	IdentityChecking       = "checking"
	IdentityNeedsDocuments = "needs_documents"
	IdentityManualReview   = "manual_review"
	IdentityVerified       = "verified"
	IdentityRejected       = "rejected"
	IdentityExpired        = "expired"
	// IdentityClosed: consent was withdrawn and not given again; the case's documents
	// were destroyed (152-FZ art. 21 p.5).
	IdentityClosed = "closed"
)

// IdentityLabels are the labels the cabinet shows [001:51].
var IdentityLabels = map[string]string{
	IdentityReceived:       "Принято",
	IdentityChecking:       "На проверке",
	IdentityNeedsDocuments: "Требуется уточнение",
	IdentityManualReview:   "На проверке",
	IdentityVerified:       "Идентификация пройдена",
	IdentityRejected:       "Отклонено",
	IdentityExpired:        "Срок истёк",
	IdentityClosed:         "Закрыто: согласие отозвано",
}

// IdentityPolicy is the configuration a verification runs under (from the API at start).
type IdentityPolicy struct {
	MaxAttempts          int           `json:"max_attempts"`            // 3
	ResubmitWait         time.Duration `json:"resubmit_wait"`           // 30 days
	ReviewSLAWorkingDays int           `json:"review_sla_working_days"` // 1 working day
	// ConsentWait: how long a case paused by a withdrawn consent waits for it to be given
	// again before it closes and its documents are destroyed. Personal data are destroyed
	// within 30 days of the withdrawal (152-FZ art. 21 p.5): 29 days leave the last day
	// for the deletion and its retries.
	ConsentWait time.Duration `json:"consent_wait"`
}

// DefaultConsentWait is 29 days: the destruction is done inside the 30 days of 152-FZ art. 21 p.5.
const DefaultConsentWait = 29 * 24 * time.Hour

// DefaultIdentityPolicy is domain.md's defaults.
func DefaultIdentityPolicy() IdentityPolicy {
	return IdentityPolicy{MaxAttempts: 3, ResubmitWait: 30 * 24 * time.Hour, ReviewSLAWorkingDays: 1, ConsentWait: DefaultConsentWait}
}

// IdentitySubmission is what the taxpayer submits, at the start or again.
type IdentitySubmission struct {
	Person      contract.PersonData `json:"person"`
	Documents   []DocumentRef       `json:"documents,omitempty"`   // uploads under incoming/<case>/<doc>
	Certificate []byte              `json:"certificate,omitempty"` // esignature: PEM or DER
}

// IdentityWorkflowInput starts a verification.
type IdentityWorkflowInput struct {
	CaseID        string             `json:"case_id"`
	RequestID     string             `json:"request_id"`
	RequestSHA256 string             `json:"request_sha256,omitempty"`
	Method        string             `json:"method"`
	Submission    IdentitySubmission `json:"submission"`
	Policy        IdentityPolicy     `json:"policy"`
}

// IdentityReview is an operator's decision.
type IdentityReview struct {
	Approve  bool   `json:"approve"`
	Reason   string `json:"reason"`
	Operator string `json:"operator"`
}

// IdentityConsent is a change of consent.
type IdentityConsent struct {
	Granted bool `json:"granted"`
}

// IdentityStatus is what the status query returns (no personal data).
type IdentityStatus struct {
	CaseID        string     `json:"case_id"`
	RequestSHA256 string     `json:"request_sha256,omitempty"`
	Method        string     `json:"method"`
	Status        string     `json:"status"`
	Label         string     `json:"label"`
	Attempts      int        `json:"attempts"`
	MaxAttempts   int        `json:"max_attempts"`
	Reasons       []string   `json:"reasons,omitempty"`
	ResubmitBy    *time.Time `json:"resubmit_by,omitempty"`
	ReviewDue     *time.Time `json:"review_due,omitempty"`
	Escalated     bool       `json:"escalated"`
	Paused        bool       `json:"paused"`
	// While consent is withdrawn: when, and when the case closes and its documents are
	// destroyed unless consent is given again (152-FZ art. 21 p.5).
	ConsentWithdrawnAt *time.Time   `json:"consent_withdrawn_at,omitempty"`
	DestroyBy          *time.Time   `json:"destroy_by,omitempty"`
	ConfirmedAt        *time.Time   `json:"confirmed_at,omitempty"`
	ReviewedBy         string       `json:"reviewed_by,omitempty"`
	Documents          []Document   `json:"documents"`
	History            []Transition `json:"history"`
}

// IdentityID builds a verification's workflow id.
func IdentityID(key string) string { return "identity-" + key }

type identity struct {
	in  IdentityWorkflowInput
	st  IdentityStatus
	j   *journal
	sub IdentitySubmission // the current submission

	consent     bool
	withdrawnAt time.Time // when consent was withdrawn (zero while it stands)
	closed      bool      // consent stayed withdrawn: the case closed and its documents are gone
	resubmit    *IdentitySubmission
	review      *IdentityReview
	storedDocs  []string // S3 keys of accepted documents of the current submission
}

// IdentityVerification verifies a taxpayer's identity by one method, with re-submission
// after a mismatch, operator review when the result is inconclusive, and consent gating.
func IdentityVerification(ctx workflow.Context, in IdentityWorkflowInput) (IdentityStatus, error) {
	if in.Policy.ConsentWait <= 0 { // an input from before the rule
		in.Policy.ConsentWait = DefaultConsentWait
	}
	r := &identity{in: in, sub: in.Submission, consent: true}
	r.st = IdentityStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Method: in.Method, MaxAttempts: in.Policy.MaxAttempts, Documents: []Document{}}
	r.j = &journal{process: "identity", caseID: in.CaseID, inn: in.Submission.Person.INN, requestID: in.RequestID, labels: IdentityLabels,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	if err := r.handlers(ctx); err != nil {
		return r.st, err
	}
	if err := r.j.record(ctx, IdentityReceived, "taxpayer", in.Method); err != nil {
		return r.st, err
	}
	err := r.run(ctx)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return r.st, err
}

func (r *identity) project(workflow.Context) contract.CaseRecord {
	rec := contract.CaseRecord{Escalated: r.st.Escalated, Amounts: map[string]int64{"attempts": int64(r.st.Attempts)}}
	switch {
	case r.st.Paused && r.st.DestroyBy != nil:
		rec.Deadline = *r.st.DestroyBy
	case r.st.ReviewDue != nil:
		rec.Deadline = *r.st.ReviewDue
	case r.st.ResubmitBy != nil:
		rec.Deadline = *r.st.ResubmitBy
	}
	return rec
}

func (r *identity) handlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, IdentityQueryStatus, func() (IdentityStatus, error) { return r.st, nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandlerWithOptions(ctx, IdentityUpdateReview,
		func(ctx workflow.Context, rv IdentityReview) (IdentityStatus, error) {
			r.review = &rv
			err := workflow.Await(ctx, func() bool { return r.st.Status != IdentityManualReview || r.closed })
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(rv IdentityReview) error {
			if r.st.Status != IdentityManualReview || r.review != nil {
				return temporal.NewApplicationError("the verification is not awaiting an operator's review", fnerr.TypeConflict)
			}
			if !r.consent { // withdrawn consent stops processing (152-FZ art. 21 p.5)
				return temporal.NewApplicationError("the taxpayer has withdrawn consent to the processing of personal data", fnerr.TypeConflict)
			}
			if rv.Operator == "" {
				return invalid("operator: must name the operator")
			}
			if !rv.Approve && rv.Reason == "" {
				return invalid("reason: a rejection must give the reason the taxpayer will see")
			}
			return nil
		}})
	if err != nil {
		return err
	}
	resubmit := workflow.GetSignalChannel(ctx, IdentitySignalResubmit)
	consent := workflow.GetSignalChannel(ctx, IdentitySignalConsent)
	docs := workflow.GetSignalChannel(ctx, IdentitySignalDocument)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			s := workflow.NewSelector(ctx)
			s.AddReceive(resubmit, func(c workflow.ReceiveChannel, _ bool) {
				var sub IdentitySubmission
				c.Receive(ctx, &sub)
				r.resubmit = &sub
			})
			s.AddReceive(docs, func(c workflow.ReceiveChannel, _ bool) {
				var d DocumentRef
				c.Receive(ctx, &d)
				r.sub.Documents = append(r.sub.Documents, d)
			})
			s.AddReceive(consent, func(c workflow.ReceiveChannel, _ bool) {
				var cs IdentityConsent
				c.Receive(ctx, &cs)
				switch {
				case !cs.Granted && r.consent:
					r.withdrawnAt = workflow.Now(ctx)
				case cs.Granted:
					r.withdrawnAt = time.Time{}
				}
				r.consent = cs.Granted
			})
			s.Select(ctx)
		}
	})
	return nil
}

// gate stops processing while consent is withdrawn; deadlines keep running meanwhile.
// Consent not given again within ConsentWait of the withdrawal closes the case and
// destroys its documents (152-FZ art. 21 p.5): gate then reports closed, and the caller
// ends the workflow.
func (r *identity) gate(ctx workflow.Context) (closed bool, err error) {
	if r.consent {
		return false, nil
	}
	withdrawn := r.withdrawnAt
	by := withdrawn.Add(r.in.Policy.ConsentWait)
	r.st.Paused, r.st.ConsentWithdrawnAt, r.st.DestroyBy = true, &withdrawn, &by
	if err := r.j.audit(ctx, "paused", "system", "consent to personal-data processing withdrawn: processing stops; the case closes and its documents are destroyed on "+
		by.In(term.Moscow).Format(time.DateOnly)+" unless consent is given again (152-FZ art. 21 p.5)"); err != nil {
		return false, err
	}
	if err := r.j.refresh(ctx); err != nil {
		return false, err
	}
	restored := r.consent
	if !restored {
		if d := by.Sub(workflow.Now(ctx)); d > 0 {
			if restored, err = workflow.AwaitWithTimeout(ctx, d, func() bool { return r.consent }); err != nil {
				return false, err
			}
		}
	}
	if !restored {
		return true, r.close(ctx)
	}
	r.st.Paused, r.st.ConsentWithdrawnAt, r.st.DestroyBy = false, nil, nil
	return false, r.j.audit(ctx, "resumed", "system", "consent given again")
}

// close destroys the case's documents, then ends the case; the journal says why. It runs
// on a disconnected context: once begun, a cancellation must not leave documents behind.
func (r *identity) close(ctx workflow.Context) error {
	var a *activities.Activities
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var res contract.CaseDocumentsDeleteResult
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, activities.RecordOptions), a.DeleteCaseDocuments,
		contract.CaseDocumentsDeleteInput{CaseID: r.in.CaseID}).Get(dctx, &res); err != nil {
		return err
	}
	r.closed, r.storedDocs = true, nil
	r.st.Paused, r.st.Documents, r.st.ResubmitBy, r.st.ReviewDue = false, []Document{}, nil, nil
	return r.j.record(dctx, IdentityClosed, "system", fmt.Sprintf(
		"consent withdrawn and not given again: processing ended and the case's documents destroyed (%d objects; 152-FZ art. 21 p.5)", res.Deleted))
}

func (r *identity) run(ctx workflow.Context) error {
	var a *activities.Activities
	read := workflow.WithActivityOptions(ctx, activities.ReadOptions)
	var check contract.TaxpayerCheckResult
	err := workflow.ExecuteActivity(read, a.CheckTaxpayer, contract.TaxpayerCheckInput{INN: r.sub.Person.INN}).Get(ctx, &check)
	if reason, ok := businessReason(err); ok {
		return r.finish(ctx, IdentityRejected, "system", reason)
	} else if err != nil {
		return err
	}
	switch {
	case !check.Consent:
		return r.finish(ctx, IdentityRejected, "system", "consent to personal-data processing is not on record: give it in the cabinet first")
	case !check.INNLinked || !check.SNILSLinked:
		return r.finish(ctx, IdentityRejected, "system", "the INN and the SNILS must both be linked to the account [002:118]")
	}

	// The documents method needs an upload before its first check; waiting for it costs no attempt.
	if r.in.Method == contract.MethodDocuments && len(r.sub.Documents) == 0 {
		if ok, err := r.awaitSubmission(ctx, "upload a scan of the passport pages with the data and the photo [000:53]"); err != nil || !ok {
			return err
		}
	}
	for {
		if closed, err := r.gate(ctx); err != nil || closed {
			return err
		}
		r.st.Attempts++
		r.st.ResubmitBy = nil
		if err := r.j.record(ctx, IdentityChecking, "system", ""); err != nil {
			return err
		}
		outcome, reasons, err := r.check(ctx, check)
		if err != nil {
			return err
		}
		r.st.Reasons = reasons
		switch outcome {
		case contract.MatchYes:
			return r.confirm(ctx, "system")
		case contract.MatchInconclusive:
			return r.manualReview(ctx)
		}
		// Mismatch: tell the taxpayer why [000:57]; re-submission, up to the attempt limit.
		if err := r.j.notify(ctx, "taxpayer", "identity.mismatch", "reasons", joinReasons(reasons)); err != nil {
			return err
		}
		if r.st.Attempts >= r.in.Policy.MaxAttempts {
			return r.finish(ctx, IdentityRejected, "system", "attempts exhausted: "+joinReasons(reasons))
		}
		if ok, err := r.awaitSubmission(ctx, joinReasons(reasons)); err != nil || !ok {
			return err
		}
	}
}

// awaitSubmission waits, up to the re-submission period, for corrected data or a new
// upload; ok is false when the case expired instead.
func (r *identity) awaitSubmission(ctx workflow.Context, why string) (ok bool, err error) {
	by := workflow.Now(ctx).Add(r.in.Policy.ResubmitWait)
	r.st.ResubmitBy = &by
	if err := r.j.record(ctx, IdentityNeedsDocuments, "system", why); err != nil {
		return false, err
	}
	r.resubmit = nil
	for {
		submitted := func() bool { return r.resubmit != nil || len(r.sub.Documents) > 0 }
		ok = submitted()
		if d := by.Sub(workflow.Now(ctx)); !ok && d > 0 {
			if ok, err = workflow.AwaitWithTimeout(ctx, d, func() bool { return submitted() || !r.consent }); err != nil {
				return false, err
			}
		}
		if !r.consent { // withdrawn while waiting: stop until it is given again, or close
			if closed, err := r.gate(ctx); err != nil || closed {
				return false, err
			}
			continue
		}
		break
	}
	if !ok {
		return false, r.finish(ctx, IdentityExpired, "system", "no re-submission in time")
	}
	if r.resubmit != nil {
		r.apply(*r.resubmit)
	}
	return true, nil
}

// apply takes a re-submission: new data replaces old, new documents are added.
func (r *identity) apply(sub IdentitySubmission) {
	if sub.Person.Surname != "" {
		inn := r.sub.Person.INN // the case's taxpayer does not change
		r.sub.Person = sub.Person
		r.sub.Person.INN = inn
	}
	r.sub.Documents = append(r.sub.Documents, sub.Documents...)
	if len(sub.Certificate) > 0 {
		r.sub.Certificate = sub.Certificate
	}
}

// check runs the method's automatic check.
func (r *identity) check(ctx workflow.Context, reg contract.TaxpayerCheckResult) (string, []string, error) {
	var a *activities.Activities
	now := workflow.Now(ctx)
	switch r.in.Method {
	case contract.MethodVideo:
		return contract.MatchInconclusive, []string{"video verification is decided by an operator"}, nil
	case contract.MethodBank:
		if reg.BankIdentified {
			return contract.MatchYes, nil, nil
		}
		return contract.MatchNo, []string{"no partner bank has identified you: choose another method"}, nil
	case contract.MethodESignature:
		var res contract.ESignCheckResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckESignature,
			contract.ESignCheckInput{Certificate: r.sub.Certificate, INN: r.sub.Person.INN, SNILS: r.sub.Person.SNILS, At: now}).Get(ctx, &res)
		if reason, ok := businessReason(err); ok {
			return contract.MatchNo, []string{reason}, nil
		} else if err != nil {
			return "", nil, err
		}
		if res.Inconclusive {
			return contract.MatchInconclusive, []string{res.Reason}, nil
		}
		if !res.Valid {
			return contract.MatchNo, []string{res.Reason}, nil
		}
		return contract.MatchYes, nil, nil
	}
	// documents: store the uploads, then compare with the registry.
	var refused []string
	batch := r.sub.Documents
	for _, d := range batch {
		var res contract.DocumentResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.DocumentOptions), a.StoreDocument,
			contract.DocumentInput{CaseID: r.in.CaseID, DocID: d.DocID, Purpose: "identity", IncomingKey: "incoming/" + r.in.CaseID + "/" + d.DocID}).Get(ctx, &res)
		if reason, ok := businessReason(err); ok {
			res = contract.DocumentResult{Reason: reason}
		} else if err != nil {
			return "", nil, err
		}
		r.st.Documents = append(r.st.Documents, Document{DocID: d.DocID, Accepted: res.Accepted, Reason: res.Reason, Type: res.Type, Key: res.Key})
		if res.Accepted {
			r.storedDocs = append(r.storedDocs, res.Key)
		} else {
			refused = append(refused, "document "+d.DocID+": "+res.Reason)
		}
	}
	// uploads that arrived meanwhile stay for the next check
	r.sub.Documents = r.sub.Documents[len(batch):]
	if len(r.storedDocs) == 0 {
		return contract.MatchNo, append(refused, "upload a scan of the passport pages with the data and the photo [000:53]"), nil
	}
	var res contract.IdentityMatchResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.MatchIdentity,
		contract.IdentityMatchInput{Person: r.sub.Person, Documents: r.storedDocs, At: now}).Get(ctx, &res)
	if reason, ok := businessReason(err); ok {
		return contract.MatchNo, append(refused, reason), nil
	} else if err != nil {
		return "", nil, err
	}
	return res.Outcome, append(refused, res.Reasons...), nil
}

// manualReview waits for an operator, with an SLA in working days and escalation.
func (r *identity) manualReview(ctx workflow.Context) error {
	var due time.Time
	now := workflow.Now(ctx)
	days := r.in.Policy.ReviewSLAWorkingDays
	// The calendar is data that can change between deploys: record the deadline once.
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return calendar.Shared().AddWorkingDays(now, days) }).Get(&due); err != nil {
		return err
	}
	r.st.ReviewDue = &due
	if err := r.j.record(ctx, IdentityManualReview, "system", joinReasons(r.st.Reasons)); err != nil {
		return err
	}
	if err := r.j.notify(ctx, "reviewer", "identity.review_requested"); err != nil {
		return err
	}
	ok, err := r.awaitReview(ctx, due)
	if err != nil || r.closed {
		return err
	}
	if !ok {
		r.st.Escalated = true
		if err := r.j.notify(ctx, "supervisor", "identity.review_overdue"); err != nil {
			return err
		}
		if err := r.j.audit(ctx, "review_overdue", "system", "operator review SLA passed"); err != nil {
			return err
		}
		if err := r.j.refresh(ctx); err != nil {
			return err
		}
		if _, err := r.awaitReview(ctx, time.Time{}); err != nil || r.closed {
			return err
		}
	}
	r.st.ReviewedBy = r.review.Operator
	if !r.review.Approve {
		return r.finish(ctx, IdentityRejected, r.review.Operator, r.review.Reason)
	}
	return r.confirm(ctx, r.review.Operator)
}

// awaitReview waits for the operator until due (zero: without a bound); a withdrawn
// consent stops the wait until it is given again, or closes the case (r.closed). ok is
// false when due passed without a review.
func (r *identity) awaitReview(ctx workflow.Context, due time.Time) (ok bool, err error) {
	for {
		cond := func() bool { return r.review != nil || !r.consent }
		if due.IsZero() {
			err = workflow.Await(ctx, cond)
			ok = true
		} else if d := due.Sub(workflow.Now(ctx)); d > 0 {
			ok, err = workflow.AwaitWithTimeout(ctx, d, cond)
		} else {
			ok = cond()
		}
		if err != nil {
			return false, err
		}
		if ok && !r.consent && r.review == nil {
			if closed, err := r.gate(ctx); err != nil || closed {
				return false, err
			}
			continue
		}
		return ok && r.review != nil, nil
	}
}

// confirm sets the confirmed mark with time and method, then records success.
func (r *identity) confirm(ctx workflow.Context, actor string) error {
	if closed, err := r.gate(ctx); err != nil || closed {
		return err
	}
	var a *activities.Activities
	at := workflow.Now(ctx)
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.RecordOptions), a.ConfirmIdentity,
		contract.IdentityConfirmInput{INN: r.sub.Person.INN, Method: r.in.Method, CaseID: r.in.CaseID, At: at}).Get(ctx, nil)
	if err != nil {
		return err
	}
	r.st.ConfirmedAt = &at
	r.st.Reasons = nil
	return r.j.record(ctx, IdentityVerified, actor, "method "+r.in.Method)
}

func (r *identity) finish(ctx workflow.Context, status, actor, reason string) error {
	if status == IdentityRejected {
		r.st.Reasons = append([]string{}, reason)
	}
	return r.j.record(ctx, status, actor, reason)
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}
