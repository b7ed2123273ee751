package pdfdoc

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/docs"
	"github.com/taxflow/taxflow/internal/pdfdoc/pdfdoctest"
)

func sample() Document {
	return Document{
		Title:  "Решение по итогам камеральной налоговой проверки",
		Number: "declaration-1/1",
		// 22:00 UTC is already the next day in Moscow
		Date: time.Date(2026, 2, 28, 22, 0, 0, 0, time.UTC),
		Sections: []Section{
			{Fields: []Field{{Label: "Налогоплательщик (ИНН)", Value: "********2259"}}},
			{Heading: "Основания", Text: "Документы подтверждают вычет (ёлка, Щука, «кавычки») \\ " + strings.Repeat("длинный текст ", 40) + "\nВторой абзац."},
			{Heading: "Расчёт налога", Fields: []Field{{Label: "Сумма налога", Value: Rubles(650_000)}, {Label: "К возврату", Value: Rubles(123_456_789)}}},
		},
		Signature: "Инспектор: Иванова А. А.",
	}
}

func TestWriteRussianText(t *testing.T) {
	pdf, err := Write(sample())
	if err != nil {
		t.Fatal(err)
	}
	if typ, err := docs.Check(pdf, docs.Attachment); err != nil || typ != docs.PDF {
		t.Fatalf("not accepted as a complete PDF: %v", err)
	}
	text := pdfdoctest.Text(t, pdf)
	for _, want := range []string{
		"Решение по итогам камеральной налоговой проверки", "№ declaration-1/1", "01.03.2026",
		"Налогоплательщик (ИНН) ********2259", "Документы подтверждают вычет (ёлка, Щука, «кавычки») \\ длинный текст",
		"Второй абзац.", "Сумма налога 6 500,00 ₽", "К возврату 1 234 567,89 ₽",
		"Инспектор: Иванова А. А.", "Страница 1 из 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%q not in the extracted text:\n%s", want, text)
		}
	}
}

func TestFontsEmbedded(t *testing.T) {
	pdf, err := Write(sample())
	if err != nil {
		t.Fatal(err)
	}
	fonts := pdfdoctest.Fonts(t, pdf)
	if len(fonts) != 2 {
		t.Fatalf("want the regular and the bold DejaVu Sans, got %+v", fonts)
	}
	for _, f := range fonts {
		if !strings.Contains(strings.ToLower(f.Name), strings.ToLower(Font)) || !f.Embedded || !f.Unicode ||
			f.Type != "CID TrueType" || f.Encoding != "Identity-H" {
			t.Errorf("font not embedded as a Unicode TrueType DejaVu Sans: %+v", f)
		}
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	first, err := Write(sample())
	if err != nil {
		t.Fatal(err)
	}
	// several runs: fpdf keeps fonts and resources in maps, whose order varies per iteration
	for i := 0; i < 5; i++ {
		again, err := Write(sample())
		if err != nil || !bytes.Equal(first, again) {
			t.Fatalf("run %d: same document, different bytes (%d vs %d) %v", i, len(first), len(again), err)
		}
	}
	later := sample()
	later.Date = later.Date.Add(time.Second)
	other, err := Write(later)
	if err != nil || bytes.Equal(first, other) {
		t.Fatalf("the date is not in the file: %v", err)
	}
}

func TestWriteManyPages(t *testing.T) {
	d := sample()
	for i := 0; i < 80; i++ {
		d.Sections[2].Fields = append(d.Sections[2].Fields, Field{Label: fmt.Sprintf("Строка %d", i), Value: Rubles(int64(i) * 100_000)})
	}
	pdf, err := Write(d)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfdoctest.Text(t, pdf)
	if !strings.Contains(text, "Страница 3 из 3") || !strings.Contains(text, "Строка 79 79 000,00 ₽") {
		t.Fatalf("pages or last row missing:\n%s", text)
	}
}

func TestWriteNeedsTitleAndDate(t *testing.T) {
	d := sample()
	d.Date = time.Time{}
	if _, err := Write(d); err == nil {
		t.Fatal("undated document written (it would carry the time of writing and differ per run)")
	}
	d = sample()
	d.Title = ""
	if _, err := Write(d); err == nil {
		t.Fatal("untitled document written")
	}
}

func TestRubles(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0,00 ₽", 5: "0,05 ₽", 99_999: "999,99 ₽", 100_000: "1 000,00 ₽", 650_000: "6 500,00 ₽",
		123_456_789: "1 234 567,89 ₽", -650_000: "-6 500,00 ₽", math.MinInt64: "-92 233 720 368 547 758,08 ₽",
	} {
		if got := strings.ReplaceAll(Rubles(in), "\u00a0", " "); got != want {
			t.Errorf("Rubles(%d) = %q, want %q", in, got, want)
		}
		if strings.Contains(Rubles(in), " ") {
			t.Errorf("Rubles(%d) = %q has a breaking space", in, Rubles(in))
		}
	}
}

func TestDay(t *testing.T) {
	if got := Day(time.Date(2026, 12, 31, 21, 0, 0, 0, time.UTC)); got != "01.01.2027" {
		t.Fatalf("Day = %s, want the Moscow date 01.01.2027", got)
	}
}
