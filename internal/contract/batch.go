package contract

// FnBatch reads a back-office batch file, keeps its parsed chunks and per-line results,
// and writes the report (operations BatchOp*).
const FnBatch = "batch"

// FnIntake starts a BatchImport per object created in the inbox.
const FnIntake = "intake"

// Operations of the batch function.
const (
	BatchOpRead   = "read"   // parse the inbox object, store its chunks, record the batch's owner
	BatchOpChunk  = "chunk"  // hand back one stored chunk's lines
	BatchOpRecord = "record" // store one chunk's per-line results
	BatchOpFinish = "finish" // write the report, move the source, journal the counts
)

// BatchInput is the input of every batch operation.
type BatchInput struct {
	Op      string            `json:"op"`
	BatchID string            `json:"batch_id"`
	Key     string            `json:"key,omitempty"`   // the inbox object (read, finish)
	ETag    string            `json:"etag,omitempty"`  // read: the object version the batch is about
	Chunk   int               `json:"chunk,omitempty"` // chunk, record
	Results []BatchLineResult `json:"results,omitempty"`
	// Finish: what the batch found.
	Refusal *BatchRefusal `json:"refusal,omitempty"`
	Counts  BatchCounts   `json:"counts"`
	Chunks  int           `json:"chunks,omitempty"`
	// Run names the workflow run (its first run id) that finishes: the journal entry's key.
	Run string `json:"run,omitempty"`
}

// BatchRefusal is why a whole file was refused.
type BatchRefusal struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// BatchReadResult says what a file holds. Gone: the object is no longer in the inbox (the
// event came again after the batch had moved it): there is nothing to do.
type BatchReadResult struct {
	Gone      bool          `json:"gone,omitempty"`
	Tenant    string        `json:"tenant,omitempty"`
	Refusal   *BatchRefusal `json:"refusal,omitempty"`
	Lines     int           `json:"lines"`
	Invalid   int           `json:"invalid"`
	Chunks    int           `json:"chunks"`
	ChunkSize int           `json:"chunk_size"`
}

// BatchCounts are a batch's totals; every line is counted exactly once among Created,
// Existing, Duplicates and Errors.
type BatchCounts struct {
	Lines      int `json:"lines"`
	Created    int `json:"created"`    // a new case
	Existing   int `json:"existing"`   // the case of an earlier file (or an event delivered)
	Duplicates int `json:"duplicates"` // a line repeating an earlier line of this file
	Errors     int `json:"errors"`     // refused: the error says why
}

// Add sums counts.
func (c BatchCounts) Add(o BatchCounts) BatchCounts {
	return BatchCounts{Lines: c.Lines + o.Lines, Created: c.Created + o.Created, Existing: c.Existing + o.Existing,
		Duplicates: c.Duplicates + o.Duplicates, Errors: c.Errors + o.Errors}
}

// Line outcomes in a report.
const (
	LineCreated   = "created"
	LineExisting  = "existing"
	LineDelivered = "delivered" // an account event handed to the account
	LineDuplicate = "duplicate"
	LineError     = "error"
)

// BatchLineResult is one line of the report.
type BatchLineResult struct {
	Line       int    `json:"line"`
	ExternalID string `json:"external_id,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Outcome    string `json:"outcome"`
	CaseID     string `json:"case_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Count adds a result to counts.
func (c *BatchCounts) Count(r BatchLineResult) {
	c.Lines++
	switch r.Outcome {
	case LineCreated:
		c.Created++
	case LineExisting, LineDelivered:
		c.Existing++
	case LineDuplicate:
		c.Duplicates++
	default:
		c.Errors++
	}
}

// BatchFinishResult is where the report went.
type BatchFinishResult struct {
	ReportKey string `json:"report_key"`
	MovedTo   string `json:"moved_to,omitempty"`
}
