package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// Roles of API keys. Integrators (tenants' systems) see their own cases only; staff of
// the tax office (reviewer, inspector, specialist, operator) work on every tenant's
// cases — or on one tenant's, when their key or account is bound to it — but only
// through the scopes and the task queue of their role (authz.go).
const (
	RoleIntegrator = "integrator"
	RoleAuthSystem = "auth-system" // the cabinet's authentication system: login events
	RoleReviewer   = "reviewer"
	RoleInspector  = "inspector"
	RoleSpecialist = "specialist"
	RoleOperator   = "operator"
)

// RoleScopes is what each role may hold; a key holds its role's scopes unless its creator
// names fewer.
var RoleScopes = map[string][]string{
	RoleIntegrator: {ScopeRefundsRead, ScopeRefundsWrite, ScopeIdentityRead, ScopeIdentityWrite, ScopeConsent,
		ScopeAccountRead, ScopeAccountUnblock, ScopeDeclarationsRead, ScopeDeclarationsWrite, ScopeBatchesRead, ScopeBatchesWrite, ScopeEventsRead,
		ScopeWebhooksRead, ScopeWebhooksWrite},
	RoleAuthSystem: {ScopeAccountEvents, ScopeAccountRead, ScopeAccountUnblock},
	RoleReviewer:   {ScopeRefundsRead, ScopeRefundsDecide, ScopeIdentityRead, ScopeIdentityReview, ScopeTasksRead},
	RoleInspector:  {ScopeDeclarationsRead, ScopeDeclarationsReview, ScopeTasksRead},
	RoleSpecialist: {ScopeAccountRead, ScopeAccountSpecialist, ScopeTasksRead},
	RoleOperator:   {ScopeRefundsRead, ScopeOperate, ScopeIdentityRead, ScopeTasksRead, ScopeRequisites},
}

// Staff tells whether the principal works for the tax office (sees every tenant's cases).
func (p Principal) Staff() bool {
	switch p.Role {
	case RoleReviewer, RoleInspector, RoleSpecialist, RoleOperator:
		return true
	}
	return false
}

var tenantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ValidatePrincipal checks a key's principal before it is stored: a tenant name, a known
// role, scopes within the role (its scopes when none are named), an id (tenant/role by
// default).
func ValidatePrincipal(p Principal) (Principal, error) {
	if !tenantRE.MatchString(p.Tenant) {
		return p, fmt.Errorf("tenant %q: want 2-63 lower-case letters, digits and '-'", p.Tenant)
	}
	allowed, ok := RoleScopes[p.Role]
	if !ok {
		roles := make([]string, 0, len(RoleScopes))
		for r := range RoleScopes {
			roles = append(roles, r)
		}
		slices.Sort(roles)
		return p, fmt.Errorf("role %q: want one of %s", p.Role, strings.Join(roles, ", "))
	}
	if len(p.Scopes) == 0 {
		p.Scopes = slices.Clone(allowed)
	}
	for _, s := range p.Scopes {
		if !slices.Contains(allowed, s) {
			return p, fmt.Errorf("scope %q is not one of role %s: %s", s, p.Role, strings.Join(allowed, ", "))
		}
	}
	staff := p.Staff()
	switch {
	case staff && p.Tenant != TaxOffice:
		// A tenant's own key never decides its tenant's cases: staff keys are the tax
		// office's, bound to a tenant when they should act on its cases only.
		return p, fmt.Errorf("role %s: staff keys belong to tenant %s (bind one to a tenant with bound_to)", p.Role, TaxOffice)
	case !staff && p.Tenant == TaxOffice && p.Role != RoleAuthSystem:
		return p, fmt.Errorf("tenant %s: only staff roles and the authentication system", TaxOffice)
	case p.BoundTo != "" && (!staff || !tenantRE.MatchString(p.BoundTo) || p.BoundTo == TaxOffice):
		return p, fmt.Errorf("bound_to %q: a tenant name, for a staff key only", p.BoundTo)
	case p.Person != "" && !personRE.MatchString(p.Person):
		return p, fmt.Errorf("person %q: want 2-63 lower-case letters, digits, '.', '_' and '-'", p.Person)
	}
	if p.ID == "" {
		p.ID = p.Tenant + "/" + p.Role
		if p.Person != "" {
			p.ID += "/" + p.Person
		}
	}
	if len(p.ID) > 100 {
		return p, fmt.Errorf("principal: at most 100 characters")
	}
	return p, nil
}

// Tables of tenancy: who owns a case, and the Idempotency-Key records of each tenant.
const (
	OwnersTable      = "case_owners"
	IdempotencyTable = "api_idempotency"
	// IdempotencyTTL is how long a key's original answer is replayed (Stripe keeps 24 h).
	IdempotencyTTL = 24 * time.Hour
)

// caseOwner is who created a case; reads of the case by other tenants answer 404.
type caseOwner struct {
	CaseID    string `json:"case_id"`
	Tenant    string `json:"tenant"`
	CreatedBy string `json:"created_by"`
	KeyID     string `json:"key_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// CaseOwner returns the tenant and principal that created a case. A refund started by a
// declaration belongs to the declaration's owner. The rule is tasks.CaseOwner's, which
// the record-transition function also reads to put a case in its tenant's task list.
func (s *Server) CaseOwner(ctx context.Context, id string) (tenant, createdBy string, found bool, err error) {
	return tasks.CaseOwner(ctx, s.DB, s.Owners, id)
}

// idemRecord is one Idempotency-Key of one tenant on one operation (IETF
// draft-ietf-httpapi-idempotency-key-header; Stripe's API): the hash of the request, the
// case id reserved for it, and once done the original answer, replayed to a retry.
type idemRecord struct {
	Key           string `json:"key"` // tenant, operation and the SHA-256 of the client's key
	RequestSHA256 string `json:"request_sha256"`
	CaseID        string `json:"case_id"`
	State         string `json:"state"` // in_progress, done, failed
	Status        int    `json:"status,omitempty"`
	ContentType   string `json:"content_type,omitempty"`
	Location      string `json:"location,omitempty"`
	Body          string `json:"body,omitempty"`
	ExpiresAt     int64  `json:"expires_at"` // Unix seconds; the table's TTL attribute
	// Rev names this writing of the record: every later write is conditional on it, so two
	// requests taking over one key cannot both win, and a slow request's final write cannot
	// overwrite the record of one that took over after it.
	Rev       string `json:"rev,omitempty"`
	StartedAt int64  `json:"started_at,omitempty"` // Unix seconds, when in_progress began
}

// staleAfter is when a record still in progress belongs to a request that will never
// finish it (its process died after reserving the key): longer than any create may take
// (the server's write timeout is 90 s). The same request may then take the key over.
const staleAfter = 2 * time.Minute

type caseKeyCtx struct{}

// caseKey is the random id reserved for the case a create request makes.
func caseKey(r *http.Request) string {
	if k, ok := r.Context().Value(caseKeyCtx{}).(string); ok {
		return k
	}
	return uuid.NewString()
}

// idempotent wraps a create operation: the first request with an Idempotency-Key reserves
// a random case id and records its owner; a retry with the same body gets the original
// answer, one with a different body 422, one while the first is running 409. A missing
// key is left to the handler, which refuses it.
func (s *Server) idempotent(op, prefix string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" || len(key) > 200 {
			next.ServeHTTP(w, r)
			return
		}
		// Headers the create cannot do without are checked before the key is reserved: a
		// refused request leaves no record.
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
		p := principal(r)
		h := sha256.New()
		for _, part := range []string{r.Header.Get("Content-Type"), r.Header.Get("X-Confirmation-Method"), r.Header.Get("X-Confirmation-Reference")} {
			h.Write([]byte(part + "\x00"))
		}
		h.Write(body)
		hash := hex.EncodeToString(h.Sum(nil))
		keySum := sha256.Sum256([]byte(key))
		rec := idemRecord{Key: p.Tenant + "#" + op + "#" + hex.EncodeToString(keySum[:]), RequestSHA256: hash,
			CaseID: prefix + uuid.NewString(), State: "in_progress", ExpiresAt: time.Now().Add(IdempotencyTTL).Unix(),
			Rev: uuid.NewString(), StartedAt: time.Now().Unix()}
		owner := caseOwner{CaseID: rec.CaseID, Tenant: p.Tenant, CreatedBy: p.ID, KeyID: p.KeyID, CreatedAt: time.Now().Unix()}
		// The handler's own reads (a claim's checks) start now and overlap the write below.
		pre := s.startPrecheck(r.Context(), op, decoded)
		created, err := s.reserveKey(r.Context(), rec, owner, keyHashOf(r))
		switch {
		case errors.Is(err, errKeyInvalid):
			writeError(w, http.StatusUnauthorized, "unauthenticated", "unknown, expired or revoked API key", nil)
			return
		case err != nil:
			s.internal(w, "reserve idempotency key", err)
			return
		}
		if !created {
			var old idemRecord
			if _, err := store.Get(r.Context(), s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S(rec.Key)}, &old); err != nil {
				s.internal(w, "read idempotency key", err)
				return
			}
			live := old.ExpiresAt > time.Now().Unix()
			stale := live && old.State == "in_progress" && old.RequestSHA256 == hash && time.Now().Unix()-old.StartedAt > int64(staleAfter/time.Second)
			if live && old.State == "in_progress" && !stale {
				// A request with this key still in progress (or its answer just sent and its
				// record not yet written): wait a little for its outcome — a refused request
				// releases the key, a done one is replayed — then answer.
				if settled, ok := s.awaitSettled(r.Context(), rec.Key); ok {
					old = settled
				}
			}
			// A record left in progress by a request that died takes no answer any more: the
			// same request takes it over (keeping its case id, so a start that happened is
			// found, not repeated).
			switch {
			case stale:
			case live && old.State != "failed" && old.RequestSHA256 != hash:
				writeError(w, http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used for a different request",
					[]domain.FieldError{{Field: "Idempotency-Key", Reason: "was used for a different request within 24 hours; use a new key for a new request"}})
				return
			case live && old.State == "in_progress":
				writeError(w, http.StatusConflict, "idempotency_key_in_use", "a request with this Idempotency-Key is still being processed; retry shortly", nil)
				return
			case live && old.State == "done":
				if old.Location != "" {
					w.Header().Set("Location", old.Location)
				}
				w.Header().Set("Content-Type", old.ContentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(old.Status)
				_, _ = io.WriteString(w, old.Body)
				return
			}
			// The first attempt failed (a refused request is not kept, as at Stripe), or the
			// record expired: this request takes the key over. The same request keeps the
			// case id, so a start that did happen is found, not repeated.
			if live && old.RequestSHA256 == hash && old.CaseID != "" {
				rec.CaseID = old.CaseID
			}
			// Conditional on the record read: of two requests taking the key over at once,
			// one wins and the other is told the key is in use.
			if err := s.putIdem(r.Context(), rec, old.Rev); store.IsConditionFailed(err) {
				writeError(w, http.StatusConflict, "idempotency_key_in_use", "a request with this Idempotency-Key is still being processed; retry shortly", nil)
				return
			} else if err != nil {
				s.internal(w, "take over idempotency key", err)
				return
			}
			owner.CaseID = rec.CaseID
			if _, err := store.PutNew(r.Context(), s.DB, s.Owners, "case_id", owner); err != nil {
				s.releaseKey(r.Context(), op, rec)
				s.internal(w, "record case owner", err)
				return
			}
		}
		settled := make(chan struct{})
		s.hot().pending.Store(rec.Key, settled)
		answered := false
		defer func() {
			// A handler that panicked answered nothing: release the key (so a retry is not
			// refused as in progress for a day) and wake any retry waiting on it.
			if !answered {
				s.hot().pending.Delete(rec.Key)
				close(settled)
				s.releaseKey(r.Context(), op, rec)
			}
		}()
		ctx := context.WithValue(r.Context(), caseKeyCtx{}, strings.TrimPrefix(rec.CaseID, prefix))
		if decoded != nil {
			ctx = withDecoded(ctx, decoded)
		}
		if pre != nil {
			ctx = context.WithValue(ctx, precheckCtx{}, pre)
		}
		rw := &recordingWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r.WithContext(ctx))
		answered = true
		rec.State, rec.Status = "failed", rw.status
		if rw.status >= 200 && rw.status < 300 {
			rec.State, rec.ContentType, rec.Location, rec.Body = "done", rw.Header().Get("Content-Type"), rw.Header().Get("Location"), rw.body.String()
		}
		// After the answer, off the request's path: until it lands, a retry with this key
		// waits for it (awaitSettled); if the process dies first, the record goes stale and
		// the same request takes it over, keeping the case id: the start is not repeated.
		s.afterAnswer(r.Context(), func(ctx context.Context) {
			defer func() {
				s.hot().pending.Delete(rec.Key)
				close(settled)
			}()
			if err := s.putIdem(ctx, rec, rec.Rev); err != nil {
				s.Log.Error().Err(err).Str("op", op).Msg("idempotency record not updated; a retry will be refused as in progress until it expires")
			}
		})
	})
}

// settleWait bounds how long a retry waits for the request it repeats to finish.
const settleWait = 3 * time.Second

// awaitSettled waits until the idempotency record of a request in progress is done or
// failed, and returns it: on this instance by the request's own signal, from another
// instance by reading the record again. ok is false when it did not settle in time.
func (s *Server) awaitSettled(ctx context.Context, key string) (idemRecord, bool) {
	ctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	if ch, ok := s.hot().pending.Load(key); ok {
		select {
		case <-ch.(chan struct{}):
		case <-ctx.Done():
			return idemRecord{}, false
		}
	}
	for {
		var rec idemRecord
		if found, err := store.Get(ctx, s.DB, s.Idempotency, map[string]types.AttributeValue{"key": store.S(key)}, &rec); err == nil && found && rec.State != "in_progress" {
			return rec, true
		}
		select {
		case <-ctx.Done():
			return idemRecord{}, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errKeyInvalid: the caller's API key was revoked or expired after it was cached.
var errKeyInvalid = errors.New("api key revoked or expired")

// reserveKey writes, in one transaction, the idempotency record (if the key is new), the
// case's owner and — when the caller's key came from the cache — a check that the key is
// still valid. created is false when the idempotency key was there already.
func (s *Server) reserveKey(ctx context.Context, rec idemRecord, owner caseOwner, keyHash string) (created bool, err error) {
	ri, err := store.Marshal(rec)
	if err != nil {
		return false, err
	}
	oi, err := store.Marshal(owner)
	if err != nil {
		return false, err
	}
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.Idempotency), Item: ri, ConditionExpression: aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": "key"}}},
		{Put: &types.Put{TableName: aws.String(s.Owners), Item: oi, ConditionExpression: aws.String("attribute_not_exists(case_id)")}},
	}
	dk, dynamo := s.Keys.(DynamoKeys)
	if dynamo && keyHash != "" {
		items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(dk.Table),
			Key:                       map[string]types.AttributeValue{"key_hash": store.S(keyHash)},
			ConditionExpression:       aws.String("attribute_exists(key_hash) AND attribute_not_exists(revoked_at) AND expires_at > :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Unix(), 10)}}}})
	}
	_, err = s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		failed := func(i int) bool {
			return i < len(tc.CancellationReasons) && aws.ToString(tc.CancellationReasons[i].Code) == "ConditionalCheckFailed"
		}
		switch {
		case len(items) > 2 && failed(2):
			s.hot().keys.drop(keyHash)
			return false, errKeyInvalid
		case failed(0):
			return false, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("reserve idempotency key and owner: %w", err)
	}
	return true, nil
}

// putIdem writes an idempotency record over the one named by rev ("": a record written
// before records had revisions). A lost condition is returned as it is (IsConditionFailed).
func (s *Server) putIdem(ctx context.Context, rec idemRecord, rev string) error {
	item, err := store.Marshal(rec)
	if err != nil {
		return err
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(s.Idempotency), Item: item,
		ExpressionAttributeNames: map[string]string{"#v": "rev"}}
	if rev == "" {
		in.ConditionExpression = aws.String("attribute_not_exists(#v)")
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": store.S(rev)}
	}
	if _, err := s.DB.PutItem(ctx, in); err != nil {
		if store.IsConditionFailed(err) {
			return err
		}
		return fmt.Errorf("put %s: %w", s.Idempotency, err)
	}
	return nil
}

// releaseKey marks a request's key as failed (a refused request keeps no key), detached
// from the request: what failed must not also block the key.
func (s *Server) releaseKey(ctx context.Context, op string, rec idemRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec.State = "failed"
	if err := s.putIdem(ctx, rec, rec.Rev); err != nil {
		s.Log.Error().Err(err).Str("op", op).Msg("idempotency key not released after a failure")
	}
}

// recordingWriter passes the answer on and keeps a copy (create answers are small).
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recordingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}
