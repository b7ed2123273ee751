package pdfdoc

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/taxflow/taxflow/internal/docs"
)

func TestWriteAndReadBack(t *testing.T) {
	d := Document{Title: "Решение по декларации 3-НДФЛ", Lines: []string{"Case: declaration-1", "Decision: approved (одобрено)",
		"Grounds: документы подтверждают вычет (a) \\ " + strings.Repeat("long text ", 20)}}
	pdf := Write(d)
	if typ, err := docs.Check(pdf, docs.Attachment); err != nil || typ != docs.PDF {
		t.Fatalf("not accepted as a complete PDF: %v", err)
	}
	page, exact, err := Text(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(exact, "Решение по декларации") || !strings.Contains(exact, "документы подтверждают вычет") {
		t.Fatalf("exact text lost: %q", exact)
	}
	all := strings.Join(page, " ")
	if !strings.Contains(all, "Reshenie po deklaraczii 3-NDFL") || !strings.Contains(all, "Decision: approved (odobreno)") ||
		!strings.Contains(all, `(a) \`) {
		t.Fatalf("page text: %q", all)
	}
	// the cross-reference table points at the objects
	xref := bytes.LastIndex(pdf, []byte("startxref\n"))
	off, _ := strconv.Atoi(strings.Fields(string(pdf[xref+10:]))[0])
	if !bytes.HasPrefix(pdf[off:], []byte("xref")) {
		t.Fatal("startxref does not point at the xref table")
	}
}
