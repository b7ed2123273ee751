package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/term"
)

// Identity verification, domain.md §1, seed-rules A1.

// Names of the identity workflow's handlers.
const (
	IdentityQueryStatus    = "status"
	IdentityUpdateReview   = "review"       // operator: approve, or reject with a reason
	IdentityUpdateResubmit = "resubmission" // the taxpayer's corrected data, documents or certificate
	IdentityUpdateDocument = "add_document" // an upload is waiting under incoming/<case>/<doc>
	IdentitySignalConsent  = "consent"      // consent to personal-data processing given or revoked
	// The signals the API sent before the updates above: still taken (on the main
	// coroutine) for cases started before them.
	IdentitySignalResubmit = "resubmit"
	IdentitySignalDocument = "document"
)

// changeResubmissionAnswersWhenTaken is the GetVersion change id of the re-submission
// update that answers once taken (README, "Changing a workflow safely").
const changeResubmissionAnswersWhenTaken = "resubmission-answers-when-taken"

// changeESignProofRequired is the GetVersion change id of the e-signature check that
// refuses, without running the check, a certificate that came without the proof of
// possession the API's verifier produced for this case.
const changeESignProofRequired = "esign-proof-required"

// MaxWaitingUploads bounds the uploads a verification holds for its next check.
const MaxWaitingUploads = 20

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
	// ReviewExpireWait: how long an operator review stays open after its SLA passed and it
	// was escalated; then the case expires and the taxpayer is told to start again.
	ReviewExpireWait time.Duration `json:"review_expire_wait"`
}

// DefaultReviewExpireWait is 30 days, the same as a re-submission may take.
const DefaultReviewExpireWait = 30 * 24 * time.Hour

// DefaultConsentWait is 29 days: the destruction is done inside the 30 days of 152-FZ art. 21 p.5.
const DefaultConsentWait = 29 * 24 * time.Hour

// DefaultIdentityPolicy is domain.md's defaults.
func DefaultIdentityPolicy() IdentityPolicy {
	return IdentityPolicy{MaxAttempts: 3, ResubmitWait: 30 * 24 * time.Hour, ReviewSLAWorkingDays: 1, ConsentWait: DefaultConsentWait,
		ReviewExpireWait: DefaultReviewExpireWait}
}

// withDefaults fills terms a policy leaves at zero (an input from before they existed).
func (p IdentityPolicy) withDefaults() IdentityPolicy {
	d := DefaultIdentityPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.ResubmitWait <= 0 {
		p.ResubmitWait = d.ResubmitWait
	}
	if p.ReviewSLAWorkingDays <= 0 {
		p.ReviewSLAWorkingDays = d.ReviewSLAWorkingDays
	}
	if p.ConsentWait <= 0 {
		p.ConsentWait = d.ConsentWait
	}
	if p.ReviewExpireWait <= 0 {
		p.ReviewExpireWait = d.ReviewExpireWait
	}
	return p
}

// IdentitySubmission is what the taxpayer submits, at the start or again.
type IdentitySubmission struct {
	// At: when the API accepted a re-submission (it stamps it); the next re-submission
	// period and the review's due time run from it.
	At          time.Time           `json:"at,omitzero"`
	Person      contract.PersonData `json:"person"`
	Documents   []DocumentRef       `json:"documents,omitempty"`   // uploads under incoming/<case>/<doc>
	Certificate []byte              `json:"certificate,omitempty"` // esignature: PEM or DER
	// BankAssertion: bank, the partner bank's signed assertion (compact JWS) that it
	// identified the person, bound to a challenge nonce. Cases started before it carry
	// none and keep the registry flag they started with (see check).
	BankAssertion string `json:"bank_assertion,omitempty"`
	// ESignProof: with a certificate, the proof of possession the API's verifier accepted
	// for it (esign.Verifier). An e-signature submission without one is refused.
	ESignProof *contract.ESignProof `json:"esign_proof,omitempty"`
}

// IdentityWorkflowInput starts a verification.
type IdentityWorkflowInput struct {
	CaseID        string             `json:"case_id"`
	RequestID     string             `json:"request_id"`
	RequestSHA256 string             `json:"request_sha256,omitempty"`
	Method        string             `json:"method"`
	Submission    IdentitySubmission `json:"submission"`
	Policy        IdentityPolicy     `json:"policy"`
	// Owner is who created the case (the API's create, a batch line): its first step
	// writes the case's owner row with it. Cases started before it existed carry none
	// (their owner was written before they started).
	Owner *contract.CaseOwner `json:"owner,omitempty"`
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
	// At: when the API took the taxpayer's word (it stamps it); the destruction date of a
	// withdrawal runs from it.
	At time.Time `json:"at,omitzero"`
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
	ConsentWithdrawnAt *time.Time `json:"consent_withdrawn_at,omitempty"`
	DestroyBy          *time.Time `json:"destroy_by,omitempty"`
	ConfirmedAt        *time.Time `json:"confirmed_at,omitempty"`
	ReviewedBy         string     `json:"reviewed_by,omitempty"`
	// ExpiresAt: an escalated operator review not decided by then expires the case.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LateSignals counts signals (from before the updates) that came when the case could
	// no longer use them: they are taken and counted, never left on the channel.
	LateSignals int          `json:"late_signals,omitempty"`
	Documents   []Document   `json:"documents"`
	History     []Transition `json:"history"`
}

// IdentityID builds a verification's workflow id.
func IdentityID(key string) string { return "identity-" + key }

type identity struct {
	in  IdentityWorkflowInput
	st  IdentityStatus
	j   *journal
	sub IdentitySubmission // the current submission

	// submittedAt is when the current submission came: the case's start, then the time
	// each re-submission or upload was taken. The deadlines its check leads to (ResubmitBy,
	// ReviewDue) run from it, not from the workflow task that records them, so that a
	// reset run that decides the same writes the same content.
	submittedAt time.Time
	// uploadAt is the time of the last upload taken since the last submission (zero: none).
	uploadAt    time.Time
	consent     bool
	withdrawnAt time.Time // when consent was withdrawn (zero while it stands)
	closed      bool      // consent stayed withdrawn: the case closed and its documents are gone
	resubmit    *IdentitySubmission
	// resubmitsTaken counts the re-submissions the main coroutine took, so the update
	// that brought one answers after it is taken.
	resubmitsTaken int
	review         *IdentityReview
	storedDocs     []string // S3 keys of accepted documents of the current submission

	sig identitySignals
	// final is the end the case has taken (set before it is written): from then on every
	// message is refused as late, so none is taken and silently dropped.
	final string
	done  bool // the run has returned (ended or failed): no handler waits any longer
}

// identitySignals are the channels of the signals; only the main coroutine takes them.
type identitySignals struct {
	resubmit, consent, docs workflow.ReceiveChannel
}

func (s identitySignals) waiting() bool {
	return s.resubmit.Len() > 0 || s.consent.Len() > 0 || s.docs.Len() > 0
}

// IdentityVerification verifies a taxpayer's identity by one method, with re-submission
// after a mismatch, operator review when the result is inconclusive, and consent gating.
func IdentityVerification(ctx workflow.Context, in IdentityWorkflowInput) (IdentityStatus, error) {
	in.Policy = in.Policy.withDefaults()
	r := &identity{in: in, sub: in.Submission, consent: true, submittedAt: workflow.GetInfo(ctx).WorkflowStartTime}
	r.st = IdentityStatus{CaseID: in.CaseID, RequestSHA256: in.RequestSHA256, Method: in.Method, MaxAttempts: in.Policy.MaxAttempts, Documents: []Document{}}
	r.j = &journal{process: "identity", caseID: in.CaseID, inn: in.Submission.Person.INN, requestID: in.RequestID, labels: IdentityLabels, owner: in.Owner,
		status: &r.st.Status, label: &r.st.Label, history: &r.st.History, project: r.project}
	if err := r.handlers(ctx); err != nil {
		return r.st, err
	}
	err := r.j.record(ctx, IdentityReceived, "taxpayer", in.Method)
	if err == nil {
		err = r.run(ctx)
	}
	r.done = true
	r.settle(ctx)
	return r.st, err
}

// settle lets every handler finish (they see done) and takes the signals still waiting,
// also after a cancellation (a disconnected context), before the run returns.
func (r *identity) settle(ctx workflow.Context) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	r.takeSignals(dctx)
	if r.st.LateSignals > 0 {
		workflow.GetLogger(ctx).Info("signals came after the case could use them", "case", r.in.CaseID, "count", r.st.LateSignals)
	}
}

// lateFor refuses a message once the case has taken its end (or the run has returned).
func (r *identity) lateFor(what string) error {
	switch {
	case r.final != "":
		return errLate(what, r.final, IdentityLabels[r.final])
	case r.done:
		return errLate(what, r.st.Status, r.st.Label)
	}
	return nil
}

// takeSignals applies the signals waiting on the channels; it runs on the main coroutine
// only, so a signal is never held by a goroutine that ends before acting on it.
func (r *identity) takeSignals(ctx workflow.Context) {
	for {
		var sub IdentitySubmission
		if !r.sig.resubmit.ReceiveAsync(&sub) {
			break
		}
		if r.final == "" && !r.done && identityStates.Takes(r.st.Status, ViaSignal, IdentitySignalResubmit) && r.resubmit == nil {
			r.resubmit = &sub
		} else {
			r.st.LateSignals++
		}
	}
	for {
		var d DocumentRef
		if !r.sig.docs.ReceiveAsync(&d) {
			break
		}
		// an operator's review reads no upload: one signalled then is late, not kept unread
		if r.final == "" && !r.done && identityStates.Takes(r.st.Status, ViaSignal, IdentitySignalDocument) && d.DocID != "" && len(r.sub.Documents) < MaxWaitingUploads {
			r.sub.Documents = append(r.sub.Documents, d)
			r.uploadAt = later(r.uploadAt, causeTime(ctx, d.At))
		} else {
			r.st.LateSignals++
		}
	}
	for {
		var cs IdentityConsent
		if !r.sig.consent.ReceiveAsync(&cs) {
			break
		}
		switch {
		case !cs.Granted && r.consent:
			r.withdrawnAt = causeTime(ctx, cs.At)
		case cs.Granted:
			r.withdrawnAt = time.Time{}
		}
		r.consent = cs.Granted
	}
}

// wait waits until cond holds or by passes, taking signals as they come; ok is false
// when by passed first.
func (r *identity) wait(ctx workflow.Context, by time.Time, cond func() bool) (ok bool, err error) {
	for {
		r.takeSignals(ctx)
		if cond() {
			return true, nil
		}
		d := by.Sub(workflow.Now(ctx))
		if d <= 0 {
			return false, nil
		}
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return cond() || r.sig.waiting() }); err != nil {
			return false, err
		}
	}
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
			// The main coroutine acts on the review; a case that fails, is cancelled or
			// closes meanwhile ends the wait too (done, or a status other than the review's).
			// On a disconnected context: a cancelled case still answers (done ends the wait).
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			err := workflow.Await(dctx, func() bool { return r.st.Status != IdentityManualReview || r.done })
			if err == nil && r.st.Status != IdentityVerified && r.st.Status != IdentityRejected {
				err = errLate("review", r.st.Status, r.st.Label)
			}
			return r.st, err
		},
		workflow.UpdateHandlerOptions{Validator: func(rv IdentityReview) error {
			if err := r.lateFor("review"); err != nil {
				return err
			}
			if !identityStates.takes(r.st.Status, IdentityUpdateReview) {
				return errLate("review: the verification is not awaiting an operator's review", r.st.Status, r.st.Label)
			}
			if r.review != nil {
				return errLate("review: another operator's review is being taken", r.st.Status, r.st.Label)
			}
			if !r.consent { // withdrawn consent stops processing (152-FZ art. 21 p.5)
				return errLate("review: the taxpayer has withdrawn consent to the processing of personal data", r.st.Status, r.st.Label)
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
	// A re-submission is recorded here and taken by the main coroutine.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, IdentityUpdateResubmit,
		func(ctx workflow.Context, sub IdentitySubmission) (IdentityStatus, error) {
			r.resubmit = &sub
			// Change resubmission-answers-when-taken: the answer comes once the main
			// coroutine has taken the re-submission, or is a refusal when the case ended
			// first (it was answered success and could then be dropped). Runs that answered
			// at once before the change keep doing so.
			if workflow.GetVersion(ctx, changeResubmissionAnswersWhenTaken, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return r.st, nil
			}
			taken := r.resubmitsTaken
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.Await(dctx, func() bool { return r.resubmitsTaken > taken || r.final != "" || r.done }); err != nil {
				return IdentityStatus{}, err
			}
			if r.resubmitsTaken > taken {
				return r.st, nil
			}
			return IdentityStatus{}, errLate("re-submission: the verification ended before it was taken", r.st.Status, r.st.Label)
		},
		workflow.UpdateHandlerOptions{Validator: func(sub IdentitySubmission) error {
			if err := r.lateFor("re-submission"); err != nil {
				return err
			}
			if !identityStates.takes(r.st.Status, IdentityUpdateResubmit) {
				return errLate("re-submission: the verification is not waiting for one", r.st.Status, r.st.Label)
			}
			if !r.consent {
				return errLate("re-submission: consent to processing personal data is withdrawn; give it again first", r.st.Status, r.st.Label)
			}
			if r.resubmit != nil {
				return errLate("re-submission: another re-submission is being taken", r.st.Status, r.st.Label)
			}
			if sub.Person.Surname == "" && len(sub.Certificate) == 0 && len(sub.Documents) == 0 {
				return invalid("send corrected person data, a new certificate or documents")
			}
			return esignProofMissing(sub, r.in.CaseID)
		}}); err != nil {
		return err
	}
	// An upload waits for the next automatic check; once the check is over (an operator
	// reviews, or the case has ended) it is refused, never kept and dropped.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, IdentityUpdateDocument,
		func(ctx workflow.Context, d DocumentRef) (IdentityStatus, error) {
			r.sub.Documents = append(r.sub.Documents, d)
			r.uploadAt = later(r.uploadAt, causeTime(ctx, d.At))
			return r.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(d DocumentRef) error {
			if err := r.lateFor("document"); err != nil {
				return err
			}
			switch {
			case d.DocID == "":
				return invalid("doc_id: required")
			case r.in.Method != contract.MethodDocuments:
				return errLate("document: this verification's method ("+r.in.Method+") takes no documents", r.st.Status, r.st.Label)
			case !identityStates.takes(r.st.Status, IdentityUpdateDocument) && r.st.Status == IdentityChecking:
				// Only a failed check would read it; one that verifies or goes to an operator
				// would drop it after it was accepted. Sent again once the check asks for more.
				return errLate("document: a check is running; send it when the verification asks for documents", r.st.Status, r.st.Label)
			case !identityStates.takes(r.st.Status, IdentityUpdateDocument):
				return errLate("document: the automatic check is over and an operator decides", r.st.Status, r.st.Label)
			case len(r.sub.Documents) >= MaxWaitingUploads:
				return errLate(fmt.Sprintf("document: %d uploads already wait for the check", MaxWaitingUploads), r.st.Status, r.st.Label)
			}
			return nil
		}}); err != nil {
		return err
	}
	r.sig = identitySignals{resubmit: workflow.GetSignalChannel(ctx, IdentitySignalResubmit),
		consent: workflow.GetSignalChannel(ctx, IdentitySignalConsent), docs: workflow.GetSignalChannel(ctx, IdentitySignalDocument)}
	return nil
}

// gate stops processing while consent is withdrawn; deadlines keep running meanwhile.
// Consent not given again within ConsentWait of the withdrawal closes the case and
// destroys its documents (152-FZ art. 21 p.5): gate then reports closed, and the caller
// ends the workflow.
func (r *identity) gate(ctx workflow.Context) (closed bool, err error) {
	r.takeSignals(ctx)
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
	restored, err := r.wait(ctx, by, func() bool { return r.consent })
	if err != nil {
		return false, err
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
	r.final = IdentityClosed
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
		case matchRefused:
			return r.finish(ctx, IdentityRejected, "system", joinReasons(reasons))
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
	by := r.submittedAt.Add(r.in.Policy.ResubmitWait)
	r.st.ResubmitBy = &by
	if err := r.j.record(ctx, IdentityNeedsDocuments, "system", why); err != nil {
		return false, err
	}
	submitted := func() bool { return r.resubmit != nil || len(r.sub.Documents) > 0 }
	for {
		if ok, err = r.wait(ctx, by, func() bool { return submitted() || !r.consent }); err != nil {
			return false, err
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
		return false, r.finish(ctx, IdentityExpired, "system", "no re-submission by "+by.In(term.Moscow).Format(time.DateOnly))
	}
	// The new submission counts from the message that brought it (the API stamps its time;
	// messages from before that counted from when they were taken).
	at := r.uploadAt
	if r.resubmit != nil {
		at = later(at, causeTime(ctx, r.resubmit.At))
	}
	r.submittedAt, r.uploadAt = causeTime(ctx, at), time.Time{}
	if r.resubmit != nil {
		r.apply(*r.resubmit)
		r.resubmit = nil // taken: read before it is cleared
		r.resubmitsTaken++
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
		r.sub.Certificate, r.sub.ESignProof = sub.Certificate, sub.ESignProof
	}
}

// esignProofMissing refuses a certificate that comes without the proof of possession the
// API's verifier produced for this case (a nonce, the signature over it, the case it was
// spent for). The esign check verifies the proof itself.
func esignProofMissing(sub IdentitySubmission, caseID string) error {
	if len(sub.Certificate) == 0 {
		return nil
	}
	if p := sub.ESignProof; p == nil || p.Nonce == "" || len(p.Signature) == 0 || p.CaseID != caseID {
		return invalid("certificate: a certificate needs its proof of possession, verified for this case (sign a challenge)")
	}
	return nil
}

// check runs the method's automatic check.
func (r *identity) check(ctx workflow.Context, reg contract.TaxpayerCheckResult) (string, []string, error) {
	var a *activities.Activities
	now := workflow.Now(ctx)
	switch r.in.Method {
	case contract.MethodVideo:
		return contract.MatchInconclusive, []string{"video verification is decided by an operator"}, nil
	case contract.MethodBank:
		if r.sub.BankAssertion != "" {
			return r.checkBank(ctx, now)
		}
		// Cases started before assertions (the API now refuses a bank start without one):
		// their histories hold no command here, so they keep the flag they were read with.
		if reg.BankIdentified {
			return contract.MatchYes, nil, nil
		}
		return contract.MatchNo, []string{"no partner bank has identified you: choose another method"}, nil
	case contract.MethodESignature:
		// Change esign-proof-required: no proof of possession, no check; runs that checked
		// before the change keep their command.
		if workflow.GetVersion(ctx, changeESignProofRequired, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
			if len(r.sub.Certificate) == 0 || esignProofMissing(r.sub, r.in.CaseID) != nil {
				return matchRefused, []string{"the certificate came without a proof of possession (a signed challenge): start a new verification with one"}, nil
			}
		}
		var res contract.ESignCheckResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckESignature,
			contract.ESignCheckInput{Certificate: r.sub.Certificate, INN: r.sub.Person.INN, SNILS: r.sub.Person.SNILS, At: now,
				CaseID: r.in.CaseID, Proof: r.sub.ESignProof}).Get(ctx, &res)
		if reason, ok := businessReason(err); ok {
			return contract.MatchNo, []string{reason}, nil
		} else if err != nil {
			return "", nil, err
		}
		if res.Refused {
			return matchRefused, []string{res.Reason}, nil
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

// matchRefused is a check whose evidence is refused outright (a forged, expired, replayed
// or foreign bank assertion): no re-submission can mend it, the case is rejected.
const matchRefused = "refused"

// checkBank verifies the partner bank's assertion. Verified only when it verifies; a
// refusal rejects the case with the detail for the operator (integrators are told a
// generic reason); a check that cannot complete goes to an operator.
func (r *identity) checkBank(ctx workflow.Context, now time.Time) (string, []string, error) {
	var a *activities.Activities
	var res contract.BankCheckResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.ReadOptions), a.CheckBankAssertion,
		contract.BankCheckInput{Assertion: r.sub.BankAssertion, INN: r.sub.Person.INN, CaseID: r.in.CaseID, At: now}).Get(ctx, &res)
	switch reason, business := businessReason(err); {
	case business:
		return matchRefused, []string{clip("partner bank assertion refused: " + reason)}, nil
	case temporal.IsCanceledError(err):
		return "", nil, err
	case err != nil:
		// Retries exhausted (key set or nonce store unreadable): never verified on doubt.
		return contract.MatchInconclusive, []string{"the partner bank's assertion could not be checked (its keys or the challenge store could not be read): an operator reviews it"}, nil
	case res.Valid:
		return contract.MatchYes, nil, nil
	case res.Inconclusive:
		return contract.MatchInconclusive, []string{res.Reason}, nil
	}
	return matchRefused, []string{clip("partner bank assertion refused: " + res.Reason)}, nil
}

// manualReview waits for an operator, with an SLA in working days and escalation; an
// escalated review still open ReviewExpireWait later expires the case.
func (r *identity) manualReview(ctx workflow.Context) error {
	var due time.Time
	now := r.submittedAt // the review's SLA runs from the submission its check could not decide
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
		// from the SLA's end, when the escalation's timer fired (not the task that acts on it)
		expires := due.Add(r.in.Policy.ReviewExpireWait)
		r.st.Escalated, r.st.ExpiresAt = true, &expires
		if err := r.j.notify(ctx, "supervisor", "identity.review_overdue"); err != nil {
			return err
		}
		if err := r.j.audit(ctx, "review_overdue", "system", "operator review SLA passed: escalated; the case expires on "+
			expires.In(term.Moscow).Format(time.DateOnly)+" without a decision"); err != nil {
			return err
		}
		if err := r.j.refresh(ctx); err != nil {
			return err
		}
		if ok, err = r.awaitReview(ctx, expires); err != nil || r.closed {
			return err
		}
		if !ok {
			return r.finish(ctx, IdentityExpired, "system", "no operator decision by "+expires.In(term.Moscow).Format(time.DateOnly)+
				": start a new verification")
		}
	}
	r.st.ReviewedBy = r.review.Operator
	if !r.review.Approve {
		return r.finish(ctx, IdentityRejected, r.review.Operator, r.review.Reason)
	}
	return r.confirm(ctx, r.review.Operator)
}

// awaitReview waits for the operator until due; a withdrawn consent stops the wait until
// it is given again, or closes the case (r.closed). ok is false when due passed without
// a review.
func (r *identity) awaitReview(ctx workflow.Context, due time.Time) (ok bool, err error) {
	for {
		if ok, err = r.wait(ctx, due, func() bool { return r.review != nil || !r.consent }); err != nil {
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
	r.final = IdentityVerified // from here a message is late
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
	r.final = status
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
