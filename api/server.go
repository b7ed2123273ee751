// Package api is taxflow's HTTP API for integrators and operators (net/http). The same
// handler runs as a server (`taxflow api`) and as a Lambda behind API Gateway
// (api/lambda). openapi.yaml describes every route; a test keeps them in step.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/subject"
	"github.com/taxflow/taxflow/workflows"
)

//go:embed openapi.yaml
var OpenAPI []byte

// Server holds the API's dependencies.
type Server struct {
	Temporal   client.Client
	Keys       KeyStore
	S3         *s3.Client
	DB         store.DB
	Bucket     string // documents bucket
	Taxpayers  string // registry table
	Ledger     string // charges and payments table
	AuditTable string
	// Owners and Idempotency are the tenancy tables (OwnersTable, IdempotencyTable).
	Owners      string
	Idempotency string
	// Cases is the case projection (internal/cases): the task list reads its indexes.
	Cases string
	// Events is the integrator events feed (events.FeedTable): GET /v1/events reads it.
	Events    string
	TaskQueue string
	Policy    workflows.RefundPolicy
	// IdentityPolicy is what new identity verifications start with.
	IdentityPolicy workflows.IdentityPolicy
	// DeclarationPolicy is what new declarations are reviewed under.
	DeclarationPolicy workflows.DeclarationPolicy
	// AccountPolicy is the lockout policy accounts start with.
	AccountPolicy workflows.AccountPolicy
	// Subjects is the keyring of the hash that stands for an INN in search attributes
	// and account workflow ids (TAXFLOW_SUBJECT_KEY and its previous versions).
	Subjects subject.Keyring
	Log      zerolog.Logger
	// Staff signs staff in to the console at /console; nil serves no console.
	Staff *StaffStore
	// DataConverter decrypts a case's start input for the console's masked identifiers;
	// nil shows none.
	DataConverter converter.DataConverter

	// Webhooks: endpoints, deliveries and the policy of new endpoints (webhooks.go).
	Webhooks WebhookConfig

	hotState hotPath // the create path's caches (hotpath.go)

	// Observe, when set, is told of every request with its route template (r.Pattern,
	// "" when no route matched) and status: metrics and the request's span.
	Observe func(r *http.Request, route string, status int, took time.Duration)
}

// route is one method and path with its authorization (authz.go): the scope and the
// object rule every request, console form and batch line standing for it goes through.
type route struct {
	method, path string
	scope        string // "" for public
	rule         string // RulePublic, RuleCreate, RuleCase, RuleTaxpayer or RuleStaff
	decides      bool   // a decision on the case: the separation of duties applies
	// opensRelation: allowed, too, on a taxpayer with no standing consent (recording it
	// is how a tenant's relationship with a taxpayer begins).
	opensRelation bool
	handler       func(*Server, http.ResponseWriter, *http.Request)
}

// rt builds a row of the table; decision marks a decision on the case.
func rt(method, path, scope, rule string, h func(*Server, http.ResponseWriter, *http.Request)) route {
	return route{method: method, path: path, scope: scope, rule: rule, handler: h}
}

func decision(r route) route { r.decides = true; return r }

// routes is the route table. It is built in init because the handlers reach it again
// (a console form takes its scope and duties from the row of the route it stands for).
var routes []route

func init() {
	routes = []route{
		rt("GET", "/healthz", "", RulePublic, (*Server).health),
		rt("GET", "/readyz", "", RulePublic, (*Server).ready),
		rt("GET", "/openapi.yaml", "", RulePublic, (*Server).openapi),
		rt("POST", "/v1/refunds", ScopeRefundsWrite, RuleCreate, handle(creating(createRefusal), (*Server).createRefund)),
		rt("GET", "/v1/refunds/{id}", ScopeRefundsRead, RuleCase, handle(refundID, (*Server).getRefund)),
		rt("POST", "/v1/refunds/{id}/documents", ScopeRefundsWrite, RuleCase, handle(refundID, (*Server).uploadDocument)),
		rt("POST", "/v1/refunds/{id}/documents/upload-url", ScopeRefundsWrite, RuleCase, handle(refundID, (*Server).presignDocument)),
		rt("POST", "/v1/refunds/{id}/documents/{doc}/complete", ScopeRefundsWrite, RuleCase, handle(refundID, (*Server).completeDocument)),
		decision(rt("POST", "/v1/refunds/{id}/decision", ScopeRefundsDecide, RuleStaff, handle(refundID, (*Server).decideRefund))),
		rt("POST", "/v1/refunds/{id}/withdraw", ScopeRefundsWrite, RuleCase, handleOptional(refundID, (*Server).withdrawRefund)),
		rt("POST", "/v1/refunds/{id}/retry-payout", ScopeOperate, RuleStaff, handleOptional(refundID, (*Server).retryPayout)),
		rt("POST", "/v1/taxpayers/{inn}/requisites/verification", ScopeRequisites, RuleStaff, handle(taxpayerINN, (*Server).verifyRequisites)),
		rt("GET", "/v1/refunds/{id}/journal", ScopeRefundsRead, RuleCase, handle(refundID, (*Server).journal)),
		rt("POST", "/v1/identity-verifications", ScopeIdentityWrite, RuleCreate, handle(creating(createRefusal), (*Server).createIdentity)),
		rt("POST", "/v1/identity-verifications/challenges", ScopeIdentityWrite, RuleCreate, handle(noObject, (*Server).esignChallenge)),
		rt("GET", "/v1/identity-verifications/{id}", ScopeIdentityRead, RuleCase, handle(identityID, (*Server).getIdentity)),
		rt("POST", "/v1/identity-verifications/{id}/documents", ScopeIdentityWrite, RuleCase, handle(identityID, (*Server).uploadIdentityDocument)),
		rt("POST", "/v1/identity-verifications/{id}/resubmit", ScopeIdentityWrite, RuleCase, handle(identityID, (*Server).resubmitIdentity)),
		decision(rt("POST", "/v1/identity-verifications/{id}/review", ScopeIdentityReview, RuleStaff, handle(identityID, (*Server).reviewIdentity))),
		{method: "POST", path: "/v1/taxpayers/{inn}/consent", scope: ScopeConsent, rule: RuleTaxpayer, opensRelation: true, handler: handle(taxpayerINN, (*Server).grantConsent)},
		rt("DELETE", "/v1/taxpayers/{inn}/consent", ScopeConsent, RuleTaxpayer, handle(taxpayerINN, (*Server).withdrawConsent)),
		rt("POST", "/v1/accounts/{inn}/events", ScopeAccountEvents, RuleTaxpayer, (*Server).accountEvent), // accountEventRoute
		rt("GET", "/v1/accounts/{inn}/lock", ScopeAccountRead, RuleTaxpayer, handle(taxpayerINN, (*Server).accountLock)),
		rt("POST", "/v1/accounts/{inn}/unblock/self-service", ScopeAccountUnblock, RuleTaxpayer, handle(taxpayerINN, (*Server).accountSelfService)),
		rt("POST", "/v1/accounts/{inn}/unblock/identity", ScopeAccountUnblock, RuleTaxpayer, handle(taxpayerINN, (*Server).accountIdentity)),
		rt("POST", "/v1/accounts/{inn}/unblock/specialist-request", ScopeAccountUnblock, RuleTaxpayer, handle(taxpayerINN, (*Server).accountSpecialistRequest)),
		rt("POST", "/v1/accounts/{inn}/unblock/specialist-decision", ScopeAccountSpecialist, RuleStaff, handle(taxpayerINN, (*Server).accountSpecialistDecision)),
		rt("POST", "/v1/declarations", ScopeDeclarationsWrite, RuleCreate, handle(creating("send an Idempotency-Key header (1-200 characters)"), (*Server).createDeclaration)),
		rt("GET", "/v1/declarations/{id}", ScopeDeclarationsRead, RuleCase, handle(declarationID, (*Server).getDeclaration)),
		rt("POST", "/v1/declarations/{id}/correction", ScopeDeclarationsWrite, RuleCase, handle(declarationID, (*Server).correctDeclaration)),
		rt("POST", "/v1/declarations/{id}/documents", ScopeDeclarationsWrite, RuleCase, handle(declarationID, (*Server).declarationDocuments)),
		rt("POST", "/v1/declarations/{id}/appeal", ScopeDeclarationsWrite, RuleCase, handle(declarationID, (*Server).appealDeclaration)),
		decision(rt("POST", "/v1/declarations/{id}/request-documents", ScopeDeclarationsReview, RuleStaff, handle(declarationID, (*Server).requestDeclarationDocuments))),
		decision(rt("POST", "/v1/declarations/{id}/decision", ScopeDeclarationsReview, RuleStaff, handle(declarationID, (*Server).decideDeclaration))),
		rt("GET", "/v1/declarations/{id}/decision-document", ScopeDeclarationsRead, RuleCase, handle(declarationID, (*Server).decisionDocument)),
		rt("GET", "/v1/tasks", ScopeTasksRead, RuleStaff, handle(noObject, (*Server).ownTasks)),
		rt("POST", "/v1/batches/upload-url", ScopeBatchesWrite, RuleCreate, handle(noObject, (*Server).batchUploadURL)),
		rt("GET", "/v1/batches/{id}", ScopeBatchesRead, RuleCase, handle(batchID, (*Server).getBatch)),
		rt("GET", "/v1/events", ScopeEventsRead, RuleCreate, handle(noObject, (*Server).listEvents)), // the caller's tenant's feed (no object: RuleCreate)
		// Webhook endpoints (webhooks.go): the list is the caller's own tenant's by
		// construction (RuleCreate: no object to judge); an endpoint's owner is recorded like
		// a case's, so RuleCase answers another tenant's id 404.
		rt("POST", "/v1/webhooks", ScopeWebhooksWrite, RuleCreate, handle(creating("send an Idempotency-Key header (1-200 characters) so a retried request registers one endpoint"), (*Server).createWebhook)),
		rt("GET", "/v1/webhooks", ScopeWebhooksRead, RuleCreate, handle(noObject, (*Server).listWebhooks)),
		rt("GET", "/v1/webhooks/{id}", ScopeWebhooksRead, RuleCase, handle(endpointIn, onEndpoint((*Server).getWebhook))),
		rt("DELETE", "/v1/webhooks/{id}", ScopeWebhooksWrite, RuleCase, handle(endpointIn, onEndpoint((*Server).deleteWebhook))),
		rt("POST", "/v1/webhooks/{id}/rotate-secret", ScopeWebhooksWrite, RuleCase, handle(endpointIn, onEndpoint((*Server).rotateWebhookSecret))),
		rt("POST", "/v1/webhooks/{id}/enable", ScopeWebhooksWrite, RuleCase, handle(endpointIn, onEndpoint((*Server).enableWebhook))),
		rt("GET", "/v1/webhooks/{id}/deliveries", ScopeWebhooksRead, RuleCase, handle(endpointIn, onEndpoint((*Server).listDeliveries))),
		rt("POST", "/v1/webhooks/{id}/deliveries/{delivery}/retry", ScopeWebhooksWrite, RuleCase, handle(endpointIn, onEndpoint((*Server).retryDelivery))),
	}
}

// Routes lists "METHOD /path" of every route.
func Routes() []string {
	out := make([]string, 0, len(routes))
	for _, r := range routes {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// createRefusal answers a case create without its Idempotency-Key.
const createRefusal = "send an Idempotency-Key header (1-200 characters) so a retried request creates one case"

// creates are the operations that start a case: each is idempotent per tenant and
// records the new case's owner. The value is the case id prefix.
var creates = map[string]string{
	"POST /v1/refunds":                "refund-",
	"POST /v1/identity-verifications": "identity-",
	"POST /v1/declarations":           "declaration-",
}

// Handler returns the API with authentication, scopes, tenancy and request logging.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		name := rt.method + " " + rt.path
		h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.handler(s, w, r) }))
		if prefix, ok := creates[name]; ok {
			h = s.idempotent(name, prefix, h)
		}
		if rt.scope != "" {
			// Scope and object rule from the table (authz.go), after the key is known.
			_, create := creates[name]
			h = s.authenticateWith(create, s.authorize(rt, h))
		}
		mux.Handle(name, limitBody(bodyLimit(rt.method, rt.path), h))
	}
	if s.Staff != nil {
		s.mountConsole(mux)
	}
	return s.logRequests(securityHeaders(mux))
}

// Body limits: files and declarations up to 10 MB, every other body 128 KB.
const (
	FileBodyLimit = docs.MaxSize
	JSONBodyLimit = 128 << 10
)

func bodyLimit(method, path string) int64 {
	if method == "POST" && (strings.HasSuffix(path, "/documents") || path == "/v1/declarations" || path == "/v1/declarations/{id}/correction") {
		return FileBodyLimit
	}
	return JSONBodyLimit
}

// limitBody answers 413 before reading when the declared length is over the route's
// limit, and caps what a handler can read when none is declared (chunked).
func limitBody(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLargeError(w, "the body", limit)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// securityHeaders are sent with every answer: the API serves JSON only, never a page
// to frame, sniff or cache.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		next.ServeHTTP(w, r)
	})
}

// HTTPServer is the API's server with every timeout set: a slow or idle client cannot
// hold a connection (ReadTimeout covers a 10 MB upload at ~200 KB/s).
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

type logKey struct{}

// logInfo is filled in by authenticate, deeper in the chain, for the access log.
type logInfo struct{ principal Principal }

// logRequests logs key id, tenant, request id, route template, status and latency: never
// bodies, query strings or path values, which may hold personal data (an INN).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if reqID == "" || len(reqID) > 100 || strings.ContainsFunc(reqID, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			reqID = uuid.NewString()
			r.Header.Set("X-Request-Id", reqID)
		}
		w.Header().Set("X-Request-Id", reqID)
		info := &logInfo{}
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), logKey{}, info))
		next.ServeHTTP(rw, r) // the mux sets r.Pattern
		if s.Observe != nil {
			s.Observe(r, r.Pattern, rw.status, time.Since(start))
		}
		s.Log.Info().Str("method", r.Method).Str("route", r.Pattern).Int("status", rw.status).
			Dur("took", time.Since(start)).Str("request_id", reqID).Str("key_id", info.principal.KeyID).
			Str("tenant", info.principal.Tenant).Str("role", info.principal.Role).Msg("request")
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 only when Temporal answers its health check.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "temporal": "not answering"})
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}

// WriteJSON writes v as the JSON body of a response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error is the code, message and fields of an error answer; Problem carries it.
type Error struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Fields  []domain.FieldError `json:"fields,omitempty"`
}

// Problem is the body of every error answer: an RFC 9457 problem document
// (application/problem+json) with code and fields as extension members. Error repeats
// them as the first version's {"error": {...}} did, so its clients keep working.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Code   string              `json:"code"`
	Fields []domain.FieldError `json:"fields,omitempty"`
	// CurrentStatus: on a 409 for a message the case can no longer take, the status it is in.
	CurrentStatus string `json:"current_status,omitempty"`
	Error         Error  `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, fields []domain.FieldError) {
	writeProblem(w, Problem{Status: status, Detail: msg, Code: code, Fields: fields})
}

// writeProblem fills the members every problem repeats (type, title, the error object).
func writeProblem(w http.ResponseWriter, p Problem) {
	p.Type, p.Title = "about:blank", http.StatusText(p.Status)
	p.Error = Error{Code: p.Code, Message: p.Detail, Fields: p.Fields}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
