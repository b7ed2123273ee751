// Package pdfdoc renders taxflow's generated documents (decisions, notices) as PDF with
// github.com/go-pdf/fpdf. The text is set in DejaVu Sans, embedded in the file (a subset of
// the glyphs used), because the documents are in Russian and the PDF standard fonts have no
// Cyrillic, and because Lambda's provided.al2023 image has no system fonts to fall back on.
// The same Document always renders to the same bytes.
package pdfdoc

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/taxflow/taxflow/internal/calendar"
)

// DejaVu Sans 2.37 from Debian's fonts-dejavu-core; the licence is fonts/LICENSE.
var (
	//go:embed fonts/DejaVuSans.ttf
	regularTTF []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	boldTTF []byte
)

// Font is the family name the documents are set in (pdffonts shows it as the embedded font).
const Font = "DejaVuSans"

// Document is what goes on the pages.
type Document struct {
	Title     string    // bold, centred; wraps when long, "\n" breaks it
	Number    string    // printed as «№ Number» under the title
	Date      time.Time // printed as ДД.ММ.ГГГГ (Moscow) opposite the number; also the file's dates
	Sections  []Section //
	Signature string    // the closing line, e.g. «Инспектор: …»
}

// Section is a heading followed by label–value rows and then text. "\n" in Text starts a
// new paragraph.
type Section struct {
	Heading string
	Fields  []Field
	Text    string
}

// Field is one row of a two-column table.
type Field struct{ Label, Value string }

// Page geometry in millimetres (A4).
const (
	left, right, top, bottom = 20.0, 15.0, 20.0, 20.0
	labelWidth               = 80.0
	lineHeight               = 5.5
)

// Write renders the document.
func Write(d Document) ([]byte, error) {
	if d.Title == "" || d.Date.IsZero() {
		// a zero date would make fpdf stamp the current time and the bytes differ per run
		return nil, errors.New("pdfdoc: a document needs a title and a date")
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	// fixed dates and sorted resource catalogs: the same document makes the same bytes
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(d.Date.UTC())
	pdf.SetModificationDate(d.Date.UTC())
	pdf.SetProducer("taxflow", false)
	pdf.SetTitle(strings.Join(strings.Fields(d.Title), " "), true)
	pdf.SetLang("ru-RU")
	pdf.AddUTF8FontFromBytes(Font, "", regularTTF)
	pdf.AddUTF8FontFromBytes(Font, "B", boldTTF)
	pdf.SetMargins(left, top, right)
	pdf.SetAutoPageBreak(true, bottom)
	pdf.AliasNbPages("{nb}")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-bottom + 5)
		pdf.SetFont(Font, "", 8)
		pdf.CellFormat(0, 4, fmt.Sprintf("Страница %d из {nb}", pdf.PageNo()), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	width, _ := pdf.GetPageSize()
	width -= left + right

	pdf.SetFont(Font, "B", 14)
	pdf.MultiCell(0, 7, d.Title, "", "C", false)
	pdf.Ln(4)
	pdf.SetFont(Font, "", 11)
	if d.Number != "" {
		pdf.CellFormat(width/2, lineHeight, "№ "+d.Number, "", 0, "L", false, 0, "")
	}
	pdf.SetX(left + width/2)
	pdf.CellFormat(width/2, lineHeight, Day(d.Date), "", 1, "R", false, 0, "")

	for _, s := range d.Sections {
		pdf.Ln(4)
		if s.Heading != "" {
			pdf.SetFont(Font, "B", 11)
			pdf.MultiCell(0, lineHeight+0.5, s.Heading, "", "L", false)
			pdf.Ln(1)
		}
		pdf.SetFont(Font, "", 11)
		for _, f := range s.Fields {
			row(pdf, width, f)
		}
		for _, p := range strings.Split(s.Text, "\n") {
			if p = strings.TrimSpace(p); p != "" {
				pdf.MultiCell(0, lineHeight, p, "", "J", false)
				pdf.Ln(1)
			}
		}
	}
	if d.Signature != "" {
		pdf.Ln(10)
		pdf.SetFont(Font, "", 11)
		pdf.MultiCell(0, lineHeight, d.Signature, "", "L", false)
	}

	var out bytes.Buffer
	if err := pdf.Output(&out); err != nil {
		return nil, fmt.Errorf("pdfdoc: render %q: %w", d.Title, err)
	}
	return out.Bytes(), nil
}

// row prints a label and its value side by side, both wrapping within their column, and
// moves the whole row to the next page when it does not fit.
func row(pdf *fpdf.Fpdf, width float64, f Field) {
	// SplitText also breaks at no-break spaces, which MultiCell does not: it may count a line
	// too many, which only moves a row to the next page a little early.
	n := max(len(pdf.SplitText(f.Label, labelWidth-2)), len(pdf.SplitText(f.Value, width-labelWidth)), 1)
	_, pageHeight := pdf.GetPageSize()
	if pdf.GetY()+float64(n)*lineHeight > pageHeight-bottom {
		pdf.AddPage()
	}
	y := pdf.GetY()
	pdf.SetTextColor(80, 80, 80)
	pdf.MultiCell(labelWidth-2, lineHeight, f.Label, "", "L", false)
	end := pdf.GetY()
	pdf.SetTextColor(0, 0, 0)
	pdf.SetXY(left+labelWidth, y)
	pdf.MultiCell(width-labelWidth, lineHeight, f.Value, "", "L", false)
	pdf.SetXY(left, max(end, pdf.GetY()))
}

// Day is a date as documents print it: ДД.ММ.ГГГГ in Moscow time.
func Day(t time.Time) string { return t.In(calendar.Moscow).Format("02.01.2006") }

// Rubles prints an amount in kopecks the Russian way, «6 500,00 ₽»: thousands apart, a
// decimal comma and the rouble sign. The spaces are no-break spaces (U+00A0) so that an
// amount never wraps across lines.
func Rubles(kopecks int64) string {
	sign, u := "", uint64(kopecks)
	if kopecks < 0 {
		sign, u = "-", -u // two's complement: also right for the most negative int64
	}
	whole := fmt.Sprint(u / 100)
	var b strings.Builder
	b.WriteString(sign)
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(r)
	}
	fmt.Fprintf(&b, ",%02d\u00a0₽", u%100)
	return b.String()
}
