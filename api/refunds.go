package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/registry"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// CreateRefundRequest is the body of POST /v1/refunds; its validation is shared with
// the batch files (contract.RefundRequest).
type CreateRefundRequest = contract.RefundRequest

// MaxRefundKopecks bounds a claim (see contract.MaxRefundKopecks).
const MaxRefundKopecks = contract.MaxRefundKopecks

// caseIDRE is a refund's case id: refund-<uuid>, and refund-<uuid>-<n> for the refund
// an appeal's decision n starts for what it confirms beyond the declaration's earlier
// refunds (workflows declaration-refund-difference).
var caseIDRE = regexp.MustCompile(`^refund-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(-[1-9][0-9]{0,3})?$`)

// jsonKind names what a field must hold: a kopeck amount is a whole number, never 1.5.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number (no fraction, no exponent)"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return "an object"
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s must be a %s", te.Field, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field") {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "unreadable body"
}

// createRefund starts a refund for a claim the registry and the ledger back.
func (s *Server) createRefund(c *call[CreateRefundRequest]) (reply, error) {
	req := c.Body
	// The middleware started these checks from the same body while it wrote the
	// idempotency record; without it (or for another body) they run here.
	v, _ := awaitPrecheck(c.ctx()).(*claimVerdict)
	if v == nil || v.req != factsOf(req) {
		v = s.checkRefundClaim(c.ctx(), req)
	}
	if v.status != 0 {
		return reply{}, refuse(v.status, v.code, v.msg, v.fields...)
	}
	caseID := workflows.RefundID(caseKey(c.r))
	requestHash, err := requestHashOf(req)
	if err != nil {
		return reply{}, unavailable("hash request", err)
	}
	return startCreate(s, c, newCase{id: caseID, process: procRefund, status: workflows.RefundReceived, subject: s.Subject(req.INN),
		workflow: workflows.Refund, input: workflows.RefundWorkflowInput{CaseID: caseID, INN: req.INN, Period: req.Period, Amount: req.Amount,
			Reason: req.Reason, RequestID: requestID(c.r), RequestSHA256: requestHash, CreatedBy: c.who().ID, Policy: s.Policy, Owner: createOwner(c.r)}},
		refundCreated(s, caseID))
}

// refundCreated is a new refund's answer (createAnswers: a retry's, too).
func refundCreated(s *Server, caseID string) reply {
	return createdReply("/v1/refunds/"+caseID, map[string]any{"case_id": caseID, "status": workflows.RefundReceived,
		"label": workflows.RefundLabels[workflows.RefundReceived], "deadline_days": s.Policy.DeadlineDays})
}

// claimFacts is what a claim's checks depend on.
type claimFacts struct {
	INN, BIK, Account string
	Period            int
}

func factsOf(c CreateRefundRequest) claimFacts {
	return claimFacts{INN: c.INN, BIK: c.BIK, Account: c.Account, Period: c.Period}
}

// claimVerdict is the outcome of a claim's checks: status 0 when it may start.
type claimVerdict struct {
	req    claimFacts
	status int
	code   string
	msg    string
	fields []domain.FieldError
}

// refundPrecheck runs a claim's checks from the decoded claim, for the idempotency
// middleware to start early; nil when it is not a valid claim (the handler answers 400).
func (s *Server) refundPrecheck(ctx context.Context, v any) any {
	req, ok := v.(*CreateRefundRequest)
	if !ok || len(req.Validate(time.Now())) > 0 {
		return nil
	}
	return s.checkRefundClaim(ctx, *req)
}

// checkRefundClaim refuses, before anything starts, a claim for a taxpayer the registry
// does not know or for a period in which the ledger holds no payment of this taxpayer (a
// period that is someone else's, or nobody's: nothing can be refunded there), and a claim
// whose bank requisites differ from the verified ones. A claim's facts once found are
// kept (factCache, see hotpath.go); the requisites are always read fresh.
func (s *Server) checkRefundClaim(ctx context.Context, req CreateRefundRequest) *claimVerdict {
	v := &claimVerdict{req: factsOf(req)}
	factKey := req.INN + "#" + strconv.Itoa(req.Period)
	_, known := s.hot().facts.get(factKey)
	var (
		tp                 contract.Taxpayer
		found, paid        bool
		lookupErr, ledgErr error
		wg                 sync.WaitGroup
	)
	if !known || req.Account != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tp, found, lookupErr = registry.Lookup(ctx, s.DB, s.Taxpayers, req.INN)
		}()
	}
	if !known {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var entries []contract.LedgerEntry
			if ledgErr = store.QueryAll(ctx, s.DB, s.Ledger, "inn", req.INN, &entries); ledgErr == nil {
				paid = slices.ContainsFunc(entries, func(e contract.LedgerEntry) bool { return e.Period == req.Period && e.Kind == "payment" })
			}
		}()
	}
	wg.Wait()
	switch {
	case lookupErr != nil:
		v.status, v.code, v.msg = http.StatusServiceUnavailable, "unavailable", "the registry is unavailable; retry later"
	case !known && ledgErr != nil:
		v.status, v.code, v.msg = http.StatusServiceUnavailable, "unavailable", "the ledger is unavailable; retry later"
	case !known && !found:
		v.status, v.code, v.msg = http.StatusUnprocessableEntity, "unknown_taxpayer", "the claim names no registered taxpayer"
		v.fields = []domain.FieldError{{Field: "inn", Reason: "no taxpayer with this INN in the registry"}}
	case !known && !paid:
		v.status, v.code, v.msg = http.StatusUnprocessableEntity, "no_payments_in_period", "the taxpayer paid nothing in this period, so nothing can be refunded for it"
		v.fields = []domain.FieldError{{Field: "period", Reason: fmt.Sprintf("this taxpayer has no payments for %d", req.Period)}}
	case req.Account != "" && !found:
		v.status, v.code, v.msg = http.StatusUnprocessableEntity, "unknown_taxpayer", "the claim names no registered taxpayer"
		v.fields = []domain.FieldError{{Field: "inn", Reason: "no taxpayer with this INN in the registry"}}
	case req.Account != "" && (tp.Bank == nil || tp.Bank.BIK != req.BIK || tp.Bank.Account != req.Account):
		v.status, v.code, v.msg = http.StatusConflict, "requisites_mismatch", "the bank requisites differ from the verified ones on record; change them in the cabinet first"
	}
	if !known && found && paid {
		s.hot().facts.put(factKey, struct{}{}, time.Time{})
	}
	return v
}

// refundStatus asks the case for its status, and corrects it by the case's record when
// the run is behind it (behindRecord).
func (s *Server) refundStatus(ctx context.Context, id string) (workflows.RefundStatus, error) {
	var st workflows.RefundStatus
	record := s.readRefundRecord(ctx, id)
	v, err := s.Temporal.QueryWorkflow(ctx, id, "", workflows.RefundQueryStatus)
	if err != nil {
		return st, queryErr{err, record}
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode refund status: %w", err)
	}
	if behindRecord(&st, <-record) {
		s.Log.Warn().Str("case_id", id).Int64("version", st.Version).Msg("the case's run is behind its record (reset?): answered from the record")
		if err := s.fromJournal(ctx, id, &st); err != nil {
			return st, fmt.Errorf("read the journal of a case behind its record: %w", err)
		}
	}
	if st.Status == "" { // queried before its first record: it has been received
		st.Status, st.Label = workflows.RefundReceived, workflows.RefundLabels[workflows.RefundReceived]
	}
	return st, nil
}

func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 100 {
		return id
	}
	return uuid.NewString()
}

func (s *Server) getRefund(c *call[none]) (reply, error) { return s.refundReply(c.ctx(), c.ID) }

// refundReply answers 200 with the refund's status.
func (s *Server) refundReply(ctx context.Context, id string) (reply, error) {
	st, err := s.readRefund(ctx, id)
	if err != nil {
		return reply{}, readFailed("read refund", err)
	}
	return okReply(st), nil
}

// temporalError answers for a failed Temporal call; it reports whether there was one.
func (s *Server) temporalError(w http.ResponseWriter, what string, err error) bool {
	if err == nil {
		return false
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		writeError(w, http.StatusNotFound, "not_found", "no such case", nil)
		return true
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case "Conflict":
			if late, ok := workflows.AsLate(err); ok {
				writeProblem(w, Problem{Status: http.StatusConflict, Code: "conflict", Detail: app.Message(), CurrentStatus: late.Status})
				return true
			}
			writeError(w, http.StatusConflict, "conflict", app.Message(), nil)
			return true
		case "InvalidInput":
			writeError(w, http.StatusBadRequest, "invalid_request", app.Message(), nil)
			return true
		case "Rejected":
			writeError(w, http.StatusUnprocessableEntity, "rejected", app.Message(), nil)
			return true
		}
	}
	s.internal(w, what, err)
	return true
}

func (s *Server) internal(w http.ResponseWriter, what string, err error) {
	s.Log.Error().Err(err).Str("op", what).Msg("request failed")
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the service could not complete the request; retry later", nil)
}

var docIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,79}$`)

// storeUpload takes a file as the request body (at most 10 MB), judges it by its bytes
// for the purpose, and streams it to incoming/<case>/<doc> (streamDocument). A refused
// file stores nothing. ok is false when an answer has been written.
func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, id string, purpose docs.Purpose) (docID string, typ docs.Type, size int64, ok bool) {
	docID = r.URL.Query().Get("doc_id")
	if docID == "" {
		docID = uuid.NewString()
	}
	if !docIDRE.MatchString(docID) {
		writeError(w, http.StatusBadRequest, "invalid_request", "doc_id: lower-case letters, digits and '-'", nil)
		return "", "", 0, false
	}
	_, typ, size, ok = s.streamDocument(w, r, purpose, FileBodyLimit, func(docs.Type) (string, bool) {
		if _, err := s.Temporal.DescribeWorkflowExecution(r.Context(), id, ""); s.temporalError(w, "find case", err) {
			return "", false
		}
		return contract.IncomingDocumentKey(id, docID), true
	})
	return docID, typ, size, ok
}

// uploadDocument takes a supporting document and hands it to the case. The case answers
// (an update with a validator): 202 once it has taken the document, 409 with
// current_status when it can no longer use one (decided, paid, closed…); a refused
// upload is removed from incoming/.
func (s *Server) uploadDocument(c *call[none]) (reply, error) {
	docID, typ, size, ok := s.storeUpload(c.w, c.r, c.ID, docs.Supporting)
	if !ok || !s.handDocument(c.w, c.r, c.ID, docID) {
		return reply{}, errAnswered
	}
	return acceptedReply(map[string]any{"doc_id": docID, "type": typ, "size": size}), nil
}

// handDocument sends the document update; ok is false when an answer has been written.
// The case answers once it has stored the document, which may take a while when its
// steps are retrying: once the update is accepted (the validator passed, so the case has
// the document in its history and will store it), a slow answer is still a 202, and the
// upload stays for the case to take. Only a refusal, or an update that was never
// accepted, removes the upload.
func (s *Server) handDocument(w http.ResponseWriter, r *http.Request, id, docID string) bool {
	accepted, ok := s.updateAccepted(w, r, id, workflows.RefundUpdateDocument, workflows.DocumentRef{DocID: docID}, &workflows.RefundStatus{})
	if ok || accepted {
		return true
	}
	// The case did not take it: nothing of it stays in incoming/ (best effort; the
	// retention sweep removes what is left).
	key := contract.IncomingDocumentKey(id, docID)
	if _, err := s.S3.DeleteObject(context.WithoutCancel(r.Context()), &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		s.Log.Warn().Err(err).Str("op", "remove refused upload").Msg("request cleanup failed")
	}
	return false
}

// presignRequest asks for an upload URL for a file of the declared size.
type presignRequest struct {
	Size int64 `json:"size_bytes"`
}

func (p presignRequest) check() error {
	if p.Size <= 0 || p.Size > docs.MaxSize {
		return badField(domain.FieldError{Field: "size_bytes", Reason: "must be 1 to 10485760 bytes (10 MB)"})
	}
	return nil
}

// presignDocument gives a presigned PUT URL for a file of the declared size: S3 refuses
// an upload of any other size, so the 10 MB limit holds without the API in the path.
func (s *Server) presignDocument(c *call[presignRequest]) (reply, error) {
	id := c.ID
	if _, err := s.Temporal.DescribeWorkflowExecution(c.ctx(), id, ""); err != nil {
		return reply{}, readFailed("find case", err)
	}
	docID := uuid.NewString()
	key := contract.IncomingDocumentKey(id, docID)
	ps, err := s3.NewPresignClient(s.S3).PresignPutObject(c.ctx(), &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key,
		ContentLength: aws.Int64(c.Body.Size)}, s3.WithPresignExpires(15*time.Minute))
	if err != nil {
		return reply{}, unavailable("presign upload", err)
	}
	return okReply(map[string]any{"doc_id": docID, "method": ps.Method, "url": ps.URL, "headers": ps.SignedHeader,
		"complete": "/v1/refunds/" + id + "/documents/" + docID + "/complete", "expires_in_seconds": 900}), nil
}

// completeDocument tells the case that a presigned upload has finished.
func (s *Server) completeDocument(c *call[none]) (reply, error) {
	docID := c.r.PathValue("doc")
	if !docIDRE.MatchString(docID) {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no such upload")
	}
	key := contract.IncomingDocumentKey(c.ID, docID)
	if _, err := s.S3.HeadObject(c.ctx(), &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no upload with this doc_id has arrived")
	}
	if !s.handDocument(c.w, c.r, c.ID, docID) {
		return reply{}, errAnswered
	}
	return acceptedReply(map[string]any{"doc_id": docID}), nil
}

func (s *Server) decideRefund(c *call[approval]) (reply, error) {
	return s.decide(c.ctx(), c.who(), c.ID, caseAction{Process: procRefund, Action: c.Body.action(), Reason: c.Body.Reason})
}

func (s *Server) withdrawRefund(c *call[reasonBody]) (reply, error) {
	return s.update(c.ctx(), c.ID, workflows.RefundUpdateWithdraw, workflows.RefundWithdrawal{Reason: c.Body.Reason}, &workflows.RefundStatus{})
}

// updateRefundErr answers an update's error: 409 with the status for a closed case or a
// late message, the problem of its type otherwise. It is true when err is nil.
func (s *Server) updateRefundErr(ctx context.Context, w http.ResponseWriter, id, name string, err error) bool {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		if _, derr := s.Temporal.DescribeWorkflowExecution(ctx, id, ""); derr == nil {
			p := Problem{Status: http.StatusConflict, Code: "conflict", Detail: "the case is closed"}
			if st, qerr := s.closedStatus(ctx, id); qerr == nil {
				p.Detail, p.CurrentStatus = "the case is closed: it is "+st, st
			} else {
				s.Log.Warn().Err(qerr).Str("op", name).Msg("status of a closed case unavailable")
			}
			writeProblem(w, p)
			return false
		}
	}
	return !s.temporalError(w, name, err)
}

// stampTime sets the time a message was accepted on the messages whose content runs from
// it (a term, a deadline), so that a reset case that takes the message again writes the
// same content. Every update the API sends passes here (sendUpdate): a time a client sent
// is overwritten.
func stampTime(arg any, now time.Time) any {
	switch m := arg.(type) {
	case workflows.DeclarationDecision:
		m.At = now
		return m
	case workflows.DocumentRequest:
		m.At = now
		return m
	case workflows.Appeal:
		m.At = now
		return m
	case workflows.SpecialistRequest:
		m.At = now
		return m
	case workflows.DeclarationSubmission:
		m.At = now
		return m
	case workflows.IdentitySubmission:
		m.At = now
		return m
	case workflows.DocumentRef:
		m.At = now
		return m
	}
	return arg
}

// closedStatus reads the status of a case that has finished, whatever its process: every
// case workflow answers the "status" query with its status under "status".
func (s *Server) closedStatus(ctx context.Context, id string) (string, error) {
	if strings.HasPrefix(id, "refund-") {
		st, err := s.readRefund(ctx, id)
		return st.Status, err
	}
	v, err := s.Temporal.QueryWorkflow(ctx, id, "", workflows.RefundQueryStatus)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := v.Get(&st); err != nil {
		return "", fmt.Errorf("decode case status: %w", err)
	}
	if st.Status == "" {
		return "", errors.New("the case reports no status")
	}
	return st.Status, nil
}

// documentAnswerWait is how long an upload waits for the case's answer once the case has
// accepted the document; past it the answer is 202 and the case goes on storing it.
const documentAnswerWait = 20 * time.Second

// updateAccepted is updateRefund for an update whose effect may come late: it waits for
// the case to accept the update (the validator), then for its answer at most
// documentAnswerWait. accepted is true when the case took the update and has not (yet)
// refused it; ok is true when the answer was a success (nothing written).
func (s *Server) updateAccepted(w http.ResponseWriter, r *http.Request, id, name string, arg, out any) (accepted, ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), updateTimeout)
	defer cancel()
	h, err := s.sendUpdate(ctx, id, name, arg, client.WorkflowUpdateStageAccepted)
	if err != nil {
		return false, s.updateRefundErr(ctx, w, id, name, err)
	}
	wait, cancelWait := context.WithTimeout(r.Context(), documentAnswerWait)
	defer cancelWait()
	err = h.Get(wait, out)
	if err != nil && wait.Err() != nil && r.Context().Err() == nil {
		s.Log.Info().Str("op", name).Msg("the case accepted the update and answers later")
		return true, true
	}
	if err != nil {
		return false, s.updateRefundErr(ctx, w, id, name, err)
	}
	return true, true
}

// reasonBody is a body that carries only a reason (free text the case keeps).
type reasonBody struct {
	Reason string `json:"reason"`
}

func (b reasonBody) check() error { return reasonFits(b.Reason) }

// retryPayout asks a case whose payout failed to try again. It is an update: the case
// answers at once whether it is waiting for one (409 otherwise), so a retry is never lost.
func (s *Server) retryPayout(c *call[reasonBody]) (reply, error) {
	return s.decide(c.ctx(), c.who(), c.ID, caseAction{Process: procRefund, Action: ActRetry, Reason: c.Body.Reason})
}

// reasonFits refuses (400 naming the field) free text longer than a case keeps.
func reasonFits(reason string) error { return textFits("reason", reason) }

// textFits refuses (400 naming the field) free text longer than a case keeps: the API's
// routes and the console's forms bound the same text alike.
func textFits(field, text string) error {
	if utf8.RuneCountInString(text) <= workflows.MaxReasonChars {
		return nil
	}
	return invalidFields([]domain.FieldError{{Field: field, Reason: fmt.Sprintf("at most %d characters", workflows.MaxReasonChars)}})
}

// journal returns the case's audit journal.
func (s *Server) journal(c *call[none]) (reply, error) {
	entries, err := audit.Journal(c.ctx(), s.DB, s.AuditTable, c.ID)
	if err != nil {
		return reply{}, unavailable("read journal", err)
	}
	if len(entries) == 0 {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no such refund case")
	}
	return okReply(map[string]any{"case_id": c.ID, "entries": entries}), nil
}

// approval is a human decision's body: {"approve": true|false, "reason": "…"}.
type approval struct {
	Approve *bool  `json:"approve"`
	Reason  string `json:"reason"`
}

func (a approval) check() error {
	if a.Approve == nil {
		return badField(domain.FieldError{Field: "approve", Reason: "must be true or false"})
	}
	return reasonFits(a.Reason)
}

// action is the decision's action (caseAction).
func (a approval) action() string { return approveAction(*a.Approve) }
