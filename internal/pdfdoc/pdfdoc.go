// Package pdfdoc writes small one-page PDF documents (decisions, notices) with no
// dependencies, and reads their text back. The page uses the standard Helvetica font,
// which has no Cyrillic glyphs, so Cyrillic is transliterated on the page (GOST 7.79
// system B); the exact text is kept in the document information in UTF-16.
package pdfdoc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf16"
)

// Document is what goes on the page.
type Document struct {
	Title string
	Lines []string
}

var translit = map[rune]string{
	'А': "A", 'Б': "B", 'В': "V", 'Г': "G", 'Д': "D", 'Е': "E", 'Ё': "Yo", 'Ж': "Zh", 'З': "Z", 'И': "I", 'Й': "J",
	'К': "K", 'Л': "L", 'М': "M", 'Н': "N", 'О': "O", 'П': "P", 'Р': "R", 'С': "S", 'Т': "T", 'У': "U", 'Ф': "F",
	'Х': "X", 'Ц': "Cz", 'Ч': "Ch", 'Ш': "Sh", 'Щ': "Shh", 'Ъ': "''", 'Ы': "Y'", 'Ь': "'", 'Э': "E'", 'Ю': "Yu", 'Я': "Ya",
}

// Latin transliterates Cyrillic and drops what Helvetica cannot show.
func Latin(s string) string {
	var b strings.Builder
	for _, r := range s {
		upper := []rune(strings.ToUpper(string(r)))[0]
		if t, ok := translit[upper]; ok {
			if upper != r {
				t = strings.ToLower(t)
			}
			b.WriteString(t)
			continue
		}
		switch {
		case r == '₽':
			b.WriteString("RUB")
		case r >= 32 && r < 127:
			b.WriteRune(r)
		case r == '\n' || r == '\t':
			b.WriteRune(' ')
		default:
			b.WriteRune('?')
		}
	}
	return b.String()
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(s)
}

// utf16Hex is a PDF text string in UTF-16BE with a byte-order mark.
func utf16Hex(s string) string {
	var buf bytes.Buffer
	buf.Write([]byte{0xFE, 0xFF})
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&buf, binary.BigEndian, u)
	}
	return fmt.Sprintf("<%X>", buf.Bytes())
}

// wrap splits a line into pieces of at most n characters at spaces.
func wrap(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := strings.LastIndex(s[:n], " ")
		if cut <= 0 {
			cut = n
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(out, s)
}

// Write renders the document as PDF 1.4.
func Write(d Document) []byte {
	var content bytes.Buffer
	content.WriteString("BT /F1 16 Tf 56 780 Td (" + escape(Latin(d.Title)) + ") Tj ET\n")
	y := 750
	for _, line := range d.Lines {
		for _, piece := range wrap(Latin(line), 90) {
			if y < 60 {
				break
			}
			fmt.Fprintf(&content, "BT /F1 11 Tf 56 %d Td (%s) Tj ET\n", y, escape(piece))
			y -= 16
		}
	}
	full := d.Title + "\n" + strings.Join(d.Lines, "\n")
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
		fmt.Sprintf("<< /Title %s /Subject %s /Producer (taxflow) >>", utf16Hex(d.Title), utf16Hex(full)),
	}
	var out bytes.Buffer
	out.WriteString("%PDF-1.4\n%\xE2\xE3\xCF\xD3\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = out.Len()
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&out, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, len(objects), xref)
	return out.Bytes()
}

var (
	tjRE      = regexp.MustCompile(`\(((?:\\.|[^\\)])*)\) Tj`)
	subjectRE = regexp.MustCompile(`/Subject <FEFF([0-9A-F]*)>`)
)

// Text reads back the page's text lines and the exact text from the document information.
func Text(pdf []byte) (page []string, exact string, err error) {
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("%%EOF")) {
		return nil, "", fmt.Errorf("not a complete PDF")
	}
	for _, m := range tjRE.FindAllSubmatch(pdf, -1) {
		page = append(page, strings.NewReplacer(`\(`, "(", `\)`, ")", `\\`, `\`).Replace(string(m[1])))
	}
	if m := subjectRE.FindSubmatch(pdf); m != nil {
		var units []uint16
		for i := 0; i+4 <= len(m[1]); i += 4 {
			var u uint16
			fmt.Sscanf(string(m[1][i:i+4]), "%04X", &u)
			units = append(units, u)
		}
		exact = string(utf16.Decode(units))
	}
	return page, exact, nil
}
