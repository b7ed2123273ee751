// Package retention removes generated documents from the cabinet's bucket once they are
// older than the retention period (30 days [004:169]); on AWS the bucket's lifecycle
// rule does the same (infra/declaration.go), and this job keeps every other endpoint
// (MinIO, LocalStack) to the rule too.
package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
)

// Prefix is where generated documents live.
const Prefix = "generated/"

// S3 is what the job needs of S3.
type S3 interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Handler removes expired documents a page at a time.
type Handler struct {
	S3     S3
	Bucket string
}

// Sweep handles one page of the generated/ prefix.
func (h Handler) Sweep(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	day, err := time.Parse(time.DateOnly, in.Date)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("date", "must be YYYY-MM-DD")
	}
	if in.KeepDays <= 0 {
		return contract.SweepResult{}, fnerr.Invalid("keep_days", "must be greater than 0")
	}
	if in.Limit <= 0 || in.Limit > 1000 {
		in.Limit = 1000
	}
	list := &s3.ListObjectsV2Input{Bucket: &h.Bucket, Prefix: aws.String(Prefix), MaxKeys: aws.Int32(int32(in.Limit))}
	if in.Cursor != "" {
		list.ContinuationToken = aws.String(in.Cursor)
	}
	page, err := h.S3.ListObjectsV2(ctx, list)
	if err != nil {
		return contract.SweepResult{}, fmt.Errorf("list generated documents: %w", err)
	}
	res := contract.SweepResult{Processed: len(page.Contents)}
	if aws.ToBool(page.IsTruncated) {
		res.Cursor = aws.ToString(page.NextContinuationToken)
	}
	cutoff := day.AddDate(0, 0, -in.KeepDays)
	for _, o := range page.Contents {
		if o.LastModified == nil || !o.LastModified.Before(cutoff) {
			continue
		}
		if _, err := h.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &h.Bucket, Key: o.Key}); err != nil {
			return res, fmt.Errorf("remove %s: %w", aws.ToString(o.Key), err)
		}
		res.Flagged++
	}
	return res, nil
}
