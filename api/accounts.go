package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// accountINN reads and checks the {inn} path value.
func (s *Server) accountINN(w http.ResponseWriter, r *http.Request) (string, bool) {
	inn := r.PathValue("inn")
	if err := domain.ValidateINN("inn", inn, true); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "", []domain.FieldError{err.(domain.FieldError)})
		return "", false
	}
	return inn, true
}

// accountEvent takes a login outcome or security event; it reaches the account's
// workflow, started on the first event (signal-with-start).
func (s *Server) accountEvent(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	var e contract.AccountEvent
	if !decodeBody(w, r, &e) {
		return
	}
	if errs := e.Validate(); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	// The event's time (a lock runs from it): the caller's, never later than its receipt.
	if now := time.Now().UTC(); e.At.IsZero() || e.At.After(now) {
		e.At = now
	}
	id, subject, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	// The subject is the one the id was made of: after a key rotation an existing
	// account keeps its id, and a closed one started again keeps its subject too.
	_, err := s.Temporal.SignalWithStartWorkflow(r.Context(), id, workflows.AccountSignalEvent, e, client.StartWorkflowOptions{
		ID: id, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("account"),
			workflows.SearchStatus.ValueSet(workflows.AccountActive), workflows.SearchSubject.ValueSet(subject)),
	}, workflows.Account, workflows.AccountWorkflowInput{AccountID: id, INN: inn, Policy: s.AccountPolicy})
	if err != nil {
		s.internal(w, "deliver account event", err)
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]string{"event_id": e.EventID})
}

// accountLock answers the lock state: code, label, until when, and which paths are open.
func (s *Server) accountLock(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	id, _, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	v, err := s.Temporal.QueryWorkflow(r.Context(), id, "", workflows.AccountQueryStatus)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// No event yet: never locked.
		WriteJSON(w, http.StatusOK, workflows.AccountStatus{AccountState: workflows.AccountState{Status: workflows.AccountActive,
			Label: workflows.AccountLabels[workflows.AccountActive]}, OpenPaths: []string{}})
		return
	}
	if s.temporalError(w, "read account", err) {
		return
	}
	var st workflows.AccountStatus
	if err := v.Get(&st); err != nil {
		s.internal(w, "decode account", err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

func (s *Server) accountSelfService(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	var req workflows.SelfServiceRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var errs []domain.FieldError
	if err := domain.ValidateName("full_name", req.FullName, true); err != nil {
		errs = append(errs, err.(domain.FieldError))
	}
	if _, err := domain.ParsePassport("passport_series", req.PassportSeries+"000000"); err != nil {
		errs = append(errs, domain.FieldError{Field: "passport_series", Reason: "must be the 4 digits of the passport series"})
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	id, _, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	s.updateAs(w, r, id, workflows.AccountUpdateSelfService, req, &workflows.AccountStatus{})
}

// accountIdentity starts the identity re-verification a suspicious-activity lock needs.
func (s *Server) accountIdentity(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	var req CreateIdentityRequest
	if !decodeBody(w, r, &req) {
		return
	}
	req.Person.INN = inn
	person, errs := req.Validate()
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	if !s.limitIdentity(w, r, s.Subject(inn)) {
		return
	}
	in := workflows.IdentityWorkflowInput{CaseID: workflows.IdentityID(uuid.NewString()), RequestID: requestID(r), Method: req.Method,
		Submission: workflows.IdentitySubmission{Person: person, BankAssertion: req.BankAssertion}, Policy: s.IdentityPolicy}
	if !s.precheckBankNonce(w, r, req.BankAssertion, in.CaseID) {
		return
	}
	id, _, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	if req.Method == contract.MethodESignature {
		var st workflows.AccountStatus
		v, err := s.Temporal.QueryWorkflow(r.Context(), id, "", workflows.AccountQueryStatus)
		if err == nil {
			err = v.Get(&st)
		}
		if s.temporalError(w, "read account", err) {
			return
		}
		if st.IdentityCase != "" {
			writeProblem(w, Problem{Status: http.StatusConflict, Code: "conflict", CurrentStatus: st.Status,
				Detail: "an identity re-verification is already in progress; the proof was not used (its challenge stays valid)"})
			return
		}
		if !takesProofNow(w, st.Status, workflows.AccountAwaitingIdentity, "an identity re-verification") {
			return
		}
		proven, ok := s.verifyESign(w, r, in.CaseID, inn, req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return
		}
		in.Submission = esignSubmission(in.Submission, proven)
	}
	s.updateAs(w, r, id, workflows.AccountUpdateIdentity, in, &workflows.AccountStatus{})
}

func (s *Server) accountSpecialistRequest(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	id, _, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	s.updateAs(w, r, id, workflows.AccountUpdateSpecialist, workflows.SpecialistRequest{At: time.Now().UTC()}, &workflows.AccountStatus{})
}

func (s *Server) accountSpecialistDecision(w http.ResponseWriter, r *http.Request) {
	inn, ok := s.accountINN(w, r)
	if !ok {
		return
	}
	approve, reason, ok := readApproval(w, r)
	if !ok {
		return
	}
	id, _, ok := s.account(w, r, inn)
	if !ok {
		return
	}
	name, arg, out, _, _ := caseAction{Process: procAccount, Action: approveAction(approve), Reason: reason}.update(principal(r))
	s.updateAs(w, r, id, name, arg, out)
}
