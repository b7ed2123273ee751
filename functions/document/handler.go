// Package document validates an uploaded file and stores it for good: the API (or a
// presigned upload) puts it under incoming/; this function reads it, judges it by its
// bytes (internal/docs), and either copies it to documents/ with server-side encryption
// or refuses it with a reason for the taxpayer. Either way the incoming object is
// removed, so nothing half-stored remains. The file is read as a stream (internal/docs
// Stream: judged on its first bytes, hashed as it passes, its end checked) and never held
// whole; the stored copy is made by S3 itself (CopyObject, conditional on the ETag that was
// read), so the function's memory does not grow with the file.
package document

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Bucket is the logical name of the documents bucket (contract.DocumentsBucket).
const Bucket = contract.DocumentsBucket

// S3 is the part of the S3 client the function uses.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// Handler stores documents.
type Handler struct {
	S3     S3
	Bucket string
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,79}$`)

// StoredKey is where an accepted document lives (contract.StoredDocumentKey).
func StoredKey(caseID, docID string) string { return contract.StoredDocumentKey(caseID, docID) }

// IncomingKey is where an upload waits to be judged (contract.IncomingDocumentKey).
func IncomingKey(caseID, docID string) string { return contract.IncomingDocumentKey(caseID, docID) }

// Store validates and stores one document. It is idempotent: a retry after the copy
// finds the stored object and answers the same.
func (h Handler) Store(ctx context.Context, in contract.DocumentInput) (contract.DocumentResult, error) {
	if !idRE.MatchString(in.CaseID) {
		return contract.DocumentResult{}, fnerr.Invalid("case_id", "must be a case id")
	}
	if !idRE.MatchString(in.DocID) {
		return contract.DocumentResult{}, fnerr.Invalid("doc_id", "must be lower-case letters, digits and '-'")
	}
	if in.IncomingKey != IncomingKey(in.CaseID, in.DocID) {
		return contract.DocumentResult{}, fnerr.Invalid("incoming_key", "must be incoming/<case_id>/<doc_id>")
	}
	purpose := docs.Purpose(in.Purpose)
	stored := StoredKey(in.CaseID, in.DocID)

	// Already stored by an earlier attempt?
	if head, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &h.Bucket, Key: &stored}); err == nil {
		// An attempt that stored it may have died before removing the upload.
		if err := h.removeIncoming(ctx, in.IncomingKey); err != nil {
			return contract.DocumentResult{}, err
		}
		return contract.DocumentResult{Accepted: true, Key: stored, Type: head.Metadata["type"], Size: aws.ToInt64(head.ContentLength),
			SHA256: head.Metadata["sha256"]}, nil
	} else if !notFound(err) {
		return contract.DocumentResult{}, fmt.Errorf("look for stored document: %w", err)
	}

	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &in.IncomingKey})
	if notFound(err) {
		return contract.DocumentResult{}, fnerr.NotFound("no upload at incoming/%s/%s", in.CaseID, in.DocID)
	}
	if err != nil {
		return contract.DocumentResult{}, fmt.Errorf("read upload: %w", err)
	}
	defer func() { _ = obj.Body.Close() }() // a reader: what was read is all that is needed
	typ, size, digest, err := judge(obj.Body, purpose)
	if err != nil {
		if !docs.IsRejection(err) {
			return contract.DocumentResult{}, err
		}
		if err := h.removeIncoming(ctx, in.IncomingKey); err != nil {
			return contract.DocumentResult{}, err
		}
		return contract.DocumentResult{Accepted: false, Reason: err.Error()}, nil
	}
	// S3 copies the bytes that were judged, and only those: if the upload was replaced
	// while it was read, the ETag no longer matches and the attempt fails (retried, it
	// judges the new file).
	_, err = h.S3.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &h.Bucket, Key: &stored,
		// The key was checked above to be incoming/<id>/<id> of [a-z0-9-]: nothing to escape.
		CopySource:           aws.String(h.Bucket + "/" + in.IncomingKey),
		CopySourceIfMatch:    obj.ETag,
		MetadataDirective:    s3types.MetadataDirectiveReplace,
		ContentType:          aws.String(typ.ContentType()),
		ServerSideEncryption: s3types.ServerSideEncryptionAes256,
		Metadata:             map[string]string{"type": string(typ), "sha256": digest, "case": in.CaseID},
	})
	if err != nil {
		return contract.DocumentResult{}, fmt.Errorf("store document: %w", err)
	}
	if err := h.removeIncoming(ctx, in.IncomingKey); err != nil {
		return contract.DocumentResult{}, err
	}
	return contract.DocumentResult{Accepted: true, Key: stored, Type: string(typ), Size: size, SHA256: digest}, nil
}

// judge reads an upload through docs.Stream, hashing it as it passes: the type, size and
// SHA-256 of an acceptable file, or a *docs.Rejection saying why it is not one.
func judge(body io.Reader, p docs.Purpose) (docs.Type, int64, string, error) {
	st, err := docs.NewStream(body, p)
	if err != nil {
		return "", 0, "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, st); err != nil {
		if docs.IsRejection(err) {
			return "", 0, "", err
		}
		return "", 0, "", fmt.Errorf("read upload: %w", err)
	}
	return st.Type(), st.Size(), hex.EncodeToString(h.Sum(nil)), nil
}

func (h Handler) removeIncoming(ctx context.Context, key string) error {
	if _, err := h.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &h.Bucket, Key: &key}); err != nil && !notFound(err) {
		return fmt.Errorf("remove upload: %w", err)
	}
	return nil
}

func notFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		c := ae.ErrorCode()
		return c == "NoSuchKey" || c == "NotFound" || strings.HasSuffix(c, "NotFound")
	}
	return false
}
