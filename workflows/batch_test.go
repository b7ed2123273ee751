package workflows

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/taxflow/taxflow/activities"
	batchfn "github.com/taxflow/taxflow/functions/batch"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// fakeStarter creates each (tenant, kind, external id) case once, as Temporal's
// workflow-id rules do for the API's starter; failAt makes the n-th start fail once, as a
// worker that dies mid-chunk.
type fakeStarter struct {
	mu      sync.Mutex
	cases   map[string]int // case id → times created
	calls   int
	failAt  map[int]bool
	refuse  string // an external id the registry refuses
	started []string
}

func (f *fakeStarter) StartBatchLine(_ context.Context, tenant string, l batch.Line) (contract.BatchLineResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failAt[f.calls] {
		delete(f.failAt, f.calls)
		return contract.BatchLineResult{}, errors.New("temporal unavailable")
	}
	if l.ExternalID == f.refuse {
		return contract.BatchLineResult{Outcome: contract.LineError, Error: "inn: no taxpayer with this INN in the registry"}, nil
	}
	id := RefundID(batch.CaseKey(tenant, l.Kind, l.ExternalID))
	f.cases[id]++
	if f.cases[id] > 1 {
		return contract.BatchLineResult{Outcome: contract.LineExisting, CaseID: id}, nil
	}
	f.started = append(f.started, id)
	return contract.BatchLineResult{Outcome: contract.LineCreated, CaseID: id}, nil
}

type batchRig struct {
	db      *storetest.DB
	s3      *storetest.S3
	starter *fakeStarter
}

func newBatchRig() *batchRig {
	return &batchRig{
		db:      storetest.New(map[string]storetest.Key{"case_owners": {PK: "case_id"}, "audit": {PK: "case_id", SK: "entry_id"}}),
		s3:      storetest.NewS3(),
		starter: &fakeStarter{cases: map[string]int{}, failAt: map[int]bool{}},
	}
}

func (r *batchRig) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflow(BatchImport)
	// Thousands of lines under -race on a busy machine take longer than the default 3 s.
	env.SetTestTimeout(2 * time.Minute)
	h := batchfn.Handler{S3: r.s3, Bucket: "documents", DB: r.db, Owners: "case_owners", Journal: "audit",
		Limits: batch.DefaultLimits, Now: time.Now}
	env.RegisterActivity(&activities.Activities{Invoker: invoker.NewInProcess(map[string]any{contract.FnBatch: fn.Handler(h.Handle)}),
		Lines: r.starter})
	return env
}

// run drives a batch to its end, following continue-as-new.
func (r *batchRig) run(t *testing.T, key string) (BatchProgress, int) {
	t.Helper()
	in := BatchImportInput{BatchID: batch.BatchID("documents", key, "e1"), Key: key}
	for runs := 1; ; runs++ {
		env := r.env()
		env.ExecuteWorkflow(BatchImport, in)
		require.True(t, env.IsWorkflowCompleted())
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
			continue
		}
		require.NoError(t, err)
		var p BatchProgress
		require.NoError(t, env.GetWorkflowResult(&p))
		return p, runs
	}
}

func refundRows(from, to int) []string {
	var rows []string
	for i := from; i < to; i++ {
		rows = append(rows, fmt.Sprintf("1,refund,r-%d,%s,2025,%d,overpaid income tax", i, testINN, 1000+i))
	}
	return rows
}

func batchCSV(rows []string) []byte {
	return []byte("schema_version,kind,external_id,inn,period,amount_kopecks,reason\n" + strings.Join(rows, "\n") + "\n")
}

func (r *batchRig) report(t *testing.T, p BatchProgress) [][]string {
	t.Helper()
	b, ok := r.s3.Objects[p.ReportKey]
	require.True(t, ok, "report at %s", p.ReportKey)
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	require.NoError(t, err)
	return rows
}

func TestBatchGoodBadAndRepeatedLines(t *testing.T) {
	r := newBatchRig()
	rows := append(refundRows(0, 3),
		"1,refund,r-bad,"+testINN+",2025,12.5,why",               // a fraction of a kopeck
		"1,refund,r-1,"+testINN+",2025,1001,overpaid income tax", // repeats line 3
		"1,refund,r-unknown,"+testINN+",2025,100,why")            // the registry refuses it
	r.starter.refuse = "r-unknown"
	key := "inbox/bank-a/night.csv"
	r.s3.Put(key, batchCSV(rows))

	p, _ := r.run(t, key)
	assert.Equal(t, BatchDone, p.Status)
	assert.Equal(t, contract.BatchCounts{Lines: 6, Created: 3, Duplicates: 1, Errors: 2}, p.Counts)
	assert.Len(t, r.starter.started, 3)
	rep := r.report(t, p)
	require.Len(t, rep, 7)
	assert.Equal(t, []string{"line", "external_id", "kind", "outcome", "case_id", "error"}, rep[0])
	assert.Equal(t, "created", rep[1][3])
	assert.Equal(t, []string{"5", "r-bad", "refund", "error", "", "amount_kopecks: must be a whole number (no fraction, no exponent)"}, rep[4])
	assert.Equal(t, "duplicate", rep[5][3])
	assert.Equal(t, rep[2][4], rep[5][4], "a repeated line names the case of the line it repeats")
	assert.Equal(t, "error", rep[6][3])
	assert.Equal(t, "reports/bank-a/"+p.BatchID+".csv", p.ReportKey)
	assert.NotContains(t, r.s3.Objects, key, "the source left the inbox")
	assert.Contains(t, r.s3.Objects, "processed/bank-a/night.csv")
	assert.Len(t, r.db.Items("audit"), 1, "the journal records the counts")
	assert.NotContains(t, string(r.s3.Objects[p.ReportKey]), testINN, "the report carries no INN")
	assert.NotContains(t, p.BatchID, "bank-a")

	// The same file again: no second case; every line names its existing case.
	r.s3.Put(key, batchCSV(rows))
	again, _ := r.run(t, key)
	assert.Equal(t, contract.BatchCounts{Lines: 6, Existing: 3, Duplicates: 1, Errors: 2}, again.Counts)
	assert.Len(t, r.starter.started, 3, "a re-upload creates no case")
}

func TestBatchRefusedWholeFile(t *testing.T) {
	r := newBatchRig()
	key := "inbox/bank-a/bad.csv"
	r.s3.Put(key, []byte("schema_version,kind,external_id,colour\n1,refund,r-1,red\n"))
	p, _ := r.run(t, key)
	assert.Equal(t, BatchRefused, p.Status)
	require.NotNil(t, p.Refusal)
	assert.Equal(t, batch.RefusedHeader, p.Refusal.Code)
	assert.Zero(t, r.starter.calls, "nothing of a refused file starts a case")
	assert.Contains(t, r.s3.Objects, "rejected/bank-a/bad.csv")
	rep := r.report(t, p)
	assert.Equal(t, "refused", rep[1][3])
	assert.Contains(t, rep[1][5], "unknown_header")
}

// The same event delivered after the batch moved the file finds nothing to do.
func TestBatchEventAgainAfterTheFileMoved(t *testing.T) {
	r := newBatchRig()
	p, _ := r.run(t, "inbox/bank-a/gone.csv")
	assert.Equal(t, BatchGone, p.Status)
	assert.Empty(t, p.ReportKey)
	assert.Zero(t, r.starter.calls)
}

// A chunk that fails mid-way (a worker killed, Temporal unreachable) is retried and
// resumes; every line ends with exactly one result, and every case is created once.
func TestBatchResumesAfterAFailureMidChunk(t *testing.T) {
	r := newBatchRig()
	r.starter.failAt = map[int]bool{100: true, 400: true}
	key := "inbox/bank-a/resume.csv"
	n := 2*batchfn.ChunkSize + 17
	r.s3.Put(key, batchCSV(refundRows(0, n)))
	p, _ := r.run(t, key)
	assert.Equal(t, BatchDone, p.Status)
	assert.Empty(t, r.starter.failAt, "both failures happened")
	assert.Equal(t, n, p.Counts.Lines)
	assert.Equal(t, n, p.Counts.Created+p.Counts.Existing, "every line reached its case")
	assert.Len(t, r.starter.started, n, "each case created exactly once")
	rep := r.report(t, p)
	require.Len(t, rep, n+1)
	seen := map[string]bool{}
	for _, row := range rep[1:] {
		assert.False(t, seen[row[0]], "line %s reported twice", row[0])
		seen[row[0]] = true
		assert.NotEmpty(t, row[4])
	}
}

// A file of more chunks than one run imports continues as new and loses nothing.
func TestBatchContinuesAsNewWithoutLosingLines(t *testing.T) {
	if testing.Short() {
		t.Skip("12,750 lines")
	}
	r := newBatchRig()
	key := "inbox/bank-a/large.jsonl"
	n := (BatchChunksPerRun+1)*batchfn.ChunkSize + 3
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"schema_version":1,"kind":"refund","external_id":"r-%d","inn":"%s","period":2025,"amount_kopecks":%d,"reason":"x"}`+"\n", i, testINN, 100+i)
	}
	r.s3.Put(key, []byte(b.String()))
	p, runs := r.run(t, key)
	assert.Equal(t, 2, runs)
	assert.Equal(t, BatchDone, p.Status)
	assert.Equal(t, contract.BatchCounts{Lines: n, Created: n}, p.Counts)
	assert.Equal(t, BatchChunksPerRun+2, p.ChunksDone)
	assert.Len(t, r.report(t, p), n+1)
}

func TestBatchProgressQuery(t *testing.T) {
	r := newBatchRig()
	key := "inbox/bank-a/q.csv"
	r.s3.Put(key, batchCSV(refundRows(0, 3)))
	env := r.env()
	env.ExecuteWorkflow(BatchImport, BatchImportInput{BatchID: batch.BatchID("documents", key, ""), Key: key})
	v, err := env.QueryWorkflow(BatchQueryProgress)
	require.NoError(t, err)
	var p BatchProgress
	require.NoError(t, v.Get(&p))
	assert.Equal(t, BatchDone, p.Status)
	assert.Equal(t, 3, p.Counts.Created)
	assert.Equal(t, "bank-a", p.Tenant)
}
