package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// accountEvent takes a login outcome or security event; it reaches the account's
// workflow, started on the first event (signal-with-start).
func (s *Server) accountEvent(w http.ResponseWriter, r *http.Request) { accountEventRoute(s, w, r) }

var accountEventRoute = handle(taxpayerINN, (*Server).takeAccountEvent)

func (s *Server) takeAccountEvent(c *call[contract.AccountEvent]) (reply, error) {
	id, subject, err := s.AccountID(c.ctx(), c.INN)
	if err != nil {
		return reply{}, unavailable("find account", err)
	}
	// The event's time is judged by the case service (deliverAccountEvent).
	if err := s.deliverAccountEvent(c.ctx(), id, subject, c.INN, c.Body); err != nil {
		return reply{}, unavailable("deliver account event", err)
	}
	return acceptedReply(map[string]string{"event_id": c.Body.EventID}), nil
}

// accountLock answers the lock state: code, label, until when, and which paths are open.
func (s *Server) accountLock(c *call[none]) (reply, error) {
	id, _, err := s.AccountID(c.ctx(), c.INN)
	if err != nil {
		return reply{}, unavailable("find account", err)
	}
	v, err := s.Temporal.QueryWorkflow(c.ctx(), id, "", workflows.AccountQueryStatus)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// No event yet: never locked.
		return okReply(workflows.AccountStatus{AccountState: workflows.AccountState{Status: workflows.AccountActive,
			Label: workflows.AccountLabels[workflows.AccountActive]}, OpenPaths: []string{}}), nil
	}
	if err != nil {
		return reply{}, readFailed("read account", err)
	}
	var st workflows.AccountStatus
	if err := v.Get(&st); err != nil {
		return reply{}, unavailable("decode account", err)
	}
	return okReply(st), nil
}

// updateAccount sends an update to the taxpayer's account.
func (s *Server) updateAccount(ctx context.Context, inn, name string, arg, out any) (reply, error) {
	id, _, err := s.AccountID(ctx, inn)
	if err != nil {
		return reply{}, unavailable("find account", err)
	}
	return s.update(ctx, id, name, arg, out)
}

// selfService is the taxpayer's own proof for an unblock: name and passport series.
type selfService workflows.SelfServiceRequest

func (req selfService) check() error {
	var errs []domain.FieldError
	if err := domain.ValidateName("full_name", req.FullName, true); err != nil {
		errs = append(errs, err.(domain.FieldError))
	}
	if _, err := domain.ParsePassport("passport_series", req.PassportSeries+"000000"); err != nil {
		errs = append(errs, domain.FieldError{Field: "passport_series", Reason: "must be the 4 digits of the passport series"})
	}
	return invalidFields(errs)
}

func (s *Server) accountSelfService(c *call[selfService]) (reply, error) {
	return s.updateAccount(c.ctx(), c.INN, workflows.AccountUpdateSelfService, workflows.SelfServiceRequest(c.Body), &workflows.AccountStatus{})
}

// accountIdentity starts the identity re-verification a suspicious-activity lock needs.
func (s *Server) accountIdentity(c *call[CreateIdentityRequest]) (reply, error) {
	req, w, r, inn := c.Body, c.w, c.r, c.INN
	req.Person.INN = inn
	person, errs := req.Validate()
	if len(errs) > 0 {
		return reply{}, invalidFields(errs)
	}
	if !s.limitIdentity(w, r, s.Subject(inn)) {
		return reply{}, errAnswered
	}
	in := workflows.IdentityWorkflowInput{CaseID: workflows.IdentityID(uuid.NewString()), RequestID: requestID(r), Method: req.Method,
		Submission: workflows.IdentitySubmission{Person: person, BankAssertion: req.BankAssertion}, Policy: s.IdentityPolicy}
	if !s.precheckBankNonce(w, r, req.BankAssertion, in.CaseID) {
		return reply{}, errAnswered
	}
	id, _, err := s.AccountID(c.ctx(), inn)
	if err != nil {
		return reply{}, unavailable("find account", err)
	}
	if req.Method == contract.MethodESignature {
		var st workflows.AccountStatus
		if err := s.queryCase(c.ctx(), id, workflows.AccountQueryStatus, &st); err != nil {
			return reply{}, readFailed("read account", err)
		}
		if st.IdentityCase != "" {
			return reply{}, &refusal{Problem{Status: http.StatusConflict, Code: "conflict", CurrentStatus: st.Status,
				Detail: "an identity re-verification is already in progress; the proof was not used (its challenge stays valid)"}}
		}
		if !takesProofNow(w, st.Status, workflows.AccountAwaitingIdentity, "an identity re-verification") {
			return reply{}, errAnswered
		}
		proven, ok := s.verifyESign(w, r, in.CaseID, inn, req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return reply{}, errAnswered
		}
		in.Submission = esignSubmission(in.Submission, proven)
	}
	return s.update(c.ctx(), id, workflows.AccountUpdateIdentity, in, &workflows.AccountStatus{})
}

func (s *Server) accountSpecialistRequest(c *call[none]) (reply, error) {
	return s.updateAccount(c.ctx(), c.INN, workflows.AccountUpdateSpecialist, workflows.SpecialistRequest{At: time.Now().UTC()}, &workflows.AccountStatus{})
}

func (s *Server) accountSpecialistDecision(c *call[approval]) (reply, error) {
	id, _, err := s.AccountID(c.ctx(), c.INN)
	if err != nil {
		return reply{}, unavailable("find account", err)
	}
	return s.decide(c.ctx(), c.who(), id, caseAction{Process: procAccount, Action: c.Body.action(), Reason: c.Body.Reason})
}
