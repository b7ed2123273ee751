// Package pdfdoctest reads generated PDFs back in tests with poppler's command-line tools
// (Debian package poppler-utils; localstack/native/setup.sh installs it when run as root),
// so tests check what a reader of the document sees rather than how the file is built.
package pdfdoctest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Text is the document's text as `pdftotext -layout` extracts it, with every run of spaces,
// tabs, line and page breaks collapsed to one space so that a phrase wrapped across lines
// or set apart in columns is still found by strings.Contains. Poppler prints the no-break
// spaces inside amounts as plain spaces, so «6 500,00 ₽» is searched for as typed.
func Text(t testing.TB, pdf []byte) string {
	t.Helper()
	out := run(t, pdf, "pdftotext", "-layout", "-enc", "UTF-8")
	return strings.TrimSpace(blanks.ReplaceAllString(out, " "))
}

var blanks = regexp.MustCompile(`[ \t\r\n\f]+`)

// Font is one row of pdffonts' table.
type Font struct {
	Name, Type, Encoding string
	Embedded, Unicode    bool
}

// Fonts lists the fonts the document uses, as `pdffonts` reports them.
func Fonts(t testing.TB, pdf []byte) []Font {
	t.Helper()
	out := run(t, pdf, "pdffonts")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "name") {
		t.Fatalf("pdffonts: unexpected output %q", out)
	}
	// columns: name type encoding emb sub uni object ID; type and encoding may hold spaces,
	// so read the fixed-width columns from the dashes under the header
	cols := strings.Fields(lines[1])
	var fonts []Font
	for _, l := range lines[2:] {
		var cells []string
		at := 0
		for _, c := range cols {
			end := min(at+len(c), len(l))
			cells = append(cells, strings.TrimSpace(l[min(at, len(l)):end]))
			at += len(c) + 1
		}
		if len(cells) < 6 {
			t.Fatalf("pdffonts: unexpected row %q", l)
		}
		fonts = append(fonts, Font{Name: cells[0], Type: cells[1], Encoding: cells[2], Embedded: cells[3] == "yes", Unicode: cells[5] == "yes"})
	}
	return fonts
}

// run writes the PDF to a file and runs a poppler tool on it. A missing tool fails the test
// under CI=true (the pipeline must read the documents) and skips it elsewhere.
func run(t testing.TB, pdf []byte, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		msg := tool + " is not installed: install Debian's poppler-utils (apt-get install poppler-utils; localstack/native/setup.sh does it as root) to read generated PDFs"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	file := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(file, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, file)
	if tool == "pdftotext" {
		args = append(args, "-") // to stdout
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", tool, err, stderr.String())
	}
	if stderr.Len() > 0 {
		// poppler reports damaged files on stderr and carries on; a generated PDF must be clean
		t.Fatalf("%s complains about the PDF: %s", tool, stderr.String())
	}
	return stdout.String()
}
