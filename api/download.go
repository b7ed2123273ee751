package api

import (
	"context"
	"fmt"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// downloadURL presigns a short-lived GET of a stored object that a browser saves instead
// of rendering: S3 answers it with Content-Disposition: attachment (the link's
// response-content-disposition). A stored file is never shown inline from S3's origin,
// so a document that slipped past the upload checks (an HTML or SVG page, a script)
// cannot run in the browser of whoever opens the link: a taxpayer, an inspector in the
// console. name is the file name offered (the key's last part when empty).
func (s *Server) downloadURL(ctx context.Context, key, name string, ttl time.Duration) (string, error) {
	out, err := s3.NewPresignClient(s.S3).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key,
		ResponseContentDisposition: aws.String(Attachment(name, key))}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return out.URL, nil
}

// Attachment is the Content-Disposition of a download: attachment, with the file name
// (RFC 6266; a name outside ASCII is sent as filename*, RFC 2231, by mime).
func Attachment(name, key string) string {
	if name == "" {
		name = path.Base(key)
	}
	// A name is a label, not a path or a header: no separators, quotes or controls.
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`/\"`, r) {
			return '_'
		}
		return r
	}, name)
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}
