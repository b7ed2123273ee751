package storetest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 is an in-memory bucket for handler and workflow unit tests.
type S3 struct {
	mu      sync.Mutex
	Objects map[string][]byte
	Meta    map[string]map[string]string
	SSE     map[string]string
	Times   map[string]time.Time
}

// NewS3 returns an empty bucket.
func NewS3() *S3 {
	return &S3{Objects: map[string][]byte{}, Meta: map[string]map[string]string{}, SSE: map[string]string{}, Times: map[string]time.Time{}}
}

// Put stores an object directly (what an upload does).
func (m *S3) Put(key string, b []byte) { m.PutAt(key, b, time.Now()) }

// PutAt stores an object as last modified at t.
func (m *S3) PutAt(key string, b []byte, t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Objects[key], m.Times[key] = b, t
}

// ListObjectsV2 lists keys under a prefix in one page.
func (m *S3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(false)}
	var keys []string
	for k := range m.Objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := m.Times[k]
		out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k), LastModified: &t, Size: aws.Int64(int64(len(m.Objects[k])))})
	}
	return out, nil
}

func (m *S3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.Objects[*in.Key]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b))), ETag: aws.String(etag(b))}, nil
}

// etag is S3's ETag of a single-part object: its quoted MD5.
func etag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// CopyObject copies within the bucket (CopySource is "<bucket>/<key>", URL-encoded),
// honouring CopySourceIfMatch and replacing the metadata as MetadataDirective REPLACE does.
// The copy shares the source's bytes: objects are never changed in place.
func (m *S3) CopyObject(_ context.Context, in *s3.CopyObjectInput, _ ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	src, err := url.PathUnescape(aws.ToString(in.CopySource))
	if err != nil {
		return nil, &smithy.GenericAPIError{Code: "InvalidArgument", Message: "bad copy source"}
	}
	if _, key, ok := strings.Cut(src, "/"); ok {
		src = key
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.Objects[src]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NoSuchKey", Message: "The specified key does not exist."}
	}
	if in.CopySourceIfMatch != nil && *in.CopySourceIfMatch != etag(b) {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	k := aws.ToString(in.Key)
	m.Objects[k], m.Meta[k], m.SSE[k], m.Times[k] = b, in.Metadata, string(in.ServerSideEncryption), time.Now()
	return &s3.CopyObjectOutput{}, nil
}

func (m *S3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Objects[*in.Key], m.Meta[*in.Key], m.SSE[*in.Key], m.Times[*in.Key] = b, in.Metadata, string(in.ServerSideEncryption), time.Now()
	return &s3.PutObjectOutput{ServerSideEncryption: in.ServerSideEncryption}, nil
}

func (m *S3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.Objects[*in.Key]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "NotFound", Message: "Not Found"}
	}
	t := m.Times[*in.Key]
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(b))), Metadata: m.Meta[*in.Key], LastModified: &t}, nil
}

func (m *S3) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.Objects, *in.Key)
	return &s3.DeleteObjectOutput{}, nil
}
