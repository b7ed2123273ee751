package lambdahost

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// FunctionConfig is the part of Lambda's FunctionConfiguration the host keeps and reports.
type FunctionConfig struct {
	FunctionName string            `json:"FunctionName"`
	Runtime      string            `json:"Runtime,omitempty"`
	Role         string            `json:"Role,omitempty"`
	Handler      string            `json:"Handler,omitempty"`
	Description  string            `json:"Description,omitempty"`
	Timeout      int32             `json:"Timeout"`
	MemorySize   int32             `json:"MemorySize"`
	Environment  map[string]string `json:"Environment,omitempty"`
	CodeSha256   string            `json:"CodeSha256"`
	CodeSize     int64             `json:"CodeSize"`
	LastModified string            `json:"LastModified"`
}

// Defaults as AWS applies them.
const (
	defaultTimeout = 3
	defaultMemory  = 128
	maxTimeout     = 900
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validateConfig(c *FunctionConfig) error {
	if !nameRE.MatchString(c.FunctionName) {
		return fmt.Errorf("FunctionName %q: 1-64 letters, digits, '-' or '_'", c.FunctionName)
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.Timeout < 1 || c.Timeout > maxTimeout {
		return fmt.Errorf("function Timeout %d: must be 1-%d seconds", c.Timeout, maxTimeout)
	}
	if c.MemorySize == 0 {
		c.MemorySize = defaultMemory
	}
	if c.MemorySize < 128 || c.MemorySize > 10240 {
		return fmt.Errorf("MemorySize %d: must be 128-10240 MB", c.MemorySize)
	}
	return nil
}

func lastModified(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000+0000") }

// unpackBootstrap extracts the executable named "bootstrap" (what provided.al2023 runs)
// from a deployment zip into dir, named by its hash so a running old version is never
// overwritten under its process.
func unpackBootstrap(zipFile []byte, dir string) (path, sha string, err error) {
	zr, err := zip.NewReader(bytes.NewReader(zipFile), int64(len(zipFile)))
	if err != nil {
		return "", "", fmt.Errorf("Code.ZipFile is not a zip archive: %w", err)
	}
	for _, f := range zr.File {
		if f.Name != "bootstrap" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return "", "", fmt.Errorf("open bootstrap in zip: %w", err)
		}
		defer func() { _ = rc.Close() }() // a reader of the in-memory zip
		sum := sha256.Sum256(zipFile)
		sha = base64.StdEncoding.EncodeToString(sum[:])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", err
		}
		path = filepath.Join(dir, fmt.Sprintf("bootstrap-%x", sum[:8]))
		tmp, err := os.CreateTemp(dir, "upload-*")
		if err != nil {
			return "", "", err
		}
		_, copyErr := io.Copy(tmp, io.LimitReader(rc, 512<<20))
		// The executable is complete only once Close succeeded too.
		if err := errors.Join(copyErr, tmp.Close()); err != nil {
			_ = os.Remove(tmp.Name()) // best effort: the unpack error is the one to report
			return "", "", fmt.Errorf("unpack bootstrap: %w", err)
		}
		if err := os.Chmod(tmp.Name(), 0o755); err != nil {
			return "", "", err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return "", "", err
		}
		return path, sha, nil
	}
	return "", "", errors.New("Code.ZipFile has no file named bootstrap at its root (provided.al2023 runs ./bootstrap)")
}

// saved is what the host writes per function so a restarted host keeps its functions.
type saved struct {
	Config   FunctionConfig `json:"config"`
	CodePath string         `json:"code_path"`
}

func saveFunction(dir string, s saved) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "function.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "function.json"))
}

func loadFunctions(root string) ([]saved, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []saved
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "function.json"))
		if err != nil {
			continue
		}
		var s saved
		if json.Unmarshal(b, &s) == nil && s.Config.FunctionName != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
