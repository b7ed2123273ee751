package document

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// memS3 is an in-memory bucket.
type memS3 struct {
	objects map[string][]byte
	meta    map[string]map[string]string
	sse     map[string]string
}

func newMem() *memS3 {
	return &memS3{objects: map[string][]byte{}, meta: map[string]map[string]string{}, sse: map[string]string{}}
}

var noKey = &smithy.GenericAPIError{Code: "NoSuchKey", Message: "not found"}

func (m *memS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	b, ok := m.objects[*in.Key]
	if !ok {
		return nil, noKey
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (m *memS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, _ := io.ReadAll(in.Body)
	m.objects[*in.Key], m.meta[*in.Key], m.sse[*in.Key] = b, in.Metadata, string(in.ServerSideEncryption)
	return &s3.PutObjectOutput{}, nil
}

func (m *memS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	b, ok := m.objects[*in.Key]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NotFound"}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(b))), Metadata: m.meta[*in.Key]}, nil
}

func (m *memS3) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	delete(m.objects, *in.Key)
	return &s3.DeleteObjectOutput{}, nil
}

var pdf = []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n")

func input(doc string) []byte {
	b, _ := json.Marshal(contract.DocumentInput{CaseID: "refund-1", DocID: doc, Purpose: "supporting", IncomingKey: IncomingKey("refund-1", doc)})
	return b
}

func TestStoreAcceptsAndIsIdempotent(t *testing.T) {
	mem := newMem()
	mem.objects[IncomingKey("refund-1", "d1")] = pdf
	h := lambda.NewHandler(fn.Handler(Handler{S3: mem, Bucket: "b"}.Store))
	for i := 0; i < 2; i++ {
		out, err := h.Invoke(context.Background(), input("d1"))
		var res contract.DocumentResult
		if err != nil || json.Unmarshal(out, &res) != nil || !res.Accepted || res.Type != "pdf" || res.Key != StoredKey("refund-1", "d1") || res.SHA256 == "" {
			t.Fatalf("call %d: %s %v", i, out, err)
		}
	}
	if _, left := mem.objects[IncomingKey("refund-1", "d1")]; left {
		t.Fatal("the upload was left under incoming/")
	}
	if mem.sse[StoredKey("refund-1", "d1")] != "AES256" {
		t.Fatal("stored without server-side encryption")
	}
}

func TestStoreRefusesBadFileAndLeavesNothing(t *testing.T) {
	mem := newMem()
	mem.objects[IncomingKey("refund-1", "d2")] = pdf[:12]
	h := lambda.NewHandler(fn.Handler(Handler{S3: mem, Bucket: "b"}.Store))
	out, err := h.Invoke(context.Background(), input("d2"))
	var res contract.DocumentResult
	if err != nil || json.Unmarshal(out, &res) != nil || res.Accepted || res.Reason == "" {
		t.Fatalf("%s %v", out, err)
	}
	if len(mem.objects) != 0 {
		t.Fatalf("objects left: %v", mem.objects)
	}
}

func TestStoreInputErrors(t *testing.T) {
	h := lambda.NewHandler(fn.Handler(Handler{S3: newMem(), Bucket: "b"}.Store))
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
