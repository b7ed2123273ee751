package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/workflows"
)

// batchClient talks to the API as an integrator: TAXFLOW_API_URL (default the local
// API) and TAXFLOW_API_KEY (an integrator's key with the batches scopes).
type batchClient struct {
	base, key string
	http      *http.Client
}

func newBatchClient() (*batchClient, error) {
	key := os.Getenv("TAXFLOW_API_KEY")
	if key == "" {
		return nil, errors.New("TAXFLOW_API_KEY: set an integrator's API key (taxflow apikey create --tenant T --role integrator)")
	}
	base := os.Getenv("TAXFLOW_API_URL")
	if base == "" {
		addr := os.Getenv("TAXFLOW_API_ADDR")
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		base = "http://" + addr
	}
	return &batchClient{base: strings.TrimRight(base, "/"), key: key, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

func (c *batchClient) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

func runBatch(ctx context.Context, args []string) error {
	if len(args) != 2 || (args[0] != "submit" && args[0] != "status") {
		return errors.New("usage: taxflow batch submit FILE | taxflow batch status ID")
	}
	c, err := newBatchClient()
	if err != nil {
		return err
	}
	if args[0] == "status" {
		var v api.BatchView
		if _, err := c.call(ctx, "GET", "/v1/batches/"+args[1], nil, &v); err != nil {
			return err
		}
		printBatch(v)
		return nil
	}
	id, err := c.upload(ctx, args[1])
	if err != nil {
		return err
	}
	fmt.Println("batch", id)
	v, err := c.follow(ctx, id)
	if err != nil {
		return err
	}
	printBatch(v)
	return nil
}

// upload puts the file into the caller's inbox through a presigned PUT and returns the
// batch id the upload starts (bucket, key and the ETag the PUT answered).
func (c *batchClient) upload(ctx context.Context, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var up struct {
		URL     string            `json:"url"`
		Bucket  string            `json:"bucket"`
		Key     string            `json:"key"`
		Headers map[string]string `json:"headers"` // signed: the grant that names this key
	}
	if _, err := c.call(ctx, "POST", "/v1/batches/upload-url", api.BatchUploadRequest{FileName: filepath.Base(path), Size: int64(len(data))}, &up); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, "PUT", up.URL, bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	req.ContentLength = int64(len(data))
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload: %w", err)
	}
	_ = res.Body.Close()
	if res.StatusCode/100 != 2 {
		return "", fmt.Errorf("upload: %s", res.Status)
	}
	return batch.BatchID(up.Bucket, up.Key, res.Header.Get("ETag")), nil
}

// follow shows a progress bar of the batch's lines until its report exists.
func (c *batchClient) follow(ctx context.Context, id string) (api.BatchView, error) {
	bar := progressbar.NewOptions(-1, progressbar.OptionSetDescription("waiting for the intake"), progressbar.OptionShowCount(),
		progressbar.OptionSetWriter(os.Stderr), progressbar.OptionClearOnFinish())
	defer func() { _ = bar.Finish() }()
	sized := false
	for {
		var v api.BatchView
		code, err := c.call(ctx, "GET", "/v1/batches/"+id, nil, &v)
		switch {
		case code == http.StatusNotFound:
			// Not started yet: the event is on its way (the batch's owner is recorded
			// when it reads the file).
		case err != nil:
			return v, err
		default:
			if v.Lines > 0 && !sized {
				bar.ChangeMax(v.Lines)
				bar.Describe("importing")
				sized = true
			}
			_ = bar.Set(v.Counts.Lines)
			if v.Status != workflows.BatchReading && v.Status != workflows.BatchImporting && (v.ReportURL != "" || v.Status == workflows.BatchGone) {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return api.BatchView{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func printBatch(v api.BatchView) {
	fmt.Printf("batch %s: %s, %d lines (%d of %d chunks)\n", v.BatchID, v.Status, v.Lines, v.ChunksDone, v.Chunks)
	if v.Refusal != nil {
		fmt.Printf("  refused: %s: %s\n", v.Refusal.Code, v.Refusal.Reason)
	}
	k := v.Counts
	fmt.Printf("  created %d, existing %d, duplicates %d, errors %d\n", k.Created, k.Existing, k.Duplicates, k.Errors)
	if v.ReportURL != "" {
		fmt.Printf("  report: %s\n", v.ReportURL)
	}
}
