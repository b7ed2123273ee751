package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// StartBatchLine starts or reaches the case of one valid line of a back-office batch
// file (activities.LineStarter), by the rules POST /v1/refunds, POST /v1/declarations and
// POST /v1/accounts/{inn}/events apply to the same request. The line's external id is
// its idempotency key: the case id is derived from the tenant, the kind and the external
// id (batch.CaseKey), and a workflow id is never reused (REJECT_DUPLICATE), so a
// re-uploaded or repeated line reaches the case the first one made. A refusal by the
// rules is an error outcome; err is returned only for what a retry may fix.
func (s *Server) StartBatchLine(ctx context.Context, tenant string, l batch.Line) (contract.BatchLineResult, error) {
	key := batch.CaseKey(tenant, l.Kind, l.ExternalID)
	refused := func(fields []domain.FieldError, msg string) (contract.BatchLineResult, error) {
		parts := []string{}
		for _, f := range fields {
			parts = append(parts, f.Field+": "+f.Reason)
		}
		if len(parts) == 0 {
			parts = append(parts, msg)
		}
		return contract.BatchLineResult{Outcome: contract.LineError, Error: strings.Join(parts, "; ")}, nil
	}
	// The line is the request it stands for: the uploader's scopes and role go through
	// the route's row of the table (authz.go), as that request would.
	var up *Principal
	if u := l.Uploader; u != nil && u.Tenant == tenant {
		up = &Principal{ID: u.Principal, Tenant: u.Tenant, Role: u.Role, Scopes: u.Scopes, KeyID: u.KeyID, BoundTo: u.BoundTo, Person: u.Person}
	}
	if why, err := s.authorizeLine(ctx, up, l.Kind, lineINN(l)); err != nil {
		return contract.BatchLineResult{}, err
	} else if why != "" {
		return refused(nil, why)
	}
	switch {
	case l.Refund != nil:
		req := *l.Refund
		if v := s.checkRefundClaim(ctx, req); v.status == http.StatusServiceUnavailable {
			return contract.BatchLineResult{}, errors.New(v.msg)
		} else if v.status != 0 {
			if v.code == "requisites_mismatch" {
				return refused([]domain.FieldError{{Field: "account", Reason: v.msg}}, v.msg)
			}
			return refused(v.fields, v.msg)
		}
		id := workflows.RefundID(key)
		in := workflows.RefundWorkflowInput{CaseID: id, INN: req.INN, Period: req.Period, Amount: req.Amount, Reason: req.Reason,
			RequestID: "batch/" + l.ExternalID, RequestSHA256: l.Hash, CreatedBy: tenant + "/batch", Policy: s.Policy,
			Owner: &contract.CaseOwner{Tenant: tenant, CreatedBy: tenant + "/batch"}}
		return s.startLine(ctx, tenant, l, newCase{id: id, process: procRefund, status: workflows.RefundReceived, subject: s.Subject(req.INN),
			workflow: workflows.Refund, input: in})
	case l.Declaration != nil:
		d := l.Declaration
		id := workflows.DeclarationID(key)
		// Named by its content, as the API's: a line repeated with another document never
		// replaces the one its case reads.
		docKey := fmt.Sprintf("declarations/%s/v1-%s.json", id, lineDigest(l.Hash))
		if _, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &docKey, Body: bytes.NewReader(d.Declaration),
			ContentType: aws.String("application/json"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
			return contract.BatchLineResult{}, fmt.Errorf("store declaration: %w", err)
		}
		in := workflows.DeclarationWorkflowInput{CaseID: id, INN: d.INN, RequestID: "batch/" + l.ExternalID, RequestSHA256: l.Hash,
			Submission: workflows.DeclarationSubmission{Key: docKey, Format: "json"}, Confirmation: d.ConfirmationMethod,
			ConfirmationReference: d.ConfirmationReference,
			ClaimsRefund:          d.ClaimsRefund, Policy: s.DeclarationPolicy, Owner: &contract.CaseOwner{Tenant: tenant, CreatedBy: tenant + "/batch"}}
		return s.startLine(ctx, tenant, l, newCase{id: id, process: procDecl, status: workflows.DeclarationReceived, subject: s.Subject(d.INN),
			workflow: workflows.Declaration, input: in})
	case l.Event != nil:
		id, subject, err := s.AccountID(ctx, l.Event.INN)
		if err != nil {
			return contract.BatchLineResult{}, err
		}
		// The account ignores an event id it has seen, so a repeated line is one event.
		if err := s.deliverAccountEvent(ctx, id, subject, l.Event.INN, l.Event.Event); err != nil {
			return contract.BatchLineResult{}, fmt.Errorf("deliver account event: %w", err)
		}
		return contract.BatchLineResult{Outcome: contract.LineDelivered, CaseID: id}, nil
	}
	return refused(nil, "the line carries no request")
}

// lineINN is the taxpayer a line is about.
func lineINN(l batch.Line) string {
	switch {
	case l.Refund != nil:
		return l.Refund.INN
	case l.Declaration != nil:
		return l.Declaration.INN
	case l.Event != nil:
		return l.Event.INN
	}
	return ""
}

// startLine starts a line's case as the API's creates start theirs (create.go): the
// start is the idempotency check, the memo carries the line's hash and its owner, and an
// id already taken is the case an earlier line (or file) made — if that line was the
// same; a line with the same external id and other content is refused. The owner row is
// written after the start, by the first attempt and by every retry of it (a line retried
// after a crash writes it then); until it lands the API finds the owner in the memo.
func (s *Server) startLine(ctx context.Context, tenant string, l batch.Line, c newCase) (contract.BatchLineResult, error) {
	m := createMemo{RequestSHA256: l.Hash, Tenant: tenant, CreatedBy: tenant + "/batch"}
	c.memo = map[string]any{memoCreate: m}
	existing, err := s.startCase(ctx, c)
	if err != nil {
		return contract.BatchLineResult{}, fmt.Errorf("start case: %w", err)
	}
	res := contract.BatchLineResult{Outcome: contract.LineCreated, CaseID: c.id}
	if existing {
		old, found, err := s.createMemoOf(ctx, c.id)
		switch {
		case err != nil:
			return contract.BatchLineResult{}, fmt.Errorf("read the line's case: %w", err)
		case found && (old.Tenant != tenant || old.RequestSHA256 != l.Hash):
			return contract.BatchLineResult{Outcome: contract.LineError,
				Error: "external_id: already names a case made by a different line; use a new external id for a new request"}, nil
		}
		res.Outcome = contract.LineExisting
	}
	owner := caseOwner{CaseID: c.id, Tenant: tenant, CreatedBy: m.CreatedBy, CreatedAt: time.Now().Unix()}
	if _, err := store.PutNew(ctx, s.DB, s.Owners, "case_id", owner); err != nil {
		return contract.BatchLineResult{}, fmt.Errorf("record case owner: %w", err)
	}
	return res, nil
}

// lineDigest is the short form of a line's hash that names its stored document.
func lineDigest(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// BatchUploadRequest asks where to upload a batch file.
type BatchUploadRequest struct {
	FileName string `json:"file_name"`
	Size     int64  `json:"size"`
}

// Validate checks the file's name and size; the tenant's folder comes from the caller's
// key, so ParseKey's rules are asked of the name under a well-formed folder.
func (req BatchUploadRequest) Validate() []domain.FieldError {
	var errs []domain.FieldError
	if _, ref := batch.ParseKey(batch.InboxPrefix + "tenant/" + req.FileName); ref != nil || len(req.FileName) > 200 {
		errs = append(errs, domain.FieldError{Field: "file_name", Reason: "a plain file name (no '/') ending in .csv or .jsonl, at most 200 characters"})
	}
	if req.Size <= 0 || req.Size > batch.DefaultLimits.MaxBytes {
		errs = append(errs, domain.FieldError{Field: "size", Reason: fmt.Sprintf("the file's size in bytes, 1-%d", batch.DefaultLimits.MaxBytes)})
	}
	return errs
}

// batchUploadURL hands out a presigned PUT into the caller's own inbox/<tenant>/: a
// tenant can put files nowhere else, so the prefix names the tenant truthfully.
func (s *Server) batchUploadURL(c *call[BatchUploadRequest]) (reply, error) {
	req, p := c.Body, c.who()
	key := batch.InboxPrefix + p.Tenant + "/" + req.FileName
	if _, ref := batch.ParseKey(key); ref != nil { // the caller's tenant is always a well-formed folder
		return reply{}, unavailable("batch folder", fmt.Errorf("tenant folder refused: %s", ref.Reason))
	}
	const ttl = 15 * time.Minute
	// The grant records who may have uploaded this file and with which scopes: each of
	// its lines is later authorized as its own request with them. The upload must carry
	// the grant's id as signed metadata, so it names this grant and no other.
	g, err := s.IssueGrant(c.ctx(), p, key, ttl)
	if err != nil {
		return reply{}, unavailable("record batch grant", err)
	}
	ps, err := s3.NewPresignClient(s.S3).PresignPutObject(c.ctx(), &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key,
		ContentLength: aws.Int64(req.Size), Metadata: map[string]string{batch.GrantMetadata: g.ID}}, s3.WithPresignExpires(ttl))
	if err != nil {
		return reply{}, unavailable("presign batch upload", err)
	}
	return okReply(map[string]any{"url": ps.URL, "method": "PUT", "bucket": s.Bucket, "key": key,
		"headers": map[string]string{"x-amz-meta-" + batch.GrantMetadata: g.ID}, "expires_in_seconds": int(ttl.Seconds())}), nil
}

// IssueGrant records that the principal may upload the object key within ttl (batch.Grant):
// its lines are authorized with the principal's scopes and role. The upload names the
// grant by its id in the object metadata batch.GrantMetadata.
func (s *Server) IssueGrant(ctx context.Context, p Principal, key string, ttl time.Duration) (batch.Grant, error) {
	g := batch.Grant{ID: strings.ReplaceAll(uuid.NewString(), "-", ""), Key: key, ExpiresAt: time.Now().Add(ttl).Unix(),
		Uploader: batch.Uploader{Principal: p.ID, Tenant: p.Tenant, Role: p.Role, Scopes: p.Scopes, KeyID: p.KeyID, BoundTo: p.BoundTo, Person: p.Person}}
	gkey, _ := batch.GrantKey(g.ID)
	body, err := json.Marshal(g)
	if err != nil {
		return g, fmt.Errorf("encode batch grant: %w", err)
	}
	if _, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &gkey, Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return g, fmt.Errorf("put batch grant: %w", err)
	}
	return g, nil
}

// BatchView is the answer of GET /v1/batches/{id}.
type BatchView struct {
	workflows.BatchProgress
	ReportURL string `json:"report_url,omitempty"`
}

// getBatch answers a batch's progress and, once it ended, a presigned link to its
// report. Another tenant's batch is 404 like a missing one (ownCase: the batch function
// records the inbox's tenant as the owner).
func (s *Server) getBatch(c *call[none]) (reply, error) {
	view, err := s.batchView(c.ctx(), c.ID)
	switch {
	case errors.Is(err, errPresign):
		return reply{}, unavailable("presign report", err)
	case err != nil:
		return reply{}, readFailed("read batch", err)
	}
	return okReply(view), nil
}

// batchID checks {id} as a batch's id.
var batchID = caseIn(batchIDRE, "no such case")

// errPresign: the report exists but no link to it could be made.
var errPresign = errors.New("presign report")

// batchView reads a batch's progress and, once its report exists, presigns a link to it.
func (s *Server) batchView(ctx context.Context, id string) (BatchView, error) {
	var view BatchView
	if err := s.queryCase(ctx, id, workflows.BatchQueryProgress, &view.BatchProgress); err != nil {
		return view, err
	}
	if view.ReportKey != "" {
		url, err := s.downloadURL(ctx, view.ReportKey, id+".csv", 15*time.Minute)
		if err != nil {
			return view, fmt.Errorf("%w: %w", errPresign, err)
		}
		view.ReportURL = url
	}
	return view, nil
}

var batchIDRE = regexp.MustCompile(`^batch-[0-9a-f]{32}$`)
