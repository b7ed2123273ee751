package batch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/taxflow/taxflow/functions/fn"
	ibatch "github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/contract"
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
