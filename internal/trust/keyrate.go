package trust

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/internal/keyrate"
)

// KeyRateS3 is the part of the S3 client KeyRateStore uses.
type KeyRateS3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// KeyRateStore is the operator's key-rate table (keyrate.Store) as an object of the trust
// bucket (keyrate.StoreKey): only an operator writes it (`taxflow keyrate`), the worker
// reads it (keyrate.Live).
type KeyRateStore struct {
	Client KeyRateS3
	Bucket string
}

// Get reads the stored table; nil when there is none.
func (s KeyRateStore) Get(ctx context.Context) ([]byte, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(keyrate.StoreKey)})
	var nf interface{ ErrorCode() string }
	if errors.As(err, &nf) && (nf.ErrorCode() == "NoSuchKey" || nf.ErrorCode() == "NotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.Bucket, keyrate.StoreKey, err)
	}
	defer func() { _ = out.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(out.Body, keyrate.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, keyrate.StoreKey, err)
	}
	if len(b) > keyrate.MaxSize {
		return nil, fmt.Errorf("s3://%s/%s: larger than %d bytes", s.Bucket, keyrate.StoreKey, keyrate.MaxSize)
	}
	return b, nil
}

// Put writes the table (the bucket is versioned on AWS: earlier tables are kept).
func (s KeyRateStore) Put(ctx context.Context, body []byte) error {
	if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(keyrate.StoreKey),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json")}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.Bucket, keyrate.StoreKey, err)
	}
	return nil
}
