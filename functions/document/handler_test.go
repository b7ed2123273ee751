package document

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

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
