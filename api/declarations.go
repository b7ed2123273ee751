package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"golang.org/x/sync/errgroup"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/tasks"
	"github.com/taxflow/taxflow/workflows"
)

var declarationIDRE = regexp.MustCompile(`^declaration-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// readDeclaration takes the body as JSON or XML (by Content-Type) and checks it can be read.
func readDeclaration(w http.ResponseWriter, r *http.Request) (body []byte, format string, ok bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/xml", "text/xml":
		format = "xml"
	case "application/json", "":
		format = "json"
	default:
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the declaration as application/json or application/xml", nil)
		return nil, "", false
	}
	// The declaration is read whole, unlike a document: it is parsed here (INN, refund
	// claimed) and hashed for idempotency, and it is small (a 3-НДФЛ is tens of KB);
	// FileBodyLimit bounds what one request can make the API hold.
	body, ok = readBody(w, r, FileBodyLimit)
	if !ok {
		return nil, "", false
	}
	d, err := ndfl.Parse(body, format)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_declaration", err.Error(), nil)
		return nil, "", false
	}
	if err := domain.ValidateINN("inn", d.INN, true); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "", []domain.FieldError{err.(domain.FieldError)})
		return nil, "", false
	}
	return body, format, true
}

func (s *Server) putDeclaration(r *http.Request, id, version, format string, body []byte) (workflows.DeclarationSubmission, error) {
	key := fmt.Sprintf("declarations/%s/%s.%s", id, version, format)
	ct := map[string]string{"json": "application/json", "xml": "application/xml"}[format]
	_, err := s.S3.PutObject(r.Context(), &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(body),
		ContentType: aws.String(ct), ServerSideEncryption: s3types.ServerSideEncryptionAes256})
	return workflows.DeclarationSubmission{Key: key, Format: format}, err
}

// createHeaderChecks are a create's header checks that the idempotency middleware runs
// before it reserves the key (and the handler again, for a request without a key).
var createHeaderChecks = map[string]func(http.ResponseWriter, *http.Request) bool{
	"POST /v1/declarations": func(w http.ResponseWriter, r *http.Request) bool { _, _, ok := confirmation(w, r); return ok },
}

// confirmation reads and checks X-Confirmation-Method and X-Confirmation-Reference (the
// reference's format depends on the method: contract.ValidateConfirmation); ok is false
// when a 400 naming the header has been written.
func confirmation(w http.ResponseWriter, r *http.Request) (method, reference string, ok bool) {
	method, reference = r.Header.Get("X-Confirmation-Method"), r.Header.Get("X-Confirmation-Reference")
	if errs := contract.ValidateConfirmation("X-Confirmation-Method", "X-Confirmation-Reference", method, reference); len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "the declaration's confirmation is missing or malformed", errs)
		return "", "", false
	}
	return method, reference, true
}

// createDeclaration submits a 3-НДФЛ. The confirmation (qualified e-signature or SMS code,
// both accepted [002:322, 004:127]) comes in X-Confirmation-Method and -Reference.
func (s *Server) createDeclaration(c *call[none]) (reply, error) {
	w, r := c.w, c.r
	method, reference, ok := confirmation(w, r)
	if !ok {
		return reply{}, errAnswered
	}
	body, format, ok := readDeclaration(w, r)
	if !ok {
		return reply{}, errAnswered
	}
	d, _ := ndfl.Parse(body, format)
	id := workflows.DeclarationID(caseKey(r))
	digest := sha256.Sum256(append(body, method...))
	hash := hex.EncodeToString(digest[:])
	// The document is stored under a name of its own content: a second request with this
	// key (answered 422 if its body differs) can never replace the one its case reads.
	sub, err := s.putDeclaration(r, id, "v1-"+hash[:16], format, body)
	if err != nil {
		return reply{}, unavailable("store declaration", err)
	}
	return startCreate(s, c, newCase{id: id, process: procDecl, status: workflows.DeclarationReceived, subject: s.Subject(d.INN),
		workflow: workflows.Declaration, input: workflows.DeclarationWorkflowInput{CaseID: id, INN: d.INN, RequestID: requestID(r),
			RequestSHA256: hash, Submission: sub, Confirmation: method, ConfirmationReference: reference, ClaimsRefund: d.DeclaredRefund > 0,
			Policy: s.DeclarationPolicy, Owner: createOwner(r)}}, declarationCreated(s, id))
}

// declarationCreated is a new declaration's answer (createAnswers: a retry's, too).
func declarationCreated(_ *Server, id string) reply {
	return createdReply("/v1/declarations/"+id, map[string]any{"case_id": id, "status": workflows.DeclarationReceived,
		"label": workflows.DeclarationLabels[workflows.DeclarationReceived]})
}

func (s *Server) declarationStatus(r *http.Request, id string) (workflows.DeclarationStatus, error) {
	var st workflows.DeclarationStatus
	return st, s.queryCase(r.Context(), id, workflows.DeclarationQueryStatus, &st)
}

// declarationReply answers 200 with the declaration's status.
func (s *Server) declarationReply(r *http.Request, id string) (reply, error) {
	st, err := s.declarationStatus(r, id)
	if err != nil {
		return reply{}, readFailed("read declaration", err)
	}
	return okReply(st), nil
}

func (s *Server) getDeclaration(c *call[none]) (reply, error) { return s.declarationReply(c.r, c.ID) }

// correctDeclaration files a corrected (уточнённая) declaration (Tax Code art. 81). Before
// a decision it is always taken: after failed checks it is what the taxpayer was asked
// for; during the desk review it ends the running review and starts a new one with a new
// term (art. 88 p.9.1). The answer is the same case with its new review (200); after a
// decision, 409: that is a new declaration.
func (s *Server) correctDeclaration(c *call[none]) (reply, error) {
	body, format, ok := readDeclaration(c.w, c.r)
	if !ok {
		return reply{}, errAnswered
	}
	st, err := s.declarationStatus(c.r, c.ID)
	if err != nil {
		return reply{}, readFailed("read declaration", err)
	}
	if st.Decisions > 0 {
		return reply{}, refuse(http.StatusConflict, "conflict", "a decision has been taken on this declaration: file a new declaration for the period")
	}
	// Each correction gets its own object: two corrections sent at once never overwrite
	// each other, and the workflow takes one and refuses the other.
	sub, err := s.putDeclaration(c.r, c.ID, fmt.Sprintf("v%d-%s", st.Versions+1, uuid.NewString()[:8]), format, body)
	if err != nil {
		return reply{}, unavailable("store declaration", err)
	}
	return s.update(c.ctx(), c.ID, workflows.DeclarationUpdateCorrect, sub, &workflows.DeclarationStatus{})
}

// declarationDocuments takes attachments (PDF, DOCX or XML); while an inspector waits
// for documents, the upload answers the request.
func (s *Server) declarationDocuments(c *call[none]) (reply, error) {
	w, r, id := c.w, c.r, c.ID
	docID := uuid.NewString()
	key, typ, _, ok := s.streamDocument(w, r, docs.Attachment, FileBodyLimit, func(typ docs.Type) (string, bool) {
		if _, err := s.Temporal.DescribeWorkflowExecution(r.Context(), id, ""); s.temporalError(w, "find declaration", err) {
			return "", false
		}
		return "declarations/" + id + "/attachments/" + docID + "." + string(typ), true
	})
	if !ok {
		return reply{}, errAnswered
	}
	// The case decides whether the attachment answers an open request, in one update: no
	// status read first, so an answer never races the request's term.
	var res workflows.AttachmentResult
	if err := s.updateCase(r.Context(), id, workflows.DeclarationUpdateAttach, workflows.DeclarationAttachment{Key: key}, &res); err != nil {
		s.dropUpload(r.Context(), key)
		return reply{}, attachFailed(id, "attach", err)
	}
	return acceptedReply(map[string]any{"doc_id": docID, "type": typ, "answers_request": res.AnswersRequest}), nil
}

// caseError answers a failed updateCase like updateAs does: a case that has finished is
// a conflict, not "not found".
func (s *Server) caseError(w http.ResponseWriter, r *http.Request, id, what string, err error) {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		if _, derr := s.Temporal.DescribeWorkflowExecution(r.Context(), id, ""); derr == nil {
			writeError(w, http.StatusConflict, "conflict", "the case is closed", nil)
			return
		}
	}
	s.temporalError(w, what, err)
}

// dropUpload removes an upload the case refused, so nothing half-taken remains; a failure
// is logged.
func (s *Server) dropUpload(ctx context.Context, key string) {
	if _, err := s.S3.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: &s.Bucket, Key: &key}); err != nil {
		s.Log.Warn().Err(err).Msg("remove a refused upload")
	}
}

// documentsRequest is an inspector's request for documents or explanations.
type documentsRequest struct {
	What string `json:"what"`
	Kind string `json:"kind"` // explanations (5 working days) or documents (10, the default)
}

// check bounds what is asked for as the console does (consoleDecide): the case keeps it.
func (q documentsRequest) check() error { return textFits("what", q.What) }

func (s *Server) requestDeclarationDocuments(c *call[documentsRequest]) (reply, error) {
	return s.decide(c.ctx(), c.who(), c.ID, caseAction{Process: procDecl, Action: ActRequest, What: c.Body.What, Kind: c.Body.Kind})
}

// declarationDecision is an inspector's decision on a declaration.
type declarationDecision struct {
	Decision      string `json:"decision"`
	RefundKopecks int64  `json:"refund_kopecks"` // partly_confirmed: the refund confirmed
	Grounds       string `json:"grounds"`
}

// check bounds the grounds as the console does (consoleDecide): the case keeps them.
func (d declarationDecision) check() error { return textFits("grounds", d.Grounds) }

func (s *Server) decideDeclaration(c *call[declarationDecision]) (reply, error) {
	return s.decide(c.ctx(), c.who(), c.ID, caseAction{Process: procDecl, Action: ActDecide, Decision: c.Body.Decision,
		RefundKopecks: c.Body.RefundKopecks, Reason: c.Body.Grounds})
}

// appeal is a taxpayer's appeal of a decision (workflows.Appeal: its time is stamped).
type appeal workflows.Appeal

func (a appeal) check() error { return textFits("reason", a.Reason) }

func (s *Server) appealDeclaration(c *call[appeal]) (reply, error) {
	return s.update(c.ctx(), c.ID, workflows.DeclarationUpdateAppeal, workflows.Appeal(c.Body), &workflows.DeclarationStatus{})
}

// decisionDocument answers a short-lived presigned URL of the latest decision document,
// downloaded as an attachment (downloadURL).
func (s *Server) decisionDocument(c *call[none]) (reply, error) {
	st, err := s.declarationStatus(c.r, c.ID)
	if err != nil {
		return reply{}, readFailed("read declaration", err)
	}
	if st.DecisionKey == "" {
		return reply{}, refuse(http.StatusNotFound, "not_found", "no decision yet")
	}
	const ttl = 5 * time.Minute
	url, err := s.downloadURL(c.ctx(), st.DecisionKey, "decision-"+c.ID+".pdf", ttl)
	if err != nil {
		return reply{}, unavailable("presign decision", err)
	}
	return okReply(map[string]any{"url": url, "expires_in_seconds": int(ttl.Seconds()), "decision": st.Decision}), nil
}

// Task is one human step waiting, as GET /v1/tasks answers it.
type Task struct {
	CaseID  string `json:"case_id"`
	Process string `json:"process"`
	Status  string `json:"status"`
	Label   string `json:"label,omitempty"`
	// Since is when the case's record last changed (it entered the step, or was
	// escalated in it): the projection's updated_at.
	Since     time.Time  `json:"started"`
	Due       *time.Time `json:"due,omitempty"`
	Escalated bool       `json:"escalated,omitempty"`
}

const (
	tasksDefaultLimit = 100
	tasksMaxLimit     = 500
)

// deadlineFilter turns a deadline filter into the query's bound: overdue (due by now),
// 3d / week (due before the end of the 3rd / 7th day from today, Moscow time, overdue
// included), escalated. ok is false for an unknown filter.
func deadlineFilter(q *tasks.Query, filter string, now time.Time) bool {
	switch filter {
	case "":
	case "overdue":
		q.Before = now.Add(time.Nanosecond) // due ≤ now: overdue (countdown)
	case "escalated":
		q.Escalated = true
	case "3d", "week":
		days := map[string]int{"3d": 3, "week": 7}[filter]
		today := now.In(calendar.Moscow)
		q.Before = time.Date(today.Year(), today.Month(), today.Day()+days+1, 0, 0, 0, 0, calendar.Moscow)
	default:
		return false
	}
	return true
}

// tasks lists the open human steps of a role, from the case projection's task indexes
// (internal/tasks), in deadline order, a page at a time.
func (s *Server) tasks(c *call[none]) (reply, error) {
	v := c.r.URL.Query()
	role := v.Get("role")
	if _, ok := tasks.Roles[role]; !ok {
		return reply{}, badField(domain.FieldError{Field: "role", Reason: "must be inspector, reviewer, specialist or operator"})
	}
	q := tasks.Query{Role: role, Process: v.Get("process"), Limit: tasksDefaultLimit, Cursor: v.Get("cursor")}
	var errs []domain.FieldError
	if q.Process != "" && !slices.ContainsFunc(tasks.Roles[role], func(st tasks.Step) bool { return st.Process == q.Process }) {
		errs = append(errs, domain.FieldError{Field: "process", Reason: "must be a process with a human step of the role"})
	}
	if !deadlineFilter(&q, v.Get("deadline"), time.Now()) {
		errs = append(errs, domain.FieldError{Field: "deadline", Reason: "must be overdue, escalated, 3d or week"})
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > tasksMaxLimit {
			errs = append(errs, domain.FieldError{Field: "limit", Reason: fmt.Sprintf("must be 1 to %d", tasksMaxLimit)})
		}
		q.Limit = n
	}
	switch v.Get("last") {
	case "", "false":
	case "true":
		q.Last = true
	default:
		errs = append(errs, domain.FieldError{Field: "last", Reason: "must be true or false"})
	}
	if len(errs) > 0 {
		return reply{}, refuse(http.StatusBadRequest, "invalid_request", "", errs...)
	}
	page, err := s.taskPage(c.ctx(), c.who(), q)
	if errors.Is(err, tasks.ErrCursor) {
		return reply{}, badField(domain.FieldError{Field: "cursor", Reason: "not a cursor this list gave"})
	}
	if err != nil {
		return reply{}, unavailable("list tasks", err)
	}
	out := map[string]any{"role": role, "tasks": page.Tasks}
	if page.Next != "" {
		out["next"] = page.Next
	}
	if page.Prev != "" {
		out["prev"] = page.Prev
	}
	return okReply(out), nil
}

// taskList reads the task indexes of the case projection.
func (s *Server) taskList() tasks.Lister { return tasks.Lister{DB: s.DB, Table: s.Cases} }

// taskPage is one page of a role's task list as the principal may see it: tax-office
// staff bound to no tenant every tenant's cases (by_task); anyone else only the cases
// of the tenant it acts for (by_tenant_task, its partition chosen from the principal, so
// no cursor or parameter reaches another tenant's). Accounts belong to a taxpayer, not a
// tenant: for tenant-bound staff they are judged case by case (checkCase, the rule of
// every case route), a page read ahead until it is full or perCaseBudget tasks were
// judged (the page may then be short; its cursor goes on).
func (s *Server) taskPage(ctx context.Context, p Principal, q tasks.Query) (taskPage, error) {
	o := actsFor(p)
	l := s.taskList()
	if !o.all && o.tenant == "" {
		return s.taskRows(tasks.Page{}), nil // acts for no tenant: nothing (never every tenant's)
	}
	if o.all || !tasks.PerCase(q.Role) {
		if !o.all {
			q.Tenant = o.tenant
		}
		pg, err := l.List(ctx, q)
		return s.taskRows(pg), err
	}
	back := q.Last && q.Cursor == "" || tasks.Backward(q.Cursor)
	var out tasks.Page
	judged, first := 0, true
	for {
		pg, err := l.List(ctx, q)
		if err != nil {
			return taskPage{}, err
		}
		keep := make([]bool, len(pg.Tasks))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i, t := range pg.Tasks {
			g.Go(func() error {
				err := s.checkCase(gctx, p, t.CaseID)
				if errors.Is(err, errNoObject) {
					return nil
				}
				keep[i] = err == nil
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return taskPage{}, err
		}
		var kept []tasks.Task
		for i, t := range pg.Tasks {
			if keep[i] {
				kept = append(kept, t)
			}
		}
		judged += len(pg.Tasks)
		if back {
			out.Tasks = append(kept, out.Tasks...)
			if first {
				out.Next = pg.Next
			}
			out.Prev, q.Cursor = pg.Prev, pg.Prev
			if n := len(out.Tasks); n > q.Limit {
				out.Tasks = out.Tasks[n-q.Limit:]
				out.Prev = tasks.Before(out.Tasks[0])
			}
		} else {
			out.Tasks = append(out.Tasks, kept...)
			if first {
				out.Prev = pg.Prev
			}
			out.Next, q.Cursor = pg.Next, pg.Next
			if len(out.Tasks) > q.Limit {
				out.Tasks = out.Tasks[:q.Limit]
				out.Next = tasks.After(out.Tasks[q.Limit-1])
			}
		}
		first = false
		if len(out.Tasks) >= q.Limit || q.Cursor == "" || judged >= perCaseBudget*q.Limit {
			break
		}
	}
	return s.taskRows(out), nil
}

// perCaseBudget bounds what one page judges case by case: this many times its size.
const perCaseBudget = 20

// taskPage is a page of tasks as the API answers them.
type taskPage struct {
	Tasks      []Task
	Next, Prev string
}

func (s *Server) taskRows(pg tasks.Page) taskPage {
	out := taskPage{Tasks: []Task{}, Next: pg.Next, Prev: pg.Prev}
	for _, t := range pg.Tasks {
		label := t.Label
		if label == "" {
			label = statusLabel(t.Process, t.Status)
		}
		out.Tasks = append(out.Tasks, Task{CaseID: t.CaseID, Process: t.Process, Status: t.Status, Label: label, Since: t.Updated,
			Due: t.Due, Escalated: t.Escalated})
	}
	return out
}
