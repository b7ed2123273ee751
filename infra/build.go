package infra

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Build compiles a function for provided.al2023 (linux, CGO off, named bootstrap) and
// returns its deployment zip. The zip is byte-for-byte reproducible, so an unchanged
// function has an unchanged CodeSha256 and is not redeployed.
func Build(ctx context.Context, moduleDir, buildDir string, f Function) ([]byte, error) {
	out := filepath.Join(buildDir, f.Name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(out, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-tags", "lambda.norpc",
		"-ldflags", "-s -w -buildid=", "-o", bin, f.Package)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+Arch())
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build function %s (%s): %w\n%s", f.Name, f.Package, err, b)
	}
	code, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(code); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, "function.zip"), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Arch is the Go architecture functions are built for: this machine's for the local
// host, which runs them directly; arm64 or amd64 on AWS (both exist there).
func Arch() string {
	if a := os.Getenv("TAXFLOW_FUNCTION_ARCH"); a != "" {
		return a
	}
	return runtime.GOARCH
}

// LambdaArch is Arch in Lambda's words.
func LambdaArch() string {
	if Arch() == "arm64" {
		return "arm64"
	}
	return "x86_64"
}
