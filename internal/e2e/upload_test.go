//go:build integration

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// bigPDF is a complete PDF of exactly size bytes.
func bigPDF(size int) []byte {
	b := make([]byte, size)
	copy(b, "%PDF-1.7\n")
	for i := 9; i < size; i++ {
		b[i] = byte('a' + i%26)
	}
	copy(b[size-7:], "\n%%EOF\n")
	return b
}

// doStream sends body with no declared length (chunked), as a client streaming a file
// does: the API learns the size only by reading, so a body over the limit is found
// part-way through the upload to S3.
func (c *apiClient) doStream(path string, body []byte) (int, []byte) {
	c.t.Helper()
	base, key, _ := strings.Cut(c.base, "|")
	req, _ := http.NewRequest("POST", base+path, io.MultiReader(bytes.NewReader(body))) // no Len: chunked
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	checkContract(c.t, req, body, resp.StatusCode, resp.Header, b)
	return resp.StatusCode, b
}

// s3State lists the objects and the multipart uploads left open under prefix.
func s3State(t *testing.T, prefix string) (objects map[string]int64, open []string) {
	t.Helper()
	ctx := context.Background()
	bucket := shared.cfg.Name("documents")
	objects = map[string]int64{}
	list, err := shared.clients.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		objects[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	ups, err := shared.clients.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ups.Uploads {
		open = append(open, aws.ToString(u.Key))
	}
	return objects, open
}

// A declaration attachment of the largest size taken streams through the API to S3 and
// reads back whole and encrypted; a body over the limit (sent without a length, so it
// is found part-way, after parts were sent) answers 413 and leaves neither an object
// nor an open multipart upload; a file of the wrong type, or truncated, stores nothing.
func TestUploadsStreamToS3OverHTTP(t *testing.T) {
	ctx := context.Background()
	bucket := shared.cfg.Name("documents")
	queue := startWorker(t, lambdaInvoker())
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	base := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	ck, err := keys.Create(ctx, api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator,
		Scopes: []string{api.ScopeDeclarationsRead, api.ScopeDeclarationsWrite, api.ScopeRefundsRead, api.ScopeRefundsWrite}})
	if err != nil {
		t.Fatal(err)
	}
	cabinet := &apiClient{t, base + "|" + ck}
	inn := domain.CompleteINN12(fmt.Sprintf("66%08d", rand.IntN(100_000_000)))
	code, out := cabinet.do("POST", "/v1/declarations", declarationXML(inn, 14_000_000), "Idempotency-Key", uuid.NewString(),
		"Content-Type", "application/xml", "X-Confirmation-Method", "sms", "X-Confirmation-Reference", "sms-check-1")
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, out)
	}
	var created struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &created)
	id := created.CaseID
	cabinet.waitDeclaration(id, workflows.DeclarationClarification)
	attachments := "declarations/" + id + "/attachments/"

	t.Run("the largest file streams and reads back", func(t *testing.T) {
		file := bigPDF(api.FileBodyLimit)
		code, out := cabinet.doStream("/v1/declarations/"+id+"/documents", file)
		var res struct {
			DocID string `json:"doc_id"`
			Type  string `json:"type"`
		}
		if code != http.StatusAccepted || json.Unmarshal(out, &res) != nil || res.Type != string(docs.PDF) {
			t.Fatalf("upload: %d %s", code, out)
		}
		key := attachments + res.DocID + ".pdf"
		got, err := shared.clients.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, got.Body)
		_ = got.Body.Close()
		want := sha256.Sum256(file)
		if err != nil || n != int64(len(file)) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("read back %d bytes (%v), want %d with the same digest", n, err, len(file))
		}
		if got.ServerSideEncryption != s3types.ServerSideEncryptionAes256 || aws.ToString(got.ContentType) != "application/pdf" {
			t.Fatalf("stored with encryption %q, type %q", got.ServerSideEncryption, aws.ToString(got.ContentType))
		}
		// Over a part: it went as a multipart upload, completed.
		if !strings.Contains(aws.ToString(got.ETag), "-") {
			t.Errorf("ETag %s: not a multipart object", aws.ToString(got.ETag))
		}
	})
	before, _ := s3State(t, attachments)

	t.Run("over the limit: 413, nothing left", func(t *testing.T) {
		code, out := cabinet.doStream("/v1/declarations/"+id+"/documents", bigPDF(api.FileBodyLimit+(1<<20)))
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(out), fmt.Sprint(api.FileBodyLimit)) {
			t.Fatalf("got %d %s", code, out)
		}
		// MinIO lists open multipart uploads by exact key only, and the attachment's key is
		// made by the API: the refund route below, whose key the client names, checks them.
		if objects, _ := s3State(t, attachments); len(objects) != len(before) {
			t.Fatalf("left objects %v (before %v)", objects, before)
		}
	})

	t.Run("wrong type: refused, nothing stored", func(t *testing.T) {
		exe := append([]byte("MZ\x90\x00"), make([]byte, 6<<20)...)
		code, out := cabinet.doStream("/v1/declarations/"+id+"/documents", exe)
		if code != http.StatusBadRequest || !strings.Contains(string(out), "document_refused") {
			t.Fatalf("got %d %s", code, out)
		}
		// Truncated: the type is right, the end is missing; found after a part was sent.
		code, out = cabinet.doStream("/v1/declarations/"+id+"/documents", bigPDF(8 << 20)[:8<<20-3])
		if code != http.StatusBadRequest || !strings.Contains(string(out), "truncated") {
			t.Fatalf("truncated: got %d %s", code, out)
		}
		if objects, _ := s3State(t, attachments); len(objects) != len(before) {
			t.Fatalf("left objects %v (before %v)", objects, before)
		}
	})

	t.Run("refund documents: 413, truncated and wrong type leave nothing in incoming/", func(t *testing.T) {
		code, rid := cabinet.create(newTaxpayer(t, 600_000), 500_000, uuid.NewString())
		if code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		key := "incoming/" + rid + "/statement"
		// The listing does see an upload left open at the key (so its being empty below
		// means something).
		mp, err := shared.clients.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
		if err != nil {
			t.Fatal(err)
		}
		if _, open := s3State(t, key); len(open) != 1 {
			t.Fatalf("an open upload is not listed: %v", open)
		}
		if _, err := shared.clients.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mp.UploadId}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			body []byte
			want int
		}{
			{bigPDF(api.FileBodyLimit + (1 << 20)), http.StatusRequestEntityTooLarge}, // found in the third part: two were sent
			{bigPDF(8 << 20)[:8<<20-3], http.StatusBadRequest},                        // truncated: found at the end of the second part
			{[]byte("GIF89a not taken"), http.StatusBadRequest},
		} {
			if code, out := cabinet.doStream("/v1/refunds/"+rid+"/documents?doc_id=statement", c.body); code != c.want {
				t.Fatalf("want %d, got %d %s", c.want, code, out)
			}
			if objects, open := s3State(t, key); len(objects) != 0 || len(open) != 0 {
				t.Fatalf("left objects %v, open multipart uploads %v", objects, open)
			}
		}
	})
}
