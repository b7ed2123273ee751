package docs

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// streamAll reads b through a Stream in small, uneven reads, as an upload does.
func streamAll(b []byte, p Purpose) (Type, []byte, error) {
	s, err := NewStream(iotest.HalfReader(bytes.NewReader(b)), p)
	if err != nil {
		return "", nil, err
	}
	out, err := io.ReadAll(s)
	if err != nil {
		return "", out, err
	}
	if s.Size() != int64(len(out)) {
		return "", out, errors.New("size is not what was read")
	}
	return s.Type(), out, nil
}

func TestStreamAgreesWithCheck(t *testing.T) {
	pdf := []byte("%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	jpg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'}, 0xFF, 0xD9)
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR....\x00\x00\x00\x00IEND\xaeB`\x82")
	good := docxBytes(t, "[Content_Types].xml", "word/document.xml")
	bigPDF := append(append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("0123456789abcdef"), (MaxSize-64)/16)...), "\n%%EOF\n"...)
	bigXML := []byte("\xEF\xBB\xBF \n<Файл>" + strings.Repeat("<Д a=\"1\">текст</Д>", 50000) + "</Файл>\n")
	cases := []struct {
		name    string
		b       []byte
		p       Purpose
		wantErr string
	}{
		{"pdf", pdf, Supporting, ""},
		{"pdf near the limit", bigPDF, Supporting, ""},
		{"jpg", jpg, Identity, ""},
		{"png", png, Identity, ""},
		{"docx", good, Attachment, ""},
		{"xml", []byte(`<?xml version="1.0" encoding="windows-1251"?><Файл><Документ/></Файл>`), Attachment, ""},
		{"large xml with a BOM and white space first", bigXML, Attachment, ""},
		{"empty", nil, Supporting, "empty"},
		{"too big", append(bigPDF, make([]byte, 1<<10)...), Supporting, "at most 10 MB"},
		{"truncated pdf", pdf[:20], Supporting, "truncated"},
		{"truncated large pdf", bigPDF[:len(bigPDF)-8], Supporting, "truncated"},
		{"truncated jpg", jpg[:6], Identity, "truncated"},
		{"truncated png", png[:12], Identity, "truncated"},
		{"truncated xml", []byte(`<Файл><b></b>`), Attachment, "truncated"},
		{"truncated large xml", bigXML[:len(bigXML)/2], Attachment, "truncated"},
		{"broken xml", []byte(`<Файл><b></Файл>`), Attachment, "well-formed"},
		{"zip not docx", docxBytes(t, "a.txt"), Attachment, "not a Word document"},
		{"truncated docx", good[:len(good)-30], Attachment, "damaged or truncated"},
		{"exe renamed", []byte("MZ\x90\x00 this is a program"), Supporting, "not a PDF"},
		{"png for declaration", png, Attachment, "not accepted here"},
		{"docx for identity", good, Identity, "not accepted here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checked, cerr := Check(c.b, c.p)
			got, out, err := streamAll(c.b, c.p)
			if c.wantErr == "" {
				if err != nil || cerr != nil || got != checked {
					t.Fatalf("stream %q, %v; check %q, %v", got, err, checked, cerr)
				}
				if !bytes.Equal(out, c.b) {
					t.Fatalf("the stream changed the bytes: %d in, %d out", len(c.b), len(out))
				}
				return
			}
			for what, e := range map[string]error{"stream": err, "check": cerr} {
				if e == nil || !IsRejection(e) || !strings.Contains(e.Error(), c.wantErr) {
					t.Fatalf("%s: want rejection %q, got %v", what, c.wantErr, e)
				}
			}
		})
	}
}

// countingReader counts what has been read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestStreamJudgesTheTypeOnTheFirstBytes(t *testing.T) {
	body := &countingReader{r: io.MultiReader(strings.NewReader("MZ\x90\x00"), bytes.NewReader(make([]byte, 8<<20)))}
	_, err := NewStream(body, Supporting)
	if !IsRejection(err) || !strings.Contains(err.Error(), "not a PDF") {
		t.Fatalf("an executable: %v", err)
	}
	if body.n > SniffSize {
		t.Fatalf("read %d bytes to judge the type, more than %d", body.n, SniffSize)
	}
}

// A failure to read the upload (a body over the route's limit, a dropped connection)
// comes through as itself, not as a refusal of the file.
func TestStreamPassesReadErrorsOn(t *testing.T) {
	cut := errors.New("connection reset")
	for name, head := range map[string]string{"pdf": "%PDF-1.7\n", "xml": "<Файл>" + strings.Repeat("<b>x</b>", 2000)} {
		t.Run(name, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(head), bytes.NewReader(make([]byte, 64<<10)), iotest.ErrReader(cut))
			if name == "xml" {
				r = io.MultiReader(strings.NewReader(head+strings.Repeat("<b>x</b>", 10000)), iotest.ErrReader(cut))
			}
			s, err := NewStream(r, Supporting)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(s)
			if !errors.Is(err, cut) || IsRejection(err) {
				t.Fatalf("got %v, want the read error", err)
			}
		})
	}
	s, err := NewStream(iotest.ErrReader(cut), Supporting)
	if s != nil || !errors.Is(err, cut) || IsRejection(err) {
		t.Fatalf("a failure before the first bytes: %v", err)
	}
}

func FuzzStreamAgreesWithCheck(f *testing.F) {
	f.Add([]byte("%PDF-1.4 %%EOF"))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte("<a>"))
	f.Add([]byte("\xEF\xBB\xBF <a><b/></a> "))
	// Declarations, and the web pages and entity tricks the XML check refuses.
	f.Add([]byte(`<?xml version="1.0"?><Файл xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Документ КНД="1151020"/></Файл>`))
	f.Add([]byte(`<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>`))
	f.Add([]byte(`<!DOCTYPE declaration [<!ENTITY x "y">]><declaration>&x;</declaration>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		checked, cerr := Check(b, Supporting)
		got, out, err := streamAll(b, Supporting)
		if (cerr == nil) != (err == nil) || got != checked {
			t.Fatalf("stream %q, %v; check %q, %v", got, err, checked, cerr)
		}
		if err == nil && !bytes.Equal(out, b) {
			t.Fatal("the stream changed the bytes")
		}
		if err != nil && !IsRejection(err) {
			t.Fatalf("not a rejection: %v", err)
		}
	})
}
