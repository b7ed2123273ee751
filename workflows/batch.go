package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/internal/contract"
)

// BatchImport turns one file of the inbox into cases, line by line, exactly once
// (issue 16). Its id is derived from bucket, key and ETag (batch.BatchID), so the same
// object-created event delivered twice is one batch. The file is read and split into
// stored chunks by the batch function; each chunk is one activity that starts the
// chunk's cases with bounded concurrency and heartbeats its progress; every
// ChunksPerRun chunks the workflow continues as new, so the history stays bounded for any
// file size. The end writes the report, moves the file and journals the counts.

// Batch statuses.
const (
	BatchReading   = "reading"
	BatchImporting = "importing"
	BatchDone      = "done"
	BatchRefused   = "refused"
	BatchGone      = "gone" // the event came again after the file had been processed
)

// BatchQueryProgress is the name of the progress query.
const BatchQueryProgress = "progress"

// BatchChunksPerRun is how many chunks one run imports before continuing as new
// (about 6 events each — the activity's three and a workflow task's three: 50 chunks keep
// a run near 310 events, as measured on a 100,000-line file).
const BatchChunksPerRun = 50

// BatchImportInput starts a batch; the other fields carry it across continue-as-new.
type BatchImportInput struct {
	BatchID string `json:"batch_id"`
	Key     string `json:"key"`
	ETag    string `json:"etag"`
	// Carried across continue-as-new.
	Read   *contract.BatchReadResult `json:"read,omitempty"`
	Next   int                       `json:"next,omitempty"`
	Counts contract.BatchCounts      `json:"counts"`
	Run    string                    `json:"run,omitempty"` // the first run's id
}

// BatchProgress is what the progress query and the result tell.
type BatchProgress struct {
	BatchID    string                 `json:"batch_id"`
	Status     string                 `json:"status"`
	Tenant     string                 `json:"tenant,omitempty"`
	Lines      int                    `json:"lines"`
	Chunks     int                    `json:"chunks"`
	ChunksDone int                    `json:"chunks_done"`
	Counts     contract.BatchCounts   `json:"counts"`
	Refusal    *contract.BatchRefusal `json:"refusal,omitempty"`
	ReportKey  string                 `json:"report_key,omitempty"`
}

// BatchImport runs a batch (see above). It has no update or signal handler today; it
// waits for handlers all the same on every exit, so that one added later cannot be cut off.
func BatchImport(ctx workflow.Context, in BatchImportInput) (BatchProgress, error) {
	p, err := batchImport(ctx, in)
	awaitHandlers(ctx)
	return p, err
}

func batchImport(ctx workflow.Context, in BatchImportInput) (BatchProgress, error) {
	var a *activities.Activities
	if in.Run == "" {
		in.Run = workflow.GetInfo(ctx).FirstRunID
	}
	p := BatchProgress{BatchID: in.BatchID, Status: BatchReading, Counts: in.Counts, ChunksDone: in.Next}
	if err := workflow.SetQueryHandler(ctx, BatchQueryProgress, func() (BatchProgress, error) { return p, nil }); err != nil {
		return p, err
	}
	if in.Read == nil {
		var read contract.BatchReadResult
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.BatchReadOptions), a.BatchRead,
			contract.BatchInput{BatchID: in.BatchID, Key: in.Key, ETag: in.ETag}).Get(ctx, &read)
		if err != nil {
			return p, err
		}
		in.Read = &read
	}
	r := in.Read
	p.Tenant, p.Lines, p.Chunks, p.Refusal = r.Tenant, r.Lines, r.Chunks, r.Refusal
	switch {
	case r.Gone:
		p.Status = BatchGone
		return p, nil
	case r.Refusal != nil:
		p.Status = BatchRefused
	default:
		p.Status = BatchImporting
		chunkCtx := workflow.WithActivityOptions(ctx, activities.BatchChunkOptions)
		for n := in.Next; n < r.Chunks; n++ {
			if n > in.Next && (n-in.Next >= BatchChunksPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()) {
				in.Next, in.Counts = n, p.Counts
				return p, workflow.NewContinueAsNewError(ctx, BatchImport, in)
			}
			var c contract.BatchCounts
			err := workflow.ExecuteActivity(chunkCtx, a.BatchChunk, activities.BatchChunkInput{BatchID: in.BatchID, Tenant: r.Tenant, Chunk: n}).Get(ctx, &c)
			if err != nil {
				return p, err
			}
			p.Counts = p.Counts.Add(c)
			p.ChunksDone = n + 1
		}
	}
	var fin contract.BatchFinishResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, activities.BatchFinishOptions), a.BatchFinish,
		contract.BatchInput{BatchID: in.BatchID, Key: in.Key, ETag: in.ETag, Refusal: r.Refusal, Counts: p.Counts, Chunks: r.Chunks, Run: in.Run}).Get(ctx, &fin)
	if err != nil {
		return p, err
	}
	p.ReportKey = fin.ReportKey
	if p.Status == BatchImporting {
		p.Status = BatchDone
	}
	return p, nil
}
