package api

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"

	"github.com/taxflow/taxflow/workflows"
)

func presignServer() *Server {
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AK", "SK", "")})
	return &Server{S3: c, Bucket: "docs", Log: zerolog.Nop()}
}

// disposition is what S3 will answer a presigned link with.
func disposition(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || link == "" {
		t.Fatalf("link %q: %v", link, err)
	}
	return u.Query().Get("response-content-disposition")
}

// A stored document reached through a link is downloaded, never rendered: an uploaded
// page (XHTML with a script) opened by an inspector from the console would otherwise run.
func TestDocumentLinksAreAttachments(t *testing.T) {
	s := presignServer()
	v := caseView{ID: "declaration-1", Refund: &workflows.RefundStatus{Documents: []workflows.Document{
		{DocID: "statement", Type: "xml", Key: "documents/refund-1/statement", Accepted: true}}},
		Declaration: &workflows.DeclarationStatus{DecisionKey: "generated/declaration-1/decision-1.pdf"}}
	s.documentLinks(context.Background(), &v)
	if len(v.Documents) != 2 {
		t.Fatalf("links %+v", v.Documents)
	}
	for _, d := range v.Documents {
		if got := disposition(t, d.URL); !strings.HasPrefix(got, "attachment;") {
			t.Errorf("%s: served with disposition %q, want attachment", d.Name, got)
		}
	}
	if got := disposition(t, v.Documents[0].URL); got != `attachment; filename=statement.xml` {
		t.Errorf("disposition %q", got)
	}
}

func TestAttachmentNames(t *testing.T) {
	for name, want := range map[string]string{
		"":                    "attachment; filename=decision-1.pdf",
		"report.csv":          "attachment; filename=report.csv",
		`a"; filename=x.html`: `attachment; filename="a_; filename=x.html"`,
		"../../etc\r\nSet: x": `attachment; filename=.._.._etc__Set:_x`,
		"решение.pdf":         "attachment; filename*=utf-8''%D1%80%D0%B5%D1%88%D0%B5%D0%BD%D0%B8%D0%B5.pdf",
	} {
		got := Attachment(name, "generated/declaration-1/decision-1.pdf")
		if name == "../../etc\r\nSet: x" {
			// Only its form matters: no separator, no control, one attachment value.
			if strings.ContainsAny(got, "/\r\n") || !strings.HasPrefix(got, "attachment;") {
				t.Errorf("%q: %q", name, got)
			}
			continue
		}
		if got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

// Every presigned GET of the API goes through downloadURL: a new link that forgets the
// disposition is a test failure, not a finding.
func TestEveryPresignedGetIsAnAttachment(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "download.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "PresignGetObject(") {
			t.Errorf("%s presigns a GET itself: use downloadURL (Content-Disposition: attachment)", f)
		}
	}
	link, err := presignServer().downloadURL(context.Background(), "reports/t/batch-1.csv", "batch-1.csv", time.Minute)
	if err != nil || disposition(t, link) != "attachment; filename=batch-1.csv" {
		t.Fatalf("%q %v", link, err)
	}
}
