package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
)

// A create (POST /v1/refunds, /v1/identity-verifications, /v1/declarations) is made
// idempotent by the start of its case, not by a record in front of it:
//
//   - the case id is derived from the caller's tenant, the operation and the
//     Idempotency-Key (caseIDFor: a keyed hash, so unguessable and free of whatever the
//     client put in its key), so one key of one tenant names one case, and the same key
//     of another tenant or on another operation names another;
//   - the case starts under that id with a conflict policy that refuses a second start
//     and an id reuse policy that refuses a closed case's id too (startCase): a first
//     request costs exactly the start, nothing in front of it;
//   - the start carries, in its memo, the hash of the request (content type, the
//     confirmation headers, the canonical body), its owner and its answer: a create's 201
//     is known before its start (a function of its case id and its process), so it is made
//     first and kept with the case, which keeps it as long as it lives;
//   - a start refused because the id is taken is a retry: Describe reads the memo (no
//     worker needed, so it works before the case's first workflow task), a different hash
//     is 422, the same hash the original answer, byte for byte — right after the 201, while
//     the first request is still answering, and after its process died between the start
//     and the answer alike (replayCreate);
//   - the case's first step writes its owner row (the owner travels in the workflow input:
//     functions/transition); until then the owner is read from the memo (CaseOwner);
//   - a refused request starts nothing, so its key stays free; a request refused after its
//     key already named a case (a claim's facts changed since, the identity rate limit, a
//     nonce spent by the first request) is answered as the retry it is.
//
// Nothing is written to the store on the way: a create is one Temporal start.
//
// A key therefore names its case for as long as the case lives, not only 24 h.

// caseIDLabel names the key the case ids are made under (derived from the subject
// keyring's anchor: a subject key rotation leaves it unchanged).
const caseIDLabel = "taxflow case id v1"

// caseKeyFor is the case id, without its process prefix, that the tenant's
// Idempotency-Key names on the operation: the first 128 bits of
// HMAC-SHA256(k, tenant \x00 op \x00 key), written as a UUID (the shape every case id
// route checks).
func (s *Server) caseKeyFor(tenant, op, key string) string {
	m := hmac.New(sha256.New, s.Subjects.Anchor().Derive(caseIDLabel))
	m.Write([]byte(tenant + "\x00" + op + "\x00" + key))
	h := hex.EncodeToString(m.Sum(nil))[:32]
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// createMemo is what a created case carries in its memo: the request that made it and
// who made it. memoCreate is its name in the memo.
type createMemo struct {
	RequestSHA256 string `json:"request_sha256"`
	Tenant        string `json:"tenant"`
	CreatedBy     string `json:"created_by"`
	KeyID         string `json:"key_id,omitempty"`
	// Answer is the create's answer, replayed to a retry ("": a case a batch line made).
	Answer *keptAnswer `json:"answer,omitempty"`
}

// keptAnswer is an answer as it was sent.
type keptAnswer struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Location    string `json:"location,omitempty"`
	Body        string `json:"body"`
}

const memoCreate = "create"

// createReq is one create request as the create middleware prepared it for the handler.
type createReq struct {
	op, prefix string
	caseID     string // prefix + caseKeyFor(...)
	memo       createMemo
	// attempted is set when the handler tried to start the case: its answer is then the
	// start's, whatever it is. A handler that answered before it (a refusal) may have
	// refused a retry of a case that exists: the middleware then asks the case.
	attempted bool
}

type createCtx struct{}

func createOf(ctx context.Context) *createReq {
	c, _ := ctx.Value(createCtx{}).(*createReq)
	return c
}

// caseKey is the id (without its process prefix) of the case a create request makes ("":
// a request that did not come through the create middleware; startCreate refuses it).
func caseKey(r *http.Request) string {
	if c := createOf(r.Context()); c != nil {
		return strings.TrimPrefix(c.caseID, c.prefix)
	}
	return ""
}

// createAnswers are, per create, its 201 answer: the handler's, and the one replayCreate
// makes for a case whose memo carries none. Both come from here, so they are the same.
var createAnswers = map[string]func(s *Server, caseID string) reply{
	"POST /v1/refunds":                refundCreated,
	"POST /v1/identity-verifications": identityCreated,
	"POST /v1/declarations":           declarationCreated,
}

// describeFirst are the creates whose handler changes something before the start (a
// nonce spent, an attempt counted, a document stored): for them the case is looked up
// first, so that a retry changes nothing and is answered from the case.
var describeFirst = map[string]bool{
	"POST /v1/identity-verifications": true,
	"POST /v1/declarations":           true,
}

// idempotent wraps a create operation (see the top of this file). A missing key is left
// to the handler, which refuses it.
func (s *Server) idempotent(op, prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || len(key) > 200 {
			next.ServeHTTP(w, r)
			return
		}
		// Headers the create cannot do without are checked first: a refused request
		// starts nothing.
		if check, ok := createHeaderChecks[op]; ok && !check(w, r) {
			return
		}
		// Read whole to hash it: every create's body is used whole by its handler too
		// (JSON, or a declaration to parse), and limitBody caps it at the route's limit.
		body, ok := readBody(w, r, FileBodyLimit)
		if !ok {
			return
		}
		// A JSON create is decoded here, once: the hash covers the decoded request (its
		// canonical encoding) and the handler takes the same value (decodeBody). A
		// declaration is a document for its own parser: hashed as its bytes.
		var decoded any
		if newBody, isJSON := createBodies[op]; isJSON {
			if len(body) > JSONBodyLimit {
				tooLargeError(w, "the body", JSONBodyLimit)
				return
			}
			decoded = newBody()
			if !decodeInto(w, body, decoded) {
				return
			}
			canonical, err := canonicalJSON(decoded)
			if err != nil {
				s.internal(w, "hash request", err)
				return
			}
			body = canonical
			r.Body = http.NoBody
		} else {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if err := s.caseIDKeyPinned(r.Context()); err != nil {
			s.fail(w, r, unavailable("case id key", err))
			return
		}
		p := principal(r)
		h := sha256.New()
		for _, part := range []string{r.Header.Get("Content-Type"), r.Header.Get("X-Confirmation-Method"), r.Header.Get("X-Confirmation-Reference")} {
			h.Write([]byte(part + "\x00"))
		}
		h.Write(body)
		cr := &createReq{op: op, prefix: prefix, caseID: prefix + s.caseKeyFor(p.Tenant, op, key),
			memo: createMemo{RequestSHA256: hex.EncodeToString(h.Sum(nil)), Tenant: p.Tenant, CreatedBy: p.ID, KeyID: p.KeyID}}
		if describeFirst[op] {
			if done, err := s.replayCreate(w, r, cr); err != nil {
				s.fail(w, r, unavailable("read the key's case", err))
				return
			} else if done {
				return
			}
		}
		ctx := context.WithValue(r.Context(), createCtx{}, cr)
		if decoded != nil {
			ctx = withDecoded(ctx, decoded)
		}
		// The handler's own reads (a claim's checks) start now; the start waits for them.
		if pre := s.startPrecheck(ctx, op, decoded); pre != nil {
			ctx = context.WithValue(ctx, precheckCtx{}, pre)
		}
		r = r.WithContext(ctx)
		bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(bw, r)
		if !cr.attempted && (bw.status < 200 || bw.status > 299) {
			// Refused before any start: a retry of a case that exists is answered as one.
			done, err := s.replayCreate(w, r, cr)
			switch {
			case err != nil:
				s.Log.Warn().Err(err).Str("op", op).Msg("a refused create: its key's case could not be looked up; the refusal stands")
			case done:
				return
			}
		}
		bw.flush(w)
	})
}

// replayCreate answers a request whose key names a case already: 422 when the case was
// made by another request, else the original answer. done is false when no case has the
// key's id (nothing was written).
func (s *Server) replayCreate(w http.ResponseWriter, r *http.Request, cr *createReq) (done bool, err error) {
	m, found, err := s.createMemoOf(r.Context(), cr.caseID)
	if err != nil || !found {
		return false, err
	}
	if m.Tenant != cr.memo.Tenant || m.RequestSHA256 != cr.memo.RequestSHA256 {
		writeProblem(w, Problem{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Detail: "this Idempotency-Key was used for a different request",
			Fields: []domain.FieldError{{Field: "Idempotency-Key", Reason: "already names a case made by a different request: use a new key for a new request"}}})
		return true, nil
	}
	a := m.Answer
	if a == nil {
		answer, ok := createAnswers[cr.op]
		if !ok {
			return false, fmt.Errorf("no answer for %s", cr.op)
		}
		a = answerOf(answer(s, cr.caseID))
	}
	if a.Location != "" {
		w.Header().Set("Location", a.Location)
	}
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
	return true, nil
}

// answerOf is a reply as it is sent.
func answerOf(res reply) *keptAnswer {
	bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
	writeReply(bw, res)
	return &keptAnswer{Status: bw.status, ContentType: bw.header.Get("Content-Type"), Location: bw.header.Get("Location"), Body: bw.body.String()}
}

// createMemoOf reads a case's create memo; found is false when no case has the id, or
// when the case was not made by a create (no memo).
func (s *Server) createMemoOf(ctx context.Context, id string) (m createMemo, found bool, err error) {
	if s.Temporal == nil {
		return m, false, nil
	}
	d, err := s.Temporal.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return m, false, nil
	case err != nil:
		return m, false, fmt.Errorf("describe %s: %w", id, err)
	}
	p, ok := d.GetWorkflowExecutionInfo().GetMemo().GetFields()[memoCreate]
	if !ok {
		return m, false, nil
	}
	if err := s.dataConverter().FromPayload(p, &m); err != nil {
		return m, false, fmt.Errorf("decode the memo of %s: %w", id, err)
	}
	return m, true, nil
}

// dataConverter decodes what the Temporal client encoded (memos are encrypted like
// every payload).
func (s *Server) dataConverter() converter.DataConverter {
	if s.DataConverter != nil {
		return s.DataConverter
	}
	return converter.GetDefaultDataConverter()
}

// startCreate starts a create's case with its memo (the request's hash, the owner and
// the answer created), after the handler's checks. A new case is answered created; a
// taken id is a retry, answered by replayCreate. Both write the same bytes.
func startCreate[B any](s *Server, c *call[B], nc newCase, created reply) (reply, error) {
	w, r := c.w, c.r
	cr := createOf(r.Context())
	if cr == nil {
		return reply{}, unavailable("start "+nc.process, errors.New("a create without its Idempotency-Key's case"))
	}
	cr.attempted = true
	answer := answerOf(created)
	m := cr.memo
	m.Answer = answer
	nc.memo = map[string]any{memoCreate: m}
	existing, err := s.startCase(r.Context(), nc)
	switch {
	case err != nil:
		return reply{}, unavailable("start "+nc.process, err)
	case existing:
		if done, err := s.replayCreate(w, r, cr); err != nil {
			return reply{}, unavailable("read the key's case", err)
		} else if !done {
			// Taken, yet not found: the case's id is taken by something no create made.
			return reply{}, unavailable("read the key's case", fmt.Errorf("%s exists but carries no create memo", nc.id))
		}
		return reply{}, errAnswered
	}
	if answer.Location != "" {
		w.Header().Set("Location", answer.Location)
	}
	w.Header().Set("Content-Type", answer.ContentType)
	w.WriteHeader(answer.Status)
	_, _ = io.WriteString(w, answer.Body)
	return reply{}, errAnswered
}

// ownerFromCase is a case's owner from its memo, for a read that comes before the owner
// row is written (right after the 201, or after the process died before writing it).
func (s *Server) ownerFromCase(ctx context.Context, id string) (tenant, createdBy string, found bool, err error) {
	for _, prefix := range creates {
		if strings.HasPrefix(id, prefix) {
			m, found, err := s.createMemoOf(ctx, id)
			return m.Tenant, m.CreatedBy, found, err
		}
	}
	return "", "", false, nil
}

// createOwner is the owner a create's case carries into its first step (nil without the
// create middleware).
func createOwner(r *http.Request) *contract.CaseOwner {
	cr := createOf(r.Context())
	if cr == nil {
		return nil
	}
	return &contract.CaseOwner{Tenant: cr.memo.Tenant, CreatedBy: cr.memo.CreatedBy, KeyID: cr.memo.KeyID}
}

// bufferedWriter holds an answer until the create middleware decides to send it.
type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
}

func (w *bufferedWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}

func (w *bufferedWriter) flush(to http.ResponseWriter) {
	for k, v := range w.header {
		to.Header()[k] = v
	}
	to.WriteHeader(w.status)
	_, _ = to.Write(w.body.Bytes())
}
