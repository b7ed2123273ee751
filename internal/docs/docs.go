// Package docs judges an uploaded file by its bytes (never by its name or declared
// content type): which type it is, whether it is complete, and whether it is allowed
// for its purpose. Errors are written for the taxpayer: what is wrong and what to do.
package docs

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxSize is the largest file accepted: 10 MB [000:170, 002:48].
const MaxSize = 10 << 20

// Type is a detected file type.
type Type string

// Types taxflow recognises.
const (
	PDF  Type = "pdf"
	JPEG Type = "jpg"
	PNG  Type = "png"
	XML  Type = "xml"
	DOCX Type = "docx"
)

// ContentType is the MIME type stored with the object.
func (t Type) ContentType() string {
	return map[Type]string{PDF: "application/pdf", JPEG: "image/jpeg", PNG: "image/png", XML: "application/xml",
		DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}[t]
}

// Purpose says which types a document may have.
type Purpose string

// Purposes and their allowed types (domain.md: identity PDF/JPG/PNG [000:170];
// declarations and attachments PDF/DOCX/XML [002:48]; refund supporting documents are
// statements, payslips and reconciliation acts: both sets).
const (
	Identity   Purpose = "identity"
	Attachment Purpose = "attachment"
	Supporting Purpose = "supporting"
)

var allowed = map[Purpose][]Type{
	Identity:   {PDF, JPEG, PNG},
	Attachment: {PDF, DOCX, XML},
	Supporting: {PDF, JPEG, PNG, XML, DOCX},
}

// Rejection is a file refused, with a reason the taxpayer can act on.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return r.Reason }

func reject(format string, a ...any) error { return &Rejection{Reason: fmt.Sprintf(format, a...)} }

// IsRejection tells whether err is a refusal of the file (not a failure to read it).
func IsRejection(err error) bool {
	var r *Rejection
	return errors.As(err, &r)
}

// Check detects the type of b, checks it is complete and allowed for the purpose.
func Check(b []byte, p Purpose) (Type, error) {
	types, ok := allowed[p]
	if !ok {
		return "", reject("unknown document purpose %q", p)
	}
	if len(b) == 0 {
		return "", reject("the file is empty: choose the file again and re-upload it")
	}
	if len(b) > MaxSize {
		return "", reject("the file is %.1f MB; at most 10 MB is accepted: compress or split it", float64(len(b))/(1<<20))
	}
	t, err := detect(b)
	if err != nil {
		return "", err
	}
	for _, a := range types {
		if a == t {
			return t, nil
		}
	}
	return "", reject("a %s file is not accepted here; accepted: %v", t, types)
}

func detect(b []byte) (Type, error) {
	t, skip, err := sniff(b)
	if err != nil {
		return "", err
	}
	switch t {
	case DOCX:
		return docx(b)
	case XML:
		return xmlDoc(b[skip:])
	}
	if err := endsComplete(t, b); err != nil {
		return "", err
	}
	return t, nil
}

// sniff tells the type from the first bytes alone (the magic bytes; for XML the first
// '<' after a byte-order mark and white space, skip bytes in). Whether the file is
// complete needs its end: endsComplete, docx, xmlDoc.
func sniff(head []byte) (t Type, skip int, err error) {
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return PDF, 0, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, 0, nil
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, 0, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return DOCX, 0, nil
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xEF\xBB\xBF")), " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("<")) {
		return XML, len(head) - len(trimmed), nil
	}
	return "", 0, reject("the file is not a PDF, JPG, PNG, XML or DOCX document (judged by its content, not its name)")
}

// endsComplete checks that a PDF, JPEG or PNG is not cut off, from its last bytes: tail
// is the whole file or at least its last tailSize bytes.
func endsComplete(t Type, tail []byte) error {
	switch t {
	case PDF:
		// A complete PDF ends with %%EOF (allowing trailing whitespace).
		if !bytes.Contains(tail[max(0, len(tail)-1024):], []byte("%%EOF")) {
			return reject("the PDF is truncated (no end-of-file marker): upload the complete file")
		}
	case JPEG:
		if !bytes.HasSuffix(bytes.TrimRight(tail, "\x00"), []byte{0xFF, 0xD9}) {
			return reject("the JPEG image is truncated: upload the complete file")
		}
	case PNG:
		if !bytes.Contains(tail[max(0, len(tail)-64):], []byte("IEND")) {
			return reject("the PNG image is truncated: upload the complete file")
		}
	}
	return nil
}

func docx(b []byte) (Type, error) {
	return docxAt(bytes.NewReader(b), int64(len(b)))
}

// docxAt reads the archive's central directory (at its end) from r: the whole file, or
// for a stream its last bytes (tailAt).
func docxAt(r io.ReaderAt, size int64) (Type, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return "", reject("the archive is damaged or truncated: upload the complete DOCX file")
	}
	has := map[string]bool{}
	for _, f := range zr.File {
		has[f.Name] = true
	}
	if !has["[Content_Types].xml"] || !has["word/document.xml"] {
		return "", reject("the archive is not a Word document (DOCX)")
	}
	return DOCX, nil
}

func xmlDoc(b []byte) (Type, error) {
	c := newXMLCheck(bytes.NewReader(b))
	for {
		done, err := c.step()
		if err != nil {
			return "", err
		}
		if done {
			return XML, nil
		}
	}
}

// xmlCheck reads an XML document one token at a time, so that a stream can be checked
// while it passes through (Stream) as well as a whole file (Check).
type xmlCheck struct {
	d     *xml.Decoder
	depth int
	root  bool
}

func newXMLCheck(r io.Reader) *xmlCheck {
	d := xml.NewDecoder(r)
	d.Strict = true
	// Declarations may be in windows-1251; the structure is what we check here.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	return &xmlCheck{d: d}
}

// step reads one token: done once the document has ended complete; a malformed or
// truncated document is a rejection.
func (c *xmlCheck) step() (done bool, err error) {
	tok, err := c.d.Token()
	if err == io.EOF {
		if !c.root || c.depth != 0 {
			return false, reject("the XML is truncated: upload the complete file")
		}
		return true, nil
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Msg, "unexpected EOF") {
		return false, reject("the XML is truncated: upload the complete file")
	}
	if err != nil {
		return false, reject("the XML is not well-formed (%v): fix or re-export it", err)
	}
	switch t := tok.(type) {
	case xml.StartElement:
		if err := declarationElement(t, !c.root); err != nil {
			return false, err
		}
		c.depth++
		c.root = true
	case xml.EndElement:
		c.depth--
	case xml.Directive:
		// A DOCTYPE declares entities (expansion bombs, external files) and makes the file
		// a document type of its own choosing; a declaration needs none.
		return false, reject("the XML has a DOCTYPE or an entity declaration, which a 3-NDFL declaration never has: export the declaration again")
	case xml.ProcInst:
		// <?xml …?> only: <?xml-stylesheet?> makes a browser run an XSLT program.
		if t.Target != "xml" {
			return false, reject("the XML has a processing instruction <?%s?>, which a 3-NDFL declaration never has: export the declaration again", t.Target)
		}
	}
	return false, nil
}

// XML documents are 3-NDFL declarations: the FNS electronic format (root <Файл>) or
// taxflow's own (root <declaration>, functions/declaration). Neither uses namespaces
// beyond the schema-instance attributes an exporter may add (xsi:noNamespaceSchemaLocation).
var declarationRoots = map[string]bool{"Файл": true, "declaration": true}

const (
	nsSchemaInstance = "http://www.w3.org/2001/XMLSchema-instance"
	nsXHTML          = "http://www.w3.org/1999/xhtml"
)

// declarationElement refuses what makes an XML file something other than a declaration,
// and what a browser or an XML processor would act on: a root that is no declaration's, an
// element in a namespace (XHTML, SVG, XSLT, XInclude all are), a namespace declared other
// than the schema instance's, a script element in any case.
func declarationElement(e xml.StartElement, root bool) error {
	if e.Name.Space == nsXHTML {
		return reject("the file is an XHTML page, not a 3-NDFL declaration: upload the declaration's XML")
	}
	if strings.EqualFold(e.Name.Local, "script") {
		return reject("the XML has a <script> element, which a 3-NDFL declaration never has: upload the declaration's XML")
	}
	if e.Name.Space != "" {
		return reject("the XML has an element in the namespace %q; a 3-NDFL declaration uses none", e.Name.Space)
	}
	for _, a := range e.Attr {
		declares := a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")
		switch {
		case declares && a.Value == nsXHTML:
			return reject("the XML declares the XHTML namespace: it is a web page, not a 3-NDFL declaration")
		case declares && a.Value != nsSchemaInstance:
			return reject("the XML declares the namespace %q; a 3-NDFL declaration uses none", a.Value)
		case !declares && a.Name.Space != "" && a.Name.Space != nsSchemaInstance:
			return reject("the XML has an attribute in the namespace %q; a 3-NDFL declaration uses none", a.Name.Space)
		}
	}
	if root && !declarationRoots[e.Name.Local] {
		return reject("the XML is not a 3-NDFL declaration (its root is <%s>, want <Файл> or <declaration>): upload the declaration's XML", e.Name.Local)
	}
	return nil
}
