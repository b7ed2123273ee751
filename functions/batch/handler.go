// Package batch is the batch function: it reads a back-office file from the inbox,
// keeps its parsed lines in chunks and each chunk's per-line results next to them (large
// data never travels in workflow payloads: S3 keys do), and at the end writes the report
// to reports/<tenant>/, moves the file to processed/ or rejected/ and journals the
// counts. The BatchImport workflow drives it (workflows/batch.go).
package batch

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// S3 is what the function does to the documents bucket.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// ChunkSize is how many lines one chunk (one activity, one results file) holds: small
// enough that a chunk's results fit a heartbeat, large enough that a 100,000-line file
// is 400 steps.
const ChunkSize = 250

// OwnersTable is the API's case_owners table (api.OwnersTable): a batch is read only by
// the tenant whose inbox it came from.
const OwnersTable = "case_owners"

// WorkPrefix is where a batch keeps its chunks and results (expired by a lifecycle rule).
const WorkPrefix = "batches/"

// Handler serves every batch operation.
type Handler struct {
	S3      S3
	Bucket  string
	DB      store.DB
	Owners  string // case_owners: the batch belongs to the tenant of its inbox
	Journal string // the audit table: the batch's counts
	// Events is the integrator events table (internal/events): a batch's end is its
	// tenant's event (batch.done or batch.refused); "" writes none.
	Events string
	Limits batch.Limits
	Now    func() time.Time
}

// Handle dispatches on the operation.
func (h Handler) Handle(ctx context.Context, in contract.BatchInput) (json.RawMessage, error) {
	if !strings.HasPrefix(in.BatchID, "batch-") {
		return nil, fnerr.Invalid("batch_id", "must be a batch id")
	}
	var out any
	var err error
	switch in.Op {
	case contract.BatchOpRead:
		out, err = h.read(ctx, in)
	case contract.BatchOpChunk:
		var lines []batch.Line
		err = h.getJSON(ctx, chunkKey(in.BatchID, in.Chunk), &lines)
		out = lines
	case contract.BatchOpRecord:
		err = h.putJSON(ctx, resultsKey(in.BatchID, in.Chunk), in.Results)
		out = struct{}{}
	case contract.BatchOpFinish:
		out, err = h.finish(ctx, in)
	default:
		return nil, fnerr.Invalid("op", "must be read, chunk, record or finish")
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

func chunkKey(id string, n int) string { return fmt.Sprintf("%s%s/chunk-%05d.json", WorkPrefix, id, n) }
func resultsKey(id string, n int) string {
	return fmt.Sprintf("%s%s/results-%05d.json", WorkPrefix, id, n)
}

// ReportKey is where a batch's report lies.
func ReportKey(tenant, id string) string { return batch.ReportsPrefix + tenant + "/" + id + ".csv" }

func notFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "PreconditionFailed")
}

// read parses the inbox object and stores its lines in chunks. It is safe to repeat: the
// same object gives the same chunks.
func (h Handler) read(ctx context.Context, in contract.BatchInput) (contract.BatchReadResult, error) {
	obj, ref := batch.ParseKey(in.Key)
	if ref != nil {
		// The key itself is wrong: nothing to read, and no tenant to report to.
		return contract.BatchReadResult{Refusal: &contract.BatchRefusal{Code: ref.Code, Reason: ref.Reason}}, nil
	}
	res := contract.BatchReadResult{Tenant: obj.Tenant, ChunkSize: ChunkSize}
	if _, err := store.PutNew(ctx, h.DB, h.Owners, "case_id", map[string]any{"case_id": in.BatchID, "tenant": obj.Tenant,
		"created_by": obj.Tenant + "/batch", "created_at": h.Now().Unix()}); err != nil {
		return res, fmt.Errorf("record batch owner: %w", err)
	}
	head, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &h.Bucket, Key: &in.Key, IfMatch: etagOrNil(in.ETag)})
	if notFound(err) {
		// Moved by an earlier run of this batch, or replaced by a newer upload (which has
		// its own batch): this event has nothing left to do.
		return contract.BatchReadResult{Gone: true, Tenant: obj.Tenant}, nil
	}
	if err != nil {
		return res, fmt.Errorf("head %s: %w", in.Key, err)
	}
	if aws.ToInt64(head.ContentLength) > h.Limits.MaxBytes {
		// Refused without reading it: the size is known from the head.
		res.Refusal = &contract.BatchRefusal{Code: batch.RefusedTooLarge, Reason: fmt.Sprintf("the file is larger than %d bytes; split it", h.Limits.MaxBytes)}
		return res, nil
	}
	got, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &in.Key, IfMatch: etagOrNil(in.ETag)})
	if notFound(err) {
		return contract.BatchReadResult{Gone: true, Tenant: obj.Tenant}, nil
	}
	if err != nil {
		return res, fmt.Errorf("get %s: %w", in.Key, err)
	}
	data, err := io.ReadAll(io.LimitReader(got.Body, h.Limits.MaxBytes+1))
	_ = got.Body.Close()
	if err != nil {
		return res, fmt.Errorf("read %s: %w", in.Key, err)
	}
	lines, ref := batch.Parse(data, obj.Format, obj.Tenant, h.Now(), h.Limits)
	if ref != nil {
		res.Refusal = &contract.BatchRefusal{Code: ref.Code, Reason: ref.Reason}
		return res, nil
	}
	up, err := h.uploader(ctx, in.Key, obj.Tenant, head.Metadata, aws.ToTime(head.LastModified))
	if err != nil {
		return res, err
	}
	for i := range lines {
		lines[i].Uploader = up // nil: each line is refused, naming the scope it lacks
	}
	res.Lines = len(lines)
	for start := 0; start < len(lines); start += ChunkSize {
		chunk := lines[start:min(start+ChunkSize, len(lines))]
		for _, l := range chunk {
			if !l.Valid() {
				res.Invalid++
			}
		}
		if err := h.putJSON(ctx, chunkKey(in.BatchID, res.Chunks), chunk); err != nil {
			return res, err
		}
		res.Chunks++
	}
	return res, nil
}

// uploader is who was given the upload URL of this object (batch.Grant), nil when the
// object names no grant, or one that is not for this object and tenant: a file put into
// the inbox some other way has no scopes, and its lines are refused.
//
// A grant speaks for an upload made while its URL was valid: an object written after the
// grant expired (by a writer that copied the grant's id into its metadata) is judged as
// one without a grant. The store's clock stamps LastModified; a minute of skew is allowed.
func (h Handler) uploader(ctx context.Context, key, tenant string, meta map[string]string, written time.Time) (*batch.Uploader, error) {
	var id string
	for k, v := range meta {
		if strings.EqualFold(k, batch.GrantMetadata) {
			id = v
		}
	}
	gkey, ok := batch.GrantKey(id)
	if !ok {
		return nil, nil
	}
	var g batch.Grant
	if err := h.getJSON(ctx, gkey, &g); err != nil {
		var fe *fnerr.Error
		if errors.As(err, &fe) && fe.Type == fnerr.TypeNotFound {
			return nil, nil // no such grant
		}
		return nil, err
	}
	if g.ID != id || g.Key != key || g.Uploader.Tenant != tenant {
		return nil, nil
	}
	if g.ExpiresAt > 0 && !written.IsZero() && written.After(time.Unix(g.ExpiresAt, 0).Add(grantSkew)) {
		return nil, nil
	}
	return &g.Uploader, nil
}

// grantSkew is the clock difference allowed between the API that set a grant's expiry
// and the store that stamps an upload's time.
const grantSkew = time.Minute

func etagOrNil(etag string) *string {
	if etag == "" {
		return nil
	}
	if !strings.HasPrefix(etag, `"`) {
		etag = `"` + etag + `"`
	}
	return &etag
}

// finish writes the report, moves the source and journals the counts.
func (h Handler) finish(ctx context.Context, in contract.BatchInput) (contract.BatchFinishResult, error) {
	obj, ref := batch.ParseKey(in.Key)
	if ref != nil {
		// No tenant to report to: the key is outside any tenant's inbox; leave it.
		return contract.BatchFinishResult{}, nil
	}
	var buf bytes.Buffer
	w := reportWriter{csv.NewWriter(&buf)}
	w.row("line", "external_id", "kind", "outcome", "case_id", "error")
	if in.Refusal != nil {
		w.row("", "", "", "refused", "", in.Refusal.Code+": "+in.Refusal.Reason)
	}
	for n := 0; in.Refusal == nil && n < in.Chunks; n++ {
		var results []contract.BatchLineResult
		if err := h.getJSON(ctx, resultsKey(in.BatchID, n), &results); err != nil {
			return contract.BatchFinishResult{}, err
		}
		for _, r := range results {
			w.row(strconv.Itoa(r.Line), r.ExternalID, r.Kind, r.Outcome, r.CaseID, r.Error)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return contract.BatchFinishResult{}, fmt.Errorf("write report: %w", err)
	}
	out := contract.BatchFinishResult{ReportKey: ReportKey(obj.Tenant, in.BatchID)}
	if _, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &h.Bucket, Key: &out.ReportKey, Body: bytes.NewReader(buf.Bytes()),
		ContentType: aws.String("text/csv; charset=utf-8"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return out, fmt.Errorf("put report: %w", err)
	}
	dest := batch.ProcessedPrefix
	if in.Refusal != nil {
		dest = batch.RejectedPrefix
	}
	out.MovedTo = dest + obj.Tenant + "/" + obj.Name
	_, err := h.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &h.Bucket, Key: &out.MovedTo, CopySource: aws.String(h.Bucket + "/" + in.Key),
		CopySourceIfMatch: etagOrNil(in.ETag), ServerSideEncryption: s3types.ServerSideEncryptionAes256})
	switch {
	case notFound(err):
		// Already moved by a retry of this step; or replaced by a newer upload, which
		// its own batch will move: leave that one alone.
		out.MovedTo = ""
	case err != nil:
		return out, fmt.Errorf("copy source to %s: %w", dest, err)
	default:
		if _, err := h.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &h.Bucket, Key: &in.Key}); err != nil {
			return out, fmt.Errorf("delete source: %w", err)
		}
	}
	reason := fmt.Sprintf("lines %d: created %d, existing %d, duplicates %d, errors %d", in.Counts.Lines, in.Counts.Created,
		in.Counts.Existing, in.Counts.Duplicates, in.Counts.Errors)
	to := "done"
	if in.Refusal != nil {
		reason, to = "file refused: "+in.Refusal.Code, "rejected"
	}
	entry := contract.AuditEntry{CaseID: in.BatchID, EntryID: in.BatchID + "/" + in.Run + "/1",
		At: h.Now().UTC(), Actor: obj.Tenant + "/batch", Action: "batch.finished", To: to, Reason: reason}
	if _, err := store.PutNew(ctx, h.DB, h.Journal, "entry_id", entry); err != nil {
		return out, fmt.Errorf("journal batch: %w", err)
	}
	if err := h.event(ctx, in, entry.At); err != nil {
		return out, err
	}
	return out, nil
}

// event writes the batch's end as its tenant's event (the relay finds the tenant in
// case_owners, as for a case). A batch has one: its seq is 1, so a retry of this step
// finds it written (a conditional put) and a crash between the journal entry and it is
// mended by the retry Temporal makes of the step.
func (h Handler) event(ctx context.Context, in contract.BatchInput, at time.Time) error {
	if h.Events == "" {
		return nil
	}
	status := "done"
	if in.Refusal != nil {
		status = "refused"
	}
	ev := events.Item{Event: events.Event{ID: events.ID(in.BatchID, 1), Type: events.Type("batch", status), CaseID: in.BatchID,
		Process: "batch", Status: status, StatusLabel: events.BatchLabels[status], Seq: 1, OccurredAt: at},
		State: events.StatePending, ExpiresAt: at.Add(events.Keep).Unix(), At: events.IndexTime(at)}
	if _, err := store.PutNew(ctx, h.DB, h.Events, "case_id", ev); err != nil {
		return fmt.Errorf("batch event: %w", err)
	}
	return nil
}

// reportWriter writes report rows a spreadsheet opens as text. A report repeats what the
// uploader sent (an invalid line's raw kind and external id, reasons quoting values), so
// every cell a spreadsheet would read as a formula gets a leading ' (OWASP CSV injection:
// =, +, -, @, tab or CR first); encoding/csv quotes what needs quoting, so a quote or a
// comma cannot end a cell early.
type reportWriter struct{ *csv.Writer }

func (w reportWriter) row(cells ...string) {
	for i, c := range cells {
		cells[i] = reportCell(c)
	}
	_ = w.Write(cells) // into a bytes.Buffer; the error, if any, is read by w.Error after Flush
}

func reportCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (h Handler) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if _, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &h.Bucket, Key: &key, Body: bytes.NewReader(b),
		ContentType: aws.String("application/json"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (h Handler) getJSON(ctx context.Context, key string, v any) error {
	got, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &key})
	if notFound(err) {
		return fnerr.NotFound("batch data %s is missing", key)
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer func() { _ = got.Body.Close() }()
	if err := json.NewDecoder(got.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}
