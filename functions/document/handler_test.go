package document

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var pdf = []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n")

func input(doc string) []byte {
	b, _ := json.Marshal(contract.DocumentInput{CaseID: "refund-1", DocID: doc, Purpose: "supporting", IncomingKey: IncomingKey("refund-1", doc)})
	return b
}

func TestStoreAcceptsAndIsIdempotent(t *testing.T) {
	mem := storetest.NewS3()
	mem.Objects[IncomingKey("refund-1", "d1")] = pdf
	h := lambda.NewHandler(fn.Handler(Handler{S3: mem, Bucket: "b"}.Store))
	for i := 0; i < 2; i++ {
		out, err := h.Invoke(context.Background(), input("d1"))
		var res contract.DocumentResult
		if err != nil || json.Unmarshal(out, &res) != nil || !res.Accepted || res.Type != "pdf" || res.Key != StoredKey("refund-1", "d1") || res.SHA256 == "" {
			t.Fatalf("call %d: %s %v", i, out, err)
		}
	}
	if _, left := mem.Objects[IncomingKey("refund-1", "d1")]; left {
		t.Fatal("the upload was left under incoming/")
	}
	// An attempt that stored the document and died before removing the upload: the retry
	// answers the same and removes it.
	mem.Objects[IncomingKey("refund-1", "d1")] = pdf
	if _, err := h.Invoke(context.Background(), input("d1")); err != nil {
		t.Fatal(err)
	}
	if _, left := mem.Objects[IncomingKey("refund-1", "d1")]; left {
		t.Fatal("a retry after the copy left the upload under incoming/")
	}
	if mem.SSE[StoredKey("refund-1", "d1")] != "AES256" {
		t.Fatal("stored without server-side encryption")
	}
}

func TestStoreRefusesBadFileAndLeavesNothing(t *testing.T) {
	mem := storetest.NewS3()
	mem.Objects[IncomingKey("refund-1", "d2")] = pdf[:12]
	h := lambda.NewHandler(fn.Handler(Handler{S3: mem, Bucket: "b"}.Store))
	out, err := h.Invoke(context.Background(), input("d2"))
	var res contract.DocumentResult
	if err != nil || json.Unmarshal(out, &res) != nil || res.Accepted || res.Reason == "" {
		t.Fatalf("%s %v", out, err)
	}
	if len(mem.Objects) != 0 {
		t.Fatalf("objects left: %v", mem.Objects)
	}
}

func TestStoreInputErrors(t *testing.T) {
	h := lambda.NewHandler(fn.Handler(Handler{S3: storetest.NewS3(), Bucket: "b"}.Store))
	for name, in := range map[string]string{
		"missing upload": string(input("d3")),
		"bad doc id":     `{"case_id":"refund-1","doc_id":"../x","incoming_key":"incoming/refund-1/../x"}`,
		"wrong key":      `{"case_id":"refund-1","doc_id":"d4","incoming_key":"documents/refund-1/d4"}`,
	} {
		_, err := h.Invoke(context.Background(), []byte(in))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || !fnerr.IsBusiness(ie.Type) {
			t.Errorf("%s: want a business error, got %v", name, err)
		}
	}
}

// The upload is judged as a stream and copied by S3: what storing a file allocates does not
// grow with the file (the stream keeps only its first and last bytes): an 8 MB file costs
// about what a 1 MB file does, and far less than the file.
func TestStoreDoesNotHoldTheFile(t *testing.T) {
	allocated := func(size int) uint64 {
		mem := storetest.NewS3()
		file := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("0123456789abcdef\n"), size/17)...)
		file = append(file, "%%EOF\n"...)
		mem.Objects[IncomingKey("refund-1", "big")] = file
		h := Handler{S3: mem, Bucket: "b"}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		res, err := h.Store(context.Background(), contract.DocumentInput{CaseID: "refund-1", DocID: "big", Purpose: "supporting",
			IncomingKey: IncomingKey("refund-1", "big")})
		runtime.ReadMemStats(&after)
		if err != nil || !res.Accepted || res.Size != int64(len(file)) {
			t.Fatalf("%+v %v", res, err)
		}
		if sum := sha256.Sum256(file); res.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("digest %s is not the file's", res.SHA256)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	small, large := allocated(1<<20), allocated(8<<20)
	t.Logf("allocated: %d bytes for a 1 MB file, %d for an 8 MB file", small, large)
	if large > small+(1<<20) || large > (8<<20)/2 {
		t.Fatalf("allocations grow with the file (%d for 1 MB, %d for 8 MB): the file is held in memory", small, large)
	}
}

// An upload replaced while it was being judged is not stored under the old judgement: the
// copy is conditional on the ETag that was read, and the attempt fails (to be retried).
func TestStoreRefusesToCopyAReplacedUpload(t *testing.T) {
	mem := storetest.NewS3()
	key := IncomingKey("refund-1", "swap")
	mem.Objects[key] = pdf
	h := Handler{S3: swapOnRead{S3: mem, key: key, with: []byte("MZ not a pdf")}, Bucket: "b"}
	_, err := h.Store(context.Background(), contract.DocumentInput{CaseID: "refund-1", DocID: "swap", Purpose: "supporting", IncomingKey: key})
	if err == nil || !strings.Contains(err.Error(), "PreconditionFailed") {
		t.Fatalf("want the conditional copy to fail, got %v", err)
	}
	if _, stored := mem.Objects[StoredKey("refund-1", "swap")]; stored {
		t.Fatal("a file that was not judged was stored")
	}
}

// swapOnRead replaces an object right after it has been opened for reading.
type swapOnRead struct {
	*storetest.S3
	key  string
	with []byte
}

func (s swapOnRead) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := s.S3.GetObject(ctx, in, opts...)
	if err == nil && *in.Key == s.key {
		s.Put(s.key, s.with)
	}
	return out, err
}
