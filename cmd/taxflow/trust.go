package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/internal/trust"
)

// runTrust changes and shows the trust anchors (internal/trust). It runs with the
// operator's credentials: no function's role may write the trust bucket.
func runTrust(ctx context.Context, args []string, stdin io.Reader) error {
	var about []string
	for _, n := range trust.Names() {
		about = append(about, fmt.Sprintf("  %-6s %s (%s)", n, trust.Anchors[n].About, trust.Anchors[n].Key))
	}
	usage := fmt.Errorf("usage: taxflow trust put ANCHOR FILE|- | show\nanchors:\n%s", strings.Join(about, "\n"))
	if len(args) == 0 {
		return usage
	}
	switch {
	case args[0] == "put" && len(args) == 3:
		var body []byte
		var err error
		if args[2] == "-" {
			body, err = io.ReadAll(io.LimitReader(stdin, trust.MaxSize+1))
		} else {
			body, err = os.ReadFile(args[2])
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", args[2], err)
		}
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		bucket := a.cfg.Name(trust.Bucket)
		anchor, err := trust.Put(ctx, a.clients.S3, bucket, args[1], body)
		if err != nil {
			return err
		}
		// The checks cache what they read for a few minutes (esigncheck, bankcheck).
		fmt.Printf("put s3://%s/%s (%d bytes); the checks read it within 5 minutes\n", bucket, anchor.Key, len(body))
		return nil
	case args[0] == "show" && len(args) == 1:
		a, err := newApp(ctx)
		if err != nil {
			return err
		}
		bucket := a.cfg.Name(trust.Bucket)
		for _, n := range trust.Names() {
			key := trust.Anchors[n].Key
			h, err := a.clients.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			var nf interface{ ErrorCode() string }
			switch {
			case errors.As(err, &nf) && (nf.ErrorCode() == "NotFound" || nf.ErrorCode() == "NoSuchKey"):
				fmt.Printf("%-6s s3://%s/%s  absent\n", n, bucket, key)
			case err != nil:
				return fmt.Errorf("head s3://%s/%s: %w", bucket, key, err)
			default:
				version := "" // a versioned bucket (AWS) keeps the earlier ones; MinIO here is not versioned
				if v := aws.ToString(h.VersionId); v != "" && v != "null" {
					version = ", version " + v
				}
				fmt.Printf("%-6s s3://%s/%s  %d bytes, %s%s\n", n, bucket, key, aws.ToInt64(h.ContentLength),
					aws.ToTime(h.LastModified).UTC().Format("2006-01-02T15:04:05Z"), version)
			}
		}
		return nil
	}
	return usage
}
