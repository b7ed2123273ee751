package drive

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// Expect sends the key and headers, decodes the answer it wants, and names an unexpected
// one by its route, with no INN in it and no query.
func TestExpectNamesTheRouteWithoutTheINN(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k1" || r.Header.Get("Idempotency-Key") != "i1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/v1/taxpayers/") {
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"id":"wh_1","secret":"whsec_x"}`))
	}))
	defer srv.Close()
	ctx, hc := context.Background(), srv.Client()
	var ans WebhookAnswer
	if err := Expect(ctx, hc, srv.URL, http.StatusOK, &ans, "POST", "/v1/webhooks", "k1", JSON(map[string]string{"url": "x"}), "Idempotency-Key", "i1"); err != nil || ans.ID != "wh_1" || ans.Secret != "whsec_x" {
		t.Fatalf("Expect = %v, answer %+v", err, ans)
	}
	err := Expect(ctx, hc, srv.URL, http.StatusOK, nil, "GET", "/v1/taxpayers/500100732259/debts?period=2025", "k1", nil, "Idempotency-Key", "i1")
	if err == nil || !strings.Contains(err.Error(), "GET /v1/taxpayers/{inn}/debts answered 404, want 200") || strings.Contains(err.Error(), "500100732259") {
		t.Fatalf("Expect on a 404 = %v", err)
	}
	if err := Expect(ctx, hc, srv.URL, http.StatusOK, &[]int{}, "POST", "/v1/webhooks", "k1", nil, "Idempotency-Key", "i1"); err == nil || !strings.Contains(err.Error(), "decode the answer") {
		t.Fatalf("Expect with an answer of another shape = %v", err)
	}
}

// PDF is a PDF a reader can find its way through: header, objects, and an xref table
// whose offsets point at them.
func TestPDFIsWellFormed(t *testing.T) {
	b := PDF("statement")
	if !bytes.HasPrefix(b, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(b, []byte("%%EOF\n")) || !bytes.Contains(b, []byte("(statement) Tj")) {
		t.Fatalf("PDF:\n%s", b)
	}
	i := bytes.Index(b, []byte("0000000000 65535 f \n"))
	for n, line := range strings.Split(string(b[i:]), "\n")[1:6] {
		var off int
		if _, err := fmt.Sscanf(line, "%010d 00000 n", &off); err != nil || off >= len(b) || !bytes.HasPrefix(b[off:], []byte(strconv.Itoa(n+1)+" 0 obj")) {
			t.Fatalf("xref line %d %q does not point at object %d", n+1, line, n+1)
		}
	}
}
