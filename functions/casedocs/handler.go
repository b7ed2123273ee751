// Package casedocs destroys every document of one case: the stored documents
// (documents/<case>/) and uploads still waiting to be judged (incoming/<case>/). It runs
// when a taxpayer withdraws consent to the processing of personal data and does not give
// it again: the data are destroyed within 30 days of the withdrawal (Federal Law 152-FZ
// art. 21 p.5). Deleting is idempotent: a retry removes what is left, and a case without
// documents deletes nothing.
package casedocs

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Prefixes holds the case's documents, each followed by "<case>/".
var Prefixes = []string{"documents/", "incoming/"}

// S3 is what the function needs of S3.
type S3 interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

var _ S3 = (*s3.Client)(nil)

// Handler deletes from the documents bucket.
type Handler struct {
	S3     S3
	Bucket string
}

// caseRE is a case id (process-uuid): never empty, never a path, so a prefix built from it
// names exactly one case's folder.
var caseRE = regexp.MustCompile(`^[a-z]+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Delete removes every object under the case's prefixes, a page at a time.
func (h Handler) Delete(ctx context.Context, in contract.CaseDocumentsDeleteInput) (contract.CaseDocumentsDeleteResult, error) {
	if !caseRE.MatchString(in.CaseID) {
		return contract.CaseDocumentsDeleteResult{}, fnerr.Invalid("case_id", "must be a case id such as identity-<uuid>")
	}
	var res contract.CaseDocumentsDeleteResult
	for _, p := range Prefixes {
		prefix := p + in.CaseID + "/"
		var token *string
		for {
			page, err := h.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &h.Bucket, Prefix: aws.String(prefix), ContinuationToken: token})
			if err != nil {
				return res, fmt.Errorf("list the case's documents: %w", err)
			}
			for _, o := range page.Contents {
				if _, err := h.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &h.Bucket, Key: o.Key}); err != nil {
					return res, fmt.Errorf("delete a document of the case: %w", err)
				}
				res.Deleted++
			}
			if !aws.ToBool(page.IsTruncated) {
				break
			}
			token = page.NextContinuationToken
		}
	}
	return res, nil
}
