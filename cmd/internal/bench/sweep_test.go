package bench

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeWriter leaves the last item of a batch unprocessed `leave` times, or always fails.
type fakeWriter struct {
	mu      sync.Mutex
	fail    bool
	leave   int
	calls   int
	written int
}

func (f *fakeWriter) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail {
		return nil, errors.New("throttled")
	}
	out := &dynamodb.BatchWriteItemOutput{}
	for table, items := range in.RequestItems {
		if f.leave > 0 && len(items) > 0 {
			f.leave--
			f.written += len(items) - 1
			out.UnprocessedItems = map[string][]types.WriteRequest{table: items[len(items)-1:]}
			continue
		}
		f.written += len(items)
	}
	return out, nil
}

func batchesOf(n int) [][]types.WriteRequest {
	var out [][]types.WriteRequest
	for i := 0; i < n; i++ {
		out = append(out, make([]types.WriteRequest, 25))
	}
	return out
}

func quick() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }

func TestLoadBatchesRetriesUnprocessed(t *testing.T) {
	w := &fakeWriter{leave: 5}
	require.NoError(t, loadBatches(context.Background(), w, "t", batchesOf(10), 3, quick))
	assert.Equal(t, 250, w.written, "every item written once")
	assert.Equal(t, 15, w.calls, "each unprocessed remainder retried once")
}

// Every loader failing used to block the producer forever; now the load ends with the error.
func TestLoadBatchesFailsWhenEveryLoaderFails(t *testing.T) {
	w := &fakeWriter{fail: true}
	done := make(chan error, 1)
	go func() { done <- loadBatches(context.Background(), w, "t", batchesOf(100), 8, quick) }()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.Contains(t, err.Error(), "throttled")
	case <-time.After(30 * time.Second):
		t.Fatal("the load blocked when every loader failed")
	}
	assert.Less(t, w.calls, 100*20, "the first failure stops the other batches")
}
