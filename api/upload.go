package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/taxflow/taxflow/internal/docs"
)

// A document goes to S3 as it arrives, in parts of 5 MiB (the smallest S3 takes, so the
// fewest bytes held) with two parts in flight: an upload holds a few parts at most,
// whatever the file's size, and never the file whole when it is larger.
const (
	UploadPartSize    = manager.MinUploadPartSize
	UploadConcurrency = 2
	// uploadTimeout bounds the S3 side of one upload; the HTTP server's ReadTimeout
	// bounds the client's.
	uploadTimeout = 2 * time.Minute
)

// streamDocument judges the request body as a document for the purpose and streams it
// to S3 with server-side encryption. The type is judged on the first bytes before
// anything is written, and prepare (which may look the case up) runs only for an
// accepted type and names the key; a refused type stores nothing. The rest of the file
// is checked as it passes (docs.Stream): an incomplete file, or a body over limit, fails
// the upload, which is then aborted, so no object and no multipart upload is left. ok is
// false when an answer has been written: 413 over the limit, 400 for a refused file.
func (s *Server) streamDocument(w http.ResponseWriter, r *http.Request, purpose docs.Purpose, limit int64,
	prepare func(docs.Type) (key string, ok bool)) (key string, typ docs.Type, size int64, ok bool) {
	body := &readFailure{r: http.MaxBytesReader(w, r.Body, limit)}
	doc, err := docs.NewStream(body, purpose)
	if err != nil {
		s.uploadError(w, limit, err)
		return "", "", 0, false
	}
	typ = doc.Type()
	if key, ok = prepare(typ); !ok {
		return "", "", 0, false
	}
	// Not the request's context: an upload that fails half-way (the client gone, the
	// body over the limit) must still be aborted, and the read fails by itself then.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), uploadTimeout)
	defer cancel()
	err = s.putStream(ctx, key, typ, doc)
	switch {
	case err == nil:
		return key, typ, doc.Size(), true
	case docs.IsRejection(err) || body.err != nil:
		s.uploadError(w, limit, err)
	default:
		s.internal(w, "store upload", err)
	}
	return "", "", 0, false
}

// putStream writes body to key in parts (multipart once it is over a part), encrypted
// at rest like every object; a read error fails it and the upload is aborted.
func (s *Server) putStream(ctx context.Context, key string, typ docs.Type, body io.Reader) error {
	//nolint:staticcheck // SA1019: manager is deprecated for feature/s3/transfermanager, which the module proxy this project builds from does not serve; manager matches the SDK in go.mod.
	up := manager.NewUploader(s.S3, func(u *manager.Uploader) {
		u.PartSize, u.Concurrency = UploadPartSize, UploadConcurrency
		u.LeavePartsOnError = false // a failed upload is aborted: no parts stay stored, billed and unseen
	})
	//nolint:staticcheck // SA1019, as above.
	if _, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: body,
		ContentType: aws.String(typ.ContentType()), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return fmt.Errorf("upload %s: %w", typ, err)
	}
	return nil
}

// uploadError answers for a file that was refused or could not be read whole.
func (s *Server) uploadError(w http.ResponseWriter, limit int64, err error) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		tooLargeError(w, "the file", limit)
	case docs.IsRejection(err):
		writeError(w, http.StatusBadRequest, "document_refused", err.Error(), nil)
	default:
		s.Log.Warn().Err(err).Msg("an upload could not be read")
		writeError(w, http.StatusBadRequest, "invalid_request", "the file could not be read whole: send it again", nil)
	}
}

// tooLargeError is the 413 for a body over its route's limit, naming the limit.
func tooLargeError(w http.ResponseWriter, what string, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, "too_large",
		fmt.Sprintf("%s is larger than this operation accepts (%d bytes, %s)", what, limit, sizeName(limit)), nil)
}

// sizeName says a limit the way people read it: "10 MB", "128 KB".
func sizeName(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readFailure keeps the first error other than io.EOF from reading the body, so that a
// failed upload is told apart: the client's (400, 413) or S3's (503).
type readFailure struct {
	r   io.Reader
	err error
}

func (f *readFailure) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

// readBody reads a body that is used whole (a JSON request, a declaration to parse, a
// body hashed for idempotency), up to limit: over it, 413 naming the limit (the tighter
// of limit and the route's own, limitBody). ok is false when an answer has been written.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		tooLargeError(w, "the body", tooLarge.Limit)
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "the body could not be read whole: send it again", nil)
		return nil, false
	}
	return body, true
}
