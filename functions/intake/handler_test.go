package intake

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/workflows"
)

type fakeStarter struct {
	opts []client.StartWorkflowOptions
	ins  []workflows.BatchImportInput
}

func (f *fakeStarter) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.opts = append(f.opts, o)
	f.ins = append(f.ins, args[0].(workflows.BatchImportInput))
	return nil, nil
}

func record(event, key, etag string) events.S3EventRecord {
	return events.S3EventRecord{EventName: event, S3: events.S3Entity{Bucket: events.S3Bucket{Name: "taxflow-documents"},
		Object: events.S3Object{Key: key, ETag: etag}}}
}

func TestIntakeStartsOneBatchPerObject(t *testing.T) {
	f := &fakeStarter{}
	h := Handler{Temporal: f, TaskQueue: "taxflow"}
	ev := events.S3Event{Records: []events.S3EventRecord{
		record("ObjectCreated:Put", "inbox/bank-a/night+1.csv", `"e1"`),  // AWS form, URL-encoded key
		record("s3:ObjectCreated:Put", "inbox/bank-a/night+1.csv", "e1"), // MinIO form: the same object
		record("s3:ObjectRemoved:Delete", "inbox/bank-a/x.csv", "e2"),
		record("s3:ObjectCreated:Put", "reports/bank-a/x.csv", "e3"),
	}}
	res, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Skipped)
	require.Len(t, f.opts, 2)
	want := batch.BatchID("taxflow-documents", "inbox/bank-a/night 1.csv", "e1")
	assert.Equal(t, []string{want, want}, res.Batches, "the same event twice is one batch id")
	assert.Equal(t, "inbox/bank-a/night 1.csv", f.ins[0].Key)
	assert.Equal(t, "e1", f.ins[0].ETag)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, f.opts[0].WorkflowIDConflictPolicy)
	assert.Equal(t, "taxflow", f.opts[0].TaskQueue)
}
