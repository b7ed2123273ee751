package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

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

// check is the pipeline's: the route asks Validate again for the person it gives.
func (c CreateIdentityRequest) check() error {
	_, errs := c.Validate()
	return invalidFields(errs)
}

// Validate lists every bad field.
func (c CreateIdentityRequest) Validate() (contract.PersonData, []domain.FieldError) {
	p, errs := personFields(c.Person)
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

// createIdentity starts an identity verification of a registered taxpayer whose consent
// is on record; an e-signature's proof is verified before anything starts.
func (s *Server) createIdentity(c *call[CreateIdentityRequest]) (reply, error) {
	req, w, r := c.Body, c.w, c.r
	person, errs := req.Validate()
	if len(errs) > 0 {
		return reply{}, invalidFields(errs)
	}
	if !s.limitIdentity(w, r, s.Subject(person.INN)) {
		return reply{}, errAnswered
	}
	caseID := workflows.IdentityID(caseKey(r))
	if !s.precheckBankNonce(w, r, req.BankAssertion, caseID) {
		return reply{}, errAnswered
	}
	tp, found, err := registry.Lookup(c.ctx(), s.DB, s.Taxpayers, person.INN)
	switch {
	case err != nil:
		return reply{}, unavailable("read registry", err)
	case !found:
		return reply{}, refuse(http.StatusNotFound, "not_found", "no taxpayer with this INN in the registry")
	case !tp.Consent:
		return reply{}, refuse(http.StatusConflict, "consent_required", "consent to personal-data processing is not on record: give it first (POST /v1/taxpayers/{inn}/consent)")
	}
	sub := workflows.IdentitySubmission{Person: person, BankAssertion: req.BankAssertion}
	if req.Method == contract.MethodESignature {
		proven, ok := s.verifyESign(w, r, caseID, person.INN, req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return reply{}, errAnswered
		}
		sub = esignSubmission(sub, proven)
	}
	hash, err := requestHashOf(req)
	if err != nil {
		return reply{}, unavailable("hash request", err)
	}
	return startCreate(s, c, newCase{id: caseID, process: procIdent, status: workflows.IdentityReceived, subject: s.Subject(person.INN),
		workflow: workflows.IdentityVerification, input: workflows.IdentityWorkflowInput{CaseID: caseID, RequestID: requestID(r),
			RequestSHA256: hash, Method: req.Method, Submission: sub, Policy: s.IdentityPolicy, Owner: createOwner(r)}}, identityCreated(s, caseID))
}

// identityCreated is a new identity verification's answer (createAnswers: a retry's, too).
func identityCreated(_ *Server, caseID string) reply {
	return createdReply("/v1/identity-verifications/"+caseID, map[string]any{"case_id": caseID, "status": workflows.IdentityReceived,
		"label": workflows.IdentityLabels[workflows.IdentityReceived]})
}

func (s *Server) identityStatus(r *http.Request, id string) (workflows.IdentityStatus, error) {
	var st workflows.IdentityStatus
	if err := s.queryCase(r.Context(), id, workflows.IdentityQueryStatus, &st); err != nil {
		return st, err
	}
	redactReasons(principal(r), &st)
	return st, nil
}

func (s *Server) getIdentity(c *call[none]) (reply, error) {
	st, err := s.identityStatus(c.r, c.ID)
	if err != nil {
		return reply{}, readFailed("read identity verification", err)
	}
	return okReply(st), nil
}

// uploadIdentityDocument takes a passport scan or photo (PDF, JPG or PNG, ≤ 10 MB). The
// case takes it by an update: one it can no longer use is answered 409 with its status,
// and the upload is removed again.
func (s *Server) uploadIdentityDocument(c *call[none]) (reply, error) {
	docID, typ, size, ok := s.storeUpload(c.w, c.r, c.ID, docs.Identity)
	if !ok {
		return reply{}, errAnswered
	}
	var st workflows.IdentityStatus
	if err := s.updateCase(c.ctx(), c.ID, workflows.IdentityUpdateDocument, workflows.DocumentRef{DocID: docID}, &st); err != nil {
		s.dropUpload(c.ctx(), contract.IncomingDocumentKey(c.ID, docID))
		return reply{}, attachFailed(c.ID, "add document", err)
	}
	return acceptedReply(map[string]any{"doc_id": docID, "type": typ, "size": size}), nil
}

func (req ResubmitIdentityRequest) check() error {
	var errs []domain.FieldError
	if req.Person != nil {
		_, errs = personFields(*req.Person)
	}
	if req.newCert() {
		errs = append(errs, esignFields(true, req.Certificate, req.Nonce, req.Signature)...)
	}
	if req.Person == nil && !req.newCert() {
		return refuse(http.StatusBadRequest, "invalid_request", "send corrected person data or a new certificate with its proof (new documents go to …/documents)")
	}
	return invalidFields(errs)
}

func (req ResubmitIdentityRequest) newCert() bool {
	return len(req.Certificate) > 0 || req.Nonce != "" || len(req.Signature) > 0
}

// personFields checks person data; the fields are named under "person.".
func personFields(p contract.PersonData) (contract.PersonData, []domain.FieldError) {
	p, errs := contract.ValidatePerson(p)
	for i := range errs {
		errs[i].Field = "person." + errs[i].Field
	}
	return p, errs
}

// resubmitIdentity sends corrected data or a new certificate after a mismatch: an update
// the case refuses (409, with its status) unless it waits for a re-submission.
func (s *Server) resubmitIdentity(c *call[ResubmitIdentityRequest]) (reply, error) {
	req, w, r, id := c.Body, c.w, c.r, c.ID
	var sub workflows.IdentitySubmission
	if req.Person != nil {
		sub.Person, _ = personFields(*req.Person)
	}
	if !s.limitIdentity(w, r, "case:"+id) {
		return reply{}, errAnswered
	}
	if req.newCert() {
		st, err := s.identityStatus(r, id)
		if err != nil {
			return reply{}, readFailed("read identity verification", err)
		}
		if !takesProofNow(w, st.Status, workflows.IdentityNeedsDocuments, "a re-submission") {
			return reply{}, errAnswered
		}
		// The case's taxpayer is not named here (an INN sent with corrected data is not
		// taken): the esign check binds the certificate to the registry's INN and SNILS.
		proven, ok := s.verifyESign(w, r, id, "", req.Certificate, req.Nonce, req.Signature)
		if !ok {
			return reply{}, errAnswered
		}
		sub = esignSubmission(sub, proven)
	}
	// The answer is the case's status, told as GET tells it: the reasons of the mismatch
	// before the re-submission name what the registry holds, and stay with the staff.
	var st workflows.IdentityStatus
	res, err := s.update(c.ctx(), id, workflows.IdentityUpdateResubmit, sub, &st)
	redactReasons(c.who(), &st)
	return res, err
}

func (s *Server) reviewIdentity(c *call[approval]) (reply, error) {
	return s.decide(c.ctx(), c.who(), c.ID, caseAction{Process: procIdent, Action: c.Body.action(), Reason: c.Body.Reason})
}

// grantConsent records consent (POST) and withdrawConsent its revocation (DELETE)
// [001:53-67]; both tell the taxpayer's verifications in progress (a signal: it fans out
// to every case, and each takes it on its main coroutine whatever state it is in): a
// revocation pauses them (and, not followed by consent within the identity policy's
// ConsentWait, closes them and destroys their documents: 152-FZ art. 21 p.5), consent
// resumes them.
func (s *Server) grantConsent(c *call[ConsentRequest]) (reply, error) {
	now := time.Now().UTC()
	p := c.who()
	return s.setConsent(c.ctx(), c.INN, true, now, map[string]any{"consent": true, "consent_at": now, "consent_by": p.ID,
		"consent_tenant": p.Tenant, "consent_channel": c.Body.Channel, "consent_document": c.Body.DocumentID})
}

func (s *Server) withdrawConsent(c *call[none]) (reply, error) {
	_, _ = io.Copy(io.Discard, c.r.Body)
	now := time.Now().UTC()
	p := c.who()
	return s.setConsent(c.ctx(), c.INN, false, now, map[string]any{"consent": false, "consent_withdrawn_at": now,
		"consent_withdrawn_by": p.ID, "consent_withdrawn_tenant": p.Tenant})
}

// setConsent records the consent fields on the taxpayer (who, when, through which
// channel, on which document; or who withdrew it and when) and signals the taxpayer's
// running verifications.
func (s *Server) setConsent(ctx context.Context, inn string, granted bool, now time.Time, rec map[string]any) (reply, error) {
	found, err := store.SetFields(ctx, s.DB, s.Taxpayers, map[string]types.AttributeValue{"inn": store.S(inn)}, rec)
	if err != nil {
		return reply{}, unavailable("record consent", err)
	}
	if !found {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no taxpayer with this INN in the registry")
	}
	query := fmt.Sprintf("TaxflowProcess = 'identity' AND %s AND ExecutionStatus = 'Running'", s.subjectQuery(inn))
	signalled := 0
	var token []byte
	for {
		page, err := s.Temporal.ListWorkflow(ctx, &listRequest{Query: query, NextPageToken: token})
		if err != nil {
			return reply{}, unavailable("list verifications", err)
		}
		for _, ex := range page.Executions {
			err := s.Temporal.SignalWorkflow(ctx, ex.Execution.WorkflowId, "", workflows.IdentitySignalConsent, workflows.IdentityConsent{Granted: granted, At: time.Now().UTC()})
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				return reply{}, unavailable("signal consent", err)
			}
			signalled++
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	return okReply(map[string]any{"consent": granted, "at": now, "verifications_notified": signalled}), nil
}

type listRequest = workflowservice.ListWorkflowExecutionsRequest
