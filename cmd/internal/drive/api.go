package drive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
)

var innRE = regexp.MustCompile(`\b\d{10,12}\b`)

// Do sends one request to the API at base (key "": none) and reads the whole answer.
// The demo and the benches call the API through it; an error names the route with any INN
// in it replaced by {inn}.
func Do(ctx context.Context, hc *http.Client, base, method, path, key string, body []byte, headers ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, innRE.ReplaceAllString(path, "{inn}"), err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, innRE.ReplaceAllString(path, "{inn}"), err)
	}
	defer func() { _ = resp.Body.Close() }() // a reader: everything needed was read
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Expect is Do that wants one status code and decodes the answer into out (if not nil).
func Expect(ctx context.Context, hc *http.Client, base string, want int, out any, method, path, key string, body []byte, headers ...string) error {
	code, b, err := Do(ctx, hc, base, method, path, key, body, headers...)
	if err != nil {
		return err
	}
	route, _, _ := strings.Cut(innRE.ReplaceAllString(path, "{inn}"), "?")
	if code != want {
		return fmt.Errorf("%s %s answered %d, want %d: %s", method, route, code, want, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode the answer: %w", method, route, err)
		}
	}
	return nil
}

// JSON is v as a request body (the demo's and the benches' bodies are plain values that
// always marshal).
func JSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// WebhookAnswer is what POST /v1/webhooks answers (the secret only then).
type WebhookAnswer struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// PDF is a small valid PDF: a bank statement or an answer to an inspector.
func PDF(title string) []byte {
	content := fmt.Sprintf("BT /F1 14 Tf 72 760 Td (%s) Tj ET", title)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
