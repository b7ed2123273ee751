package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/taxflow/taxflow/internal/domain"
)

// Every route is one pipeline (Handler builds it from the route's row):
//
//	route table → authenticate → authorize by the row's scope and object rule (authz.go)
//	→ the request's object: the path value, checked (an object step: refundID, taxpayerINN…)
//	→ the body, decoded once, strictly (decodeBody) → validated (the body type's own check)
//	→ the route's own code: one call into the case service (casesvc.go) → the answer.
//
// A route's own code is a function of the checked, decoded, validated request (a call);
// it returns its answer (reply) or an error the pipeline answers (fail). It never decodes
// a JSON body again and never judges the caller's authority: both were done, once, before
// it runs. (A route whose body is a file or a declaration takes none and reads it itself;
// the checks that answer for themselves — an upload's, a proof's, the identity rate
// limit — return errAnswered.)

// none is the body of a route that takes none (or reads it itself: a file, a declaration).
type none struct{}

// call is one request as a route's own code sees it.
type call[B any] struct {
	w    http.ResponseWriter
	r    *http.Request
	ID   string // {id}, checked by the route's object step
	INN  string // {inn}, checked by the route's object step
	Body B      // decoded once and validated
}

func (c *call[B]) ctx() context.Context { return c.r.Context() }
func (c *call[B]) who() Principal       { return principal(c.r) }

// Validation: a body type says what is wrong with it in one of these ways; the pipeline
// asks it after decoding. The contract's requests (shared with batch files) list their
// bad fields; the API's own bodies answer the refusal they need.
type (
	fieldsCheck interface{ Validate() []domain.FieldError }
	timedCheck  interface {
		Validate(now time.Time) []domain.FieldError
	}
	bodyCheck interface{ check() error }
)

func validate(body any) error {
	switch b := body.(type) {
	case none:
		return nil
	case fieldsCheck:
		return invalidFields(b.Validate())
	case timedCheck:
		return invalidFields(b.Validate(time.Now()))
	case bodyCheck:
		return b.check()
	}
	// Fail closed: a body that cannot say what is wrong with it reaches no route. checked
	// refuses such a route when the route table is built; this is the guard behind it.
	return fmt.Errorf("api: the body type %T has no check", body)
}

// checked says whether B is a body the pipeline can validate: none, or a type with one of
// the checks above (on its value: the pipeline validates the decoded value).
func checked[B any]() bool {
	var zero B
	switch any(zero).(type) {
	case none, fieldsCheck, timedCheck, bodyCheck:
		return true
	}
	return false
}

// object is a route's first step: the object its path names (or, for a create, the
// Idempotency-Key it needs), checked before the body is read.
type object func(r *http.Request) (id, inn string, err error)

// caseIn checks {id} against a process's case ids; a malformed id is as unknown as a
// missing one (404 with the process's words).
func caseIn(re *regexp.Regexp, unknown string) object {
	return func(r *http.Request) (string, string, error) {
		id := r.PathValue("id")
		if !re.MatchString(id) {
			return "", "", refuse(http.StatusNotFound, "not_found", unknown)
		}
		return id, "", nil
	}
}

var (
	refundID      = caseIn(caseIDRE, "no such refund case")
	identityID    = caseIn(identityIDRE, "no such identity verification")
	declarationID = caseIn(declarationIDRE, "no such declaration")
)

// taxpayerINN checks {inn}: a malformed INN is 400 naming it.
func taxpayerINN(r *http.Request) (string, string, error) {
	inn := r.PathValue("inn")
	if err := domain.ValidateINN("inn", inn, true); err != nil {
		return "", "", badField(err.(domain.FieldError))
	}
	return "", inn, nil
}

// noObject: the route's path names nothing.
func noObject(*http.Request) (string, string, error) { return "", "", nil }

// endpointIn: {id} is a webhook endpoint, read with the endpoint itself (endpointOf) once
// the route knows webhooks are configured (503 before 404, as always).
var endpointIn object = noObject

// creating is a create's first step: an Idempotency-Key (1-200 characters), refused
// with the create's words before anything is read.
func creating(refusal string) object {
	return func(r *http.Request) (string, string, error) {
		if key := r.Header.Get("Idempotency-Key"); key == "" || len(key) > 200 {
			return "", "", refuse(http.StatusBadRequest, "idempotency_key_required", refusal)
		}
		return "", "", nil
	}
}

// handle is a route's pipeline: its object step, its body B (none: not read), and its
// own code.
func handle[B any](obj object, run func(*Server, *call[B]) (reply, error)) func(*Server, http.ResponseWriter, *http.Request) {
	return pipeline(obj, false, run)
}

// handleOptional is handle for a body that may be left out (an empty body is B's zero).
func handleOptional[B any](obj object, run func(*Server, *call[B]) (reply, error)) func(*Server, http.ResponseWriter, *http.Request) {
	return pipeline(obj, true, run)
}

func pipeline[B any](obj object, optional bool, run func(*Server, *call[B]) (reply, error)) func(*Server, http.ResponseWriter, *http.Request) {
	if !checked[B]() {
		// A programming error in the route table, found when it is built (package
		// initialisation, hence by every test), never a request that passes unchecked.
		var zero B
		panic(fmt.Sprintf("api: a route's body type %T has no check (Validate or check); give it one", zero))
	}
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		c := &call[B]{w: w, r: r}
		var err error
		if c.ID, c.INN, err = obj(r); err != nil {
			s.fail(w, r, err)
			return
		}
		if _, takesNone := any(&c.Body).(*none); !takesNone && !(optional && r.ContentLength == 0) {
			if !decodeBody(w, r, &c.Body) {
				return
			}
		}
		if err := validate(c.Body); err != nil {
			s.fail(w, r, err)
			return
		}
		res, err := run(s, c)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeReply(w, res)
	}
}

// writeReply writes a route's answer.
func writeReply(w http.ResponseWriter, res reply) {
	if res.location != "" {
		w.Header().Set("Location", res.location)
	}
	if res.body == nil { // 204: no body
		w.WriteHeader(res.status)
		return
	}
	WriteJSON(w, res.status, res.body)
}

// reply is a route's answer: a status and a JSON body (none: 204), and where a new
// object is.
type reply struct {
	status   int
	body     any
	location string
}

func okReply(v any) reply       { return reply{status: http.StatusOK, body: v} }
func acceptedReply(v any) reply { return reply{status: http.StatusAccepted, body: v} }
func createdReply(location string, v any) reply {
	return reply{status: http.StatusCreated, body: v, location: location}
}

// errAnswered: the step wrote its answer itself (a helper that answers, such as an
// upload's or a proof's refusal).
var errAnswered = errors.New("answered")

// refusal is an answer of the request's own fault or the case's state: a problem as it
// is written.
type refusal struct{ p Problem }

func (e *refusal) Error() string { return e.p.Code + ": " + e.p.Detail }

// refuse is a problem with its status, code, detail and the fields at fault.
func refuse(status int, code, detail string, fields ...domain.FieldError) error {
	return &refusal{Problem{Status: status, Code: code, Detail: detail, Fields: fields}}
}

// invalidFields is 400 listing every bad field; nil when there is none.
func invalidFields(errs []domain.FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	return refuse(http.StatusBadRequest, "invalid_request", "some fields are invalid", errs...)
}

// badField is 400 naming one field.
func badField(fe domain.FieldError) error {
	return refuse(http.StatusBadRequest, "invalid_request", "", fe)
}

// failure is a call that did not complete, answered by its kind.
type failure struct {
	kind     failureKind
	what, id string
	err      error
}

type failureKind int

const (
	unavailableKind failureKind = iota // 503, logged with what
	readKind                           // a Temporal call: temporalError
	updateKind                         // an update: updateRefundErr (409 with the status of a closed case)
	attachKind                         // an upload's update: caseError (409, the case is closed)
)

func (f *failure) Error() string { return f.what + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// unavailable: a store or service did not answer (503; the cause is logged, never shown).
func unavailable(what string, err error) error {
	return &failure{kind: unavailableKind, what: what, err: err}
}

// readFailed: a Temporal read (a query, a describe) failed: 404 for no such case, the
// problem of a case's error type, else 503.
func readFailed(what string, err error) error { return &failure{kind: readKind, what: what, err: err} }

// updateFailed: an update failed: a refusal or a finished case is 409 with its status.
func updateFailed(id, name string, err error) error {
	return &failure{kind: updateKind, what: name, id: id, err: err}
}

// attachFailed: an upload's update failed (the upload is removed by the caller).
func attachFailed(id, what string, err error) error {
	return &failure{kind: attachKind, what: what, id: id, err: err}
}

// fail answers an error of a pipeline step.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var rf *refusal
	var f *failure
	switch {
	case errors.Is(err, errAnswered):
	case errors.As(err, &rf):
		writeProblem(w, rf.p)
	case errors.As(err, &f) && f.kind == readKind:
		s.temporalError(w, f.what, f.err)
	case errors.As(err, &f) && f.kind == updateKind:
		s.updateRefundErr(r.Context(), w, f.id, f.what, f.err)
	case errors.As(err, &f) && f.kind == attachKind:
		s.caseError(w, r, f.id, f.what, f.err)
	case errors.As(err, &f):
		s.internal(w, f.what, f.err)
	default:
		s.internal(w, "request", err)
	}
}
