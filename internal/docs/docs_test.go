package docs

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
)

func docxBytes(t *testing.T, files ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("<x/>")); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheck(t *testing.T) {
	pdf := []byte("%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	jpg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}, 0xFF, 0xD9)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR....\x00\x00\x00\x00IEND\xaeB`\x82")
	good := docxBytes(t, "[Content_Types].xml", "word/document.xml")
	cases := []struct {
		name    string
		b       []byte
		p       Purpose
		want    Type
		wantErr string
	}{
		{"pdf", pdf, Supporting, PDF, ""},
		{"jpg", jpg, Identity, JPEG, ""},
		{"png", png, Identity, PNG, ""},
		{"docx", good, Attachment, DOCX, ""},
		{"xml", []byte(`<?xml version="1.0" encoding="windows-1251"?><Файл><Документ/></Файл>`), Attachment, XML, ""},
		{"empty", nil, Supporting, "", "empty"},
		{"too big", append(pdf, make([]byte, MaxSize)...), Supporting, "", "at most 10 MB"},
		{"truncated pdf", pdf[:20], Supporting, "", "truncated"},
		{"truncated jpg", jpg[:6], Identity, "", "truncated"},
		{"truncated png", png[:12], Identity, "", "truncated"},
		{"truncated xml", []byte(`<a><b></b>`), Attachment, "", "truncated"},
		{"broken xml", []byte(`<a><b></a>`), Attachment, "", "well-formed"},
		{"zip not docx", docxBytes(t, "a.txt"), Attachment, "", "not a Word document"},
		{"truncated docx", good[:len(good)-30], Attachment, "", "damaged or truncated"},
		{"exe renamed", []byte("MZ\x90\x00 this is a program"), Supporting, "", "not a PDF"},
		{"png for declaration", png, Attachment, "", "not accepted here"},
		{"docx for identity", good, Identity, "", "not accepted here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(c.b, c.p)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || !IsRejection(err) || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("want rejection %q, got %q, %v", c.wantErr, got, err)
			}
		})
	}
}

func FuzzCheckNeverPanics(f *testing.F) {
	f.Add([]byte("%PDF-1.4 %%EOF"))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte("<a>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Check(b, Supporting)
	})
}

func BenchmarkCheckPDF1MB(b *testing.B) {
	pdf := append([]byte("%PDF-1.7\n"), make([]byte, 1<<20)...)
	pdf = append(pdf, []byte("\n%%EOF\n")...)
	b.SetBytes(int64(len(pdf)))
	for b.Loop() {
		if _, err := Check(pdf, Supporting); err != nil {
			b.Fatal(err)
		}
	}
}
