// Package intake is the intake function: the documents bucket's object-created event for
// inbox/ (an S3 event notification on AWS; MinIO's webhook notification through the local
// Lambda host) starts one BatchImport workflow per object.
//
// It is the one function that talks to Temporal. Every other function is a step a
// workflow calls; this one is where a workflow begins, and S3 can only call a Lambda
// function (or a queue), so the Temporal client lives here rather than in a poller that
// would have to run beside the bucket. It does nothing else: no parsing, no store; the
// workflow's own steps read the file.
package intake

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/workflows"
)

// Starter is the part of the Temporal client the intake uses.
type Starter interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
}

// Handler starts batches.
type Handler struct {
	Temporal  Starter
	TaskQueue string
}

// Result lists the batches the event started or joined.
type Result struct {
	Batches []string `json:"batches"`
	Skipped int      `json:"skipped,omitempty"` // records outside inbox/ or not a creation
}

// Handle starts one BatchImport per created inbox object. The id is derived from bucket,
// key and ETag: the same event delivered twice joins the running batch (conflict policy
// USE_EXISTING); after the batch ended, the same event finds the file moved and ends at
// once, while a re-upload of the same bytes (same ETag) runs again and reaches the cases
// the first upload made.
func (h Handler) Handle(ctx context.Context, ev events.S3Event) (Result, error) {
	var out Result
	for _, r := range ev.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key) // S3 event keys are URL-encoded
		if err != nil || !strings.HasPrefix(r.EventName, "s3:ObjectCreated:") && !strings.HasPrefix(r.EventName, "ObjectCreated:") ||
			!strings.HasPrefix(key, batch.InboxPrefix) {
			out.Skipped++
			continue
		}
		etag := strings.Trim(r.S3.Object.ETag, `"`)
		id := batch.BatchID(r.S3.Bucket.Name, key, etag)
		_, err = h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: id, TaskQueue: h.TaskQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchProcess.ValueSet("batch")),
		}, workflows.BatchImport, workflows.BatchImportInput{BatchID: id, Key: key, ETag: etag})
		if err != nil {
			// Failing the invocation makes S3 (and MinIO's queue) deliver the event again.
			return out, fmt.Errorf("start batch %s: %w", id, err)
		}
		out.Batches = append(out.Batches, id)
	}
	return out, nil
}
