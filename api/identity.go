package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/registry"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// Subject is the keyed hash of an INN that identifies a taxpayer's cases in search
// attributes without revealing the INN, under the current version of the subject key
// (TAXFLOW_SUBJECT_KEY, never the payload key): what every new case carries. A search
// for a taxpayer's cases uses subjectQuery, which knows the previous versions too.
func (s *Server) Subject(inn string) string { return s.Subjects.Value(inn) }

// CreateIdentityRequest is the body of POST /v1/identity-verifications.
type CreateIdentityRequest struct {
	Method      string              `json:"method"`
	Person      contract.PersonData `json:"person"`
	Certificate []byte              `json:"certificate,omitempty"` // base64 of PEM or DER, for esignature
	// Proof of possession, for esignature: a challenge nonce (POST
	// /v1/identity-verifications/challenges) and the certificate's signature over it.
	Nonce     string `json:"nonce,omitempty"`
	Signature []byte `json:"signature,omitempty"`
	// BankAssertion, for bank: the partner bank's signed assertion (compact JWS, ES256 or
	// EdDSA) that it identified the person, carrying a challenge nonce (claim "nonce").
	BankAssertion string `json:"bank_assertion,omitempty"`
}

// ResubmitIdentityRequest is the body of POST /v1/identity-verifications/{id}/resubmit:
// corrected person data, or a new certificate with its proof of possession, or both.
type ResubmitIdentityRequest struct {
	Person      *contract.PersonData `json:"person,omitempty"`
	Certificate []byte               `json:"certificate,omitempty"`
	Nonce       string               `json:"nonce,omitempty"`
	Signature   []byte               `json:"signature,omitempty"`
}

var methods = map[string]bool{contract.MethodDocuments: true, contract.MethodESignature: true, contract.MethodBank: true, contract.MethodVideo: true}

// Validate lists every bad field.
func (c CreateIdentityRequest) Validate() (contract.PersonData, []domain.FieldError) {
	p, errs := contract.ValidatePerson(c.Person)
	for i := range errs {
		errs[i].Field = "person." + errs[i].Field
	}
	if !methods[c.Method] {
		errs = append(errs, domain.FieldError{Field: "method", Reason: "must be documents, esignature, bank or video"})
	}
	errs = append(errs, esignFields(c.Method == contract.MethodESignature, c.Certificate, c.Nonce, c.Signature)...)
	switch {
	case c.Method == contract.MethodBank && c.BankAssertion == "":
		errs = append(errs, domain.FieldError{Field: "bank_assertion", Reason: "the bank method needs the partner bank's signed assertion (compact JWS) carrying a challenge nonce (POST /v1/identity-verifications/challenges)"})
	case c.BankAssertion != "" && c.Method != contract.MethodBank:
		errs = append(errs, domain.FieldError{Field: "bank_assertion", Reason: "only the bank method takes a bank assertion"})
	case c.BankAssertion != "":
		if _, err := bankid.Parse(c.BankAssertion); err != nil {
			errs = append(errs, domain.FieldError{Field: "bank_assertion", Reason: "not a partner bank's assertion: " + err.Error()})
		}
	}
	return p, errs
}

// esignFields checks the e-signature parts of a submission: with the method, the
// certificate with its proof of possession (nonce and signature); without it, none of them.
func esignFields(esignature bool, cert []byte, nonce string, sig []byte) []domain.FieldError {
	var errs []domain.FieldError
	switch {
	case !esignature:
		for field, given := range map[string]bool{"certificate": len(cert) > 0, "nonce": nonce != "", "signature": len(sig) > 0} {
			if given {
				errs = append(errs, domain.FieldError{Field: field, Reason: "only the esignature method takes a certificate and its proof"})
			}
		}
		slices.SortFunc(errs, func(a, b domain.FieldError) int { return strings.Compare(a.Field, b.Field) })
	case len(cert) == 0:
		errs = append(errs, domain.FieldError{Field: "certificate", Reason: "the esignature method needs the certificate (.cer, PEM or DER, base64)"})
	case len(cert) > 64<<10:
		errs = append(errs, domain.FieldError{Field: "certificate", Reason: "larger than 64 KB: not a certificate"})
	}
	if esignature && nonce == "" {
		errs = append(errs, domain.FieldError{Field: "nonce", Reason: "a certificate needs its proof of possession: a challenge nonce (POST /v1/identity-verifications/challenges) signed with the certificate's key"})
	}
	if esignature && len(sig) == 0 {
		errs = append(errs, domain.FieldError{Field: "signature", Reason: "the certificate key's signature over the nonce's ASCII bytes (base64)"})
	}
	return errs
}

var identityIDRE = regexp.MustCompile(`^identity-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (s *Server) identityID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !identityIDRE.MatchString(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such identity verification", nil)
		return "", false
	}
	return id, true
}

func (s *Server) createIdentity(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 200 {
		writeError(w, http.StatusBadRequest, "idempotency_key_required", "send an Idempotency-Key header (1-200 characters) so a retried request creates one case", nil)
		return
	}
	var req CreateIdentityRequest
	if !decodeBody(w, r, &req) {
		return
	}
	person, errs := req.Validate()
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	if !s.limitIdentity(w, r, s.Subject(person.INN)) {
		return
	}
	caseID := workflows.IdentityID(caseKey(r))
	if !s.precheckBankNonce(w, r, req.BankAssertion, caseID) {
		return
	}
	tp, found, err := registry.Lookup(r.Context(), s.DB, s.Taxpayers, person.INN)
	switch {
	case err != nil:
		s.internal(w, "read registry", err)
		return
	case !found:
		writeError(w, http.StatusNotFound, "not_found", "no taxpayer with this INN in the registry", nil)
		return
	case !tp.Consent:
		writeError(w, http.StatusConflict, "consent_required", "consent to personal-data processing is not on record: give it first (POST /v1/taxpayers/{inn}/consent)", nil)
		return
	}
	sub := workflows.IdentitySubmission{Person: person, BankAssertion: req.BankAssertion}
	if req.Method == contract.MethodESignature {
		proven, ok := s.verifyESign(w, r, caseID, person.INN, req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return
		}
		sub = esignSubmission(sub, proven)
	}
	hash, err := requestHashOf(req)
	if err != nil {
		s.internal(w, "hash request", err)
		return
	}
	in := workflows.IdentityWorkflowInput{CaseID: caseID, RequestID: requestID(r), RequestSHA256: hash, Method: req.Method,
		Submission: sub, Policy: s.IdentityPolicy}
	_, err = s.Temporal.ExecuteWorkflow(r.Context(), client.StartWorkflowOptions{
		ID: caseID, TaskQueue: s.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("identity"),
			workflows.SearchStatus.ValueSet(workflows.IdentityReceived), workflows.SearchSubject.ValueSet(s.Subject(person.INN))),
	}, workflows.IdentityVerification, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		st, err := s.identityStatus(r, caseID)
		if s.temporalError(w, "read identity verification", err) {
			return
		}
		if st.RequestSHA256 != hash {
			writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request", nil)
			return
		}
		WriteJSON(w, http.StatusOK, st)
	case err != nil:
		s.internal(w, "start identity verification", err)
	default:
		w.Header().Set("Location", "/v1/identity-verifications/"+caseID)
		WriteJSON(w, http.StatusCreated, map[string]any{"case_id": caseID, "status": workflows.IdentityReceived,
			"label": workflows.IdentityLabels[workflows.IdentityReceived]})
	}
}

func (s *Server) identityStatus(r *http.Request, id string) (workflows.IdentityStatus, error) {
	var st workflows.IdentityStatus
	v, err := s.Temporal.QueryWorkflow(r.Context(), id, "", workflows.IdentityQueryStatus)
	if err != nil {
		return st, err
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode identity status: %w", err)
	}
	redactReasons(principal(r), &st)
	return st, nil
}

func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request) {
	id, ok := s.identityID(w, r)
	if !ok {
		return
	}
	st, err := s.identityStatus(r, id)
	if s.temporalError(w, "read identity verification", err) {
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

// uploadIdentityDocument takes a passport scan or photo (PDF, JPG or PNG, ≤ 10 MB). The
// case takes it by an update: one it can no longer use is answered 409 with its status,
// and the upload is removed again.
func (s *Server) uploadIdentityDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := s.identityID(w, r)
	if !ok {
		return
	}
	docID, typ, size, ok := s.storeUpload(w, r, id, docs.Identity)
	if !ok {
		return
	}
	var st workflows.IdentityStatus
	if err := s.updateCase(r.Context(), id, workflows.IdentityUpdateDocument, workflows.DocumentRef{DocID: docID}, &st); err != nil {
		s.dropUpload(r.Context(), contract.IncomingDocumentKey(id, docID))
		s.caseError(w, r, id, "add document", err)
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]any{"doc_id": docID, "type": typ, "size": size})
}

// resubmitIdentity sends corrected data or a new certificate after a mismatch: an update
// the case refuses (409, with its status) unless it waits for a re-submission.
func (s *Server) resubmitIdentity(w http.ResponseWriter, r *http.Request) {
	id, ok := s.identityID(w, r)
	if !ok {
		return
	}
	var req ResubmitIdentityRequest
	if !decodeBody(w, r, &req) {
		return
	}
	var sub workflows.IdentitySubmission
	var errs []domain.FieldError
	if req.Person != nil {
		p, perrs := contract.ValidatePerson(*req.Person)
		for i := range perrs {
			perrs[i].Field = "person." + perrs[i].Field
		}
		errs, sub.Person = perrs, p
	}
	newCert := len(req.Certificate) > 0 || req.Nonce != "" || len(req.Signature) > 0
	if newCert {
		errs = append(errs, esignFields(true, req.Certificate, req.Nonce, req.Signature)...)
	}
	if req.Person == nil && !newCert {
		writeError(w, http.StatusBadRequest, "invalid_request", "send corrected person data or a new certificate with its proof (new documents go to …/documents)", nil)
		return
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	if !s.limitIdentity(w, r, "case:"+id) {
		return
	}
	if newCert {
		st, err := s.identityStatus(r, id)
		if s.temporalError(w, "read identity verification", err) || !takesProofNow(w, st.Status, workflows.IdentityNeedsDocuments, "a re-submission") {
			return
		}
		// The case's taxpayer is not named here (an INN sent with corrected data is not
		// taken): the esign check binds the certificate to the registry's INN and SNILS.
		proven, ok := s.verifyESign(w, r, id, "", req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return
		}
		sub = esignSubmission(sub, proven)
	}
	s.updateAs(w, r, id, workflows.IdentityUpdateResubmit, sub, &workflows.IdentityStatus{})
}

func (s *Server) reviewIdentity(w http.ResponseWriter, r *http.Request) {
	id, ok := s.identityID(w, r)
	if !ok {
		return
	}
	approve, reason, ok := readApproval(w, r)
	if !ok {
		return
	}
	name, arg, out, _, _ := caseAction{Process: procIdent, Action: approveAction(approve), Reason: reason}.update(principal(r))
	s.updateAs(w, r, id, name, arg, out)
}

// setConsent records consent (POST) or its revocation (DELETE) [001:53-67] and tells the
// taxpayer's verifications in progress (a signal: it fans out to every case, and each
// takes it on its main coroutine whatever state it is in): a revocation pauses them (and, not followed by
// consent within the identity policy's ConsentWait, closes them and destroys their
// documents: 152-FZ art. 21 p.5), consent resumes them.
func (s *Server) setConsent(w http.ResponseWriter, r *http.Request) {
	inn := r.PathValue("inn")
	if err := domain.ValidateINN("inn", inn, true); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "", []domain.FieldError{err.(domain.FieldError)})
		return
	}
	granted := r.Method == http.MethodPost
	now := time.Now().UTC()
	rec, ok := s.consentRecord(w, r, granted, now)
	if !ok {
		return
	}
	found, err := store.SetFields(r.Context(), s.DB, s.Taxpayers, map[string]types.AttributeValue{"inn": store.S(inn)}, rec)
	if err != nil {
		s.internal(w, "record consent", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "no taxpayer with this INN in the registry", nil)
		return
	}
	query := fmt.Sprintf("TaxflowProcess = 'identity' AND %s AND ExecutionStatus = 'Running'", s.subjectQuery(inn))
	signalled := 0
	var token []byte
	for {
		page, err := s.Temporal.ListWorkflow(r.Context(), &listRequest{Query: query, NextPageToken: token})
		if err != nil {
			s.internal(w, "list verifications", err)
			return
		}
		for _, ex := range page.Executions {
			err := s.Temporal.SignalWorkflow(r.Context(), ex.Execution.WorkflowId, "", workflows.IdentitySignalConsent, workflows.IdentityConsent{Granted: granted, At: time.Now().UTC()})
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				s.internal(w, "signal consent", err)
				return
			}
			signalled++
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"consent": granted, "at": now, "verifications_notified": signalled})
}

type listRequest = workflowservice.ListWorkflowExecutionsRequest
