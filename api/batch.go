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
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

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
		if err := s.recordBatchOwner(ctx, id, tenant); err != nil {
			return contract.BatchLineResult{}, err
		}
		in := workflows.RefundWorkflowInput{CaseID: id, INN: req.INN, Period: req.Period, Amount: req.Amount, Reason: req.Reason,
			RequestID: "batch/" + l.ExternalID, RequestSHA256: l.Hash, CreatedBy: tenant + "/batch", Policy: s.Policy}
		return s.startOnce(ctx, id, workflows.Refund, in, temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("refund"),
			workflows.SearchStatus.ValueSet(workflows.RefundReceived), workflows.SearchSubject.ValueSet(s.Subject(req.INN))))
	case l.Declaration != nil:
		d := l.Declaration
		id := workflows.DeclarationID(key)
		if err := s.recordBatchOwner(ctx, id, tenant); err != nil {
			return contract.BatchLineResult{}, err
		}
		docKey := fmt.Sprintf("declarations/%s/v1.json", id)
		if _, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &docKey, Body: bytes.NewReader(d.Declaration),
			ContentType: aws.String("application/json"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
			return contract.BatchLineResult{}, fmt.Errorf("store declaration: %w", err)
		}
		in := workflows.DeclarationWorkflowInput{CaseID: id, INN: d.INN, RequestID: "batch/" + l.ExternalID, RequestSHA256: l.Hash,
			Submission: workflows.DeclarationSubmission{Key: docKey, Format: "json"}, Confirmation: d.ConfirmationMethod,
			ConfirmationReference: d.ConfirmationReference,
			ClaimsRefund:          d.ClaimsRefund, Policy: s.DeclarationPolicy}
		return s.startOnce(ctx, id, workflows.Declaration, in, temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("declaration"),
			workflows.SearchStatus.ValueSet(workflows.DeclarationReceived), workflows.SearchSubject.ValueSet(s.Subject(d.INN))))
	case l.Event != nil:
		id, subject, err := s.AccountID(ctx, l.Event.INN)
		if err != nil {
			return contract.BatchLineResult{}, err
		}
		// The account ignores an event id it has seen, so a repeated line is one event.
		_, err = s.Temporal.SignalWithStartWorkflow(ctx, id, workflows.AccountSignalEvent, l.Event.Event, client.StartWorkflowOptions{
			ID: id, TaskQueue: s.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("account"),
				workflows.SearchStatus.ValueSet(workflows.AccountActive), workflows.SearchSubject.ValueSet(subject)),
		}, workflows.Account, workflows.AccountWorkflowInput{AccountID: id, INN: l.Event.INN, Policy: s.AccountPolicy})
		if err != nil {
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

// recordBatchOwner makes the tenant the owner of a case its batch creates, as the
// Idempotency-Key middleware does for the API's creates.
func (s *Server) recordBatchOwner(ctx context.Context, caseID, tenant string) error {
	owner := caseOwner{CaseID: caseID, Tenant: tenant, CreatedBy: tenant + "/batch", CreatedAt: time.Now().Unix()}
	if _, err := store.PutNew(ctx, s.DB, s.Owners, "case_id", owner); err != nil {
		return fmt.Errorf("record case owner: %w", err)
	}
	return nil
}

// startOnce starts a case under an id that is never reused: an id already taken is the
// case an earlier line (or file) made.
func (s *Server) startOnce(ctx context.Context, id string, wf any, in any, sa temporal.SearchAttributes) (contract.BatchLineResult, error) {
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: s.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true, TypedSearchAttributes: sa}, wf, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		return contract.BatchLineResult{Outcome: contract.LineExisting, CaseID: id}, nil
	case err != nil:
		return contract.BatchLineResult{}, fmt.Errorf("start case: %w", err)
	}
	return contract.BatchLineResult{Outcome: contract.LineCreated, CaseID: id}, nil
}

// BatchUploadRequest asks where to upload a batch file.
type BatchUploadRequest struct {
	FileName string `json:"file_name"`
	Size     int64  `json:"size"`
}

// batchUploadURL hands out a presigned PUT into the caller's own inbox/<tenant>/: a
// tenant can put files nowhere else, so the prefix names the tenant truthfully.
func (s *Server) batchUploadURL(w http.ResponseWriter, r *http.Request) {
	var req BatchUploadRequest
	if !decodeBody(w, r, &req) {
		return
	}
	p := principal(r)
	key := batch.InboxPrefix + p.Tenant + "/" + req.FileName
	var errs []domain.FieldError
	if _, ref := batch.ParseKey(key); ref != nil || len(req.FileName) > 200 {
		errs = append(errs, domain.FieldError{Field: "file_name", Reason: "a plain file name (no '/') ending in .csv or .jsonl, at most 200 characters"})
	}
	if req.Size <= 0 || req.Size > batch.DefaultLimits.MaxBytes {
		errs = append(errs, domain.FieldError{Field: "size", Reason: fmt.Sprintf("the file's size in bytes, 1-%d", batch.DefaultLimits.MaxBytes)})
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "some fields are invalid", errs)
		return
	}
	const ttl = 15 * time.Minute
	// The grant records who may have uploaded this file and with which scopes: each of
	// its lines is later authorized as its own request with them. The upload must carry
	// the grant's id as signed metadata, so it names this grant and no other.
	g, err := s.IssueGrant(r.Context(), p, key, ttl)
	if err != nil {
		s.internal(w, "record batch grant", err)
		return
	}
	ps, err := s3.NewPresignClient(s.S3).PresignPutObject(r.Context(), &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key,
		ContentLength: aws.Int64(req.Size), Metadata: map[string]string{batch.GrantMetadata: g.ID}}, s3.WithPresignExpires(ttl))
	if err != nil {
		s.internal(w, "presign batch upload", err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"url": ps.URL, "method": "PUT", "bucket": s.Bucket, "key": key,
		"headers": map[string]string{"x-amz-meta-" + batch.GrantMetadata: g.ID}, "expires_in_seconds": int(ttl.Seconds())})
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
func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !batchIDRE.MatchString(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such case", nil)
		return
	}
	view, err := s.batchView(r.Context(), id)
	if err != nil && !errors.Is(err, errPresign) {
		s.temporalError(w, "read batch", err)
		return
	}
	if err != nil {
		s.internal(w, "presign report", err)
		return
	}
	WriteJSON(w, http.StatusOK, view)
}

// errPresign: the report exists but no link to it could be made.
var errPresign = errors.New("presign report")

// batchView reads a batch's progress and, once its report exists, presigns a link to it.
func (s *Server) batchView(ctx context.Context, id string) (BatchView, error) {
	var view BatchView
	v, err := s.Temporal.QueryWorkflow(ctx, id, "", workflows.BatchQueryProgress)
	if err != nil {
		return view, err
	}
	if err := v.Get(&view.BatchProgress); err != nil {
		return view, fmt.Errorf("decode batch: %w", err)
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
