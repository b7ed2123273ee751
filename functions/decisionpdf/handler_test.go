package decisionpdf

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/pdfdoc"
	"github.com/taxflow/taxflow/internal/pdfdoc/pdfdoctest"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const inn = "500100732259"

func input() contract.DecisionPDFInput {
	return contract.DecisionPDFInput{CaseID: "declaration-1", INN: inn, Number: 1, Decision: "refused",
		Grounds: "нет подтверждающих документов", Inspector: "insp-1", Period: 2025, At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Computed: contract.DeclarationComputed{Income: 110_000_000, Deductions: 0, Base: 110_000_000, Tax: 14_300_000,
			Withheld: 13_650_000, Payable: 650_000}}
}

func TestGenerate(t *testing.T) {
	s3 := storetest.NewS3()
	h := Handler{S3: s3, Bucket: "b"}
	res, err := h.Generate(context.Background(), input())
	if err != nil || res.Key != "decisions/declaration-1/decision-1.pdf" || res.Size != int64(len(s3.Objects[res.Key])) {
		t.Fatalf("%+v %v", res, err)
	}
	if s3.SSE[res.Key] != "AES256" {
		t.Fatal("decision not stored encrypted")
	}
	text := pdfdoctest.Text(t, s3.Objects[res.Key])
	for _, want := range []string{
		"Решение по итогам камеральной налоговой проверки налоговой декларации по форме 3-НДФЛ за 2025 год",
		"№ declaration-1/1", "Налогоплательщик (ИНН) ********2259", "Номер дела declaration-1", "Номер решения по делу 1",
		"Налоговый период 2025 год", "Дата решения 01.03.2026",
		"В вычете отказано (код решения: refused).", "Основания нет подтверждающих документов",
		"Доходы 1 100 000,00 ₽", "Налоговые вычеты 0,00 ₽", "Налоговая база 1 100 000,00 ₽", "Сумма налога 143 000,00 ₽",
		"Удержано налоговыми агентами 136 500,00 ₽", "К доплате 6 500,00 ₽", "К возврату 0,00 ₽",
		"Порядок обжалования", "Инспектор: insp-1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%q not in the decision:\n%s", want, text)
		}
	}
	if strings.Contains(text, inn) || bytes.Contains(s3.Objects[res.Key], []byte(inn)) {
		t.Error("the full INN is in the document")
	}

	// a retried activity writes the same bytes again
	first := bytes.Clone(s3.Objects[res.Key])
	if _, err := h.Generate(context.Background(), input()); err != nil || !bytes.Equal(first, s3.Objects[res.Key]) {
		t.Fatalf("the same decision rendered differently: %v", err)
	}

	for name, in := range map[string]contract.DecisionPDFInput{
		"unknown decision": {CaseID: "d", Number: 1, Decision: "maybe", Grounds: "x", At: time.Now()},
		"no grounds":       {CaseID: "d", Number: 1, Decision: "confirmed", At: time.Now()},
		"no date":          {CaseID: "d", Number: 1, Decision: "confirmed", Grounds: "x"},
		"no number":        {CaseID: "d", Decision: "confirmed", Grounds: "x", At: time.Now()},
	} {
		if _, err := h.Generate(context.Background(), in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDecisionFonts is the golden check that the decision carries its font: DejaVu Sans,
// regular and bold, embedded as Unicode TrueType (a reader without the font shows it too).
func TestDecisionFonts(t *testing.T) {
	pdf, err := pdfdoc.Write(decision(input()))
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, f := range pdfdoctest.Fonts(t, pdf) {
		fmt.Fprintf(&got, "%s | %s | %s | embedded=%t | unicode=%t\n", f.Name, f.Type, f.Encoding, f.Embedded, f.Unicode)
	}
	golden := filepath.Join("testdata", "fonts.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Fatalf("fonts (pdffonts) differ from %s:\ngot:\n%swant:\n%s", golden, got.String(), want)
	}
}

// A partly confirmed decision states the refund it confirms (Tax Code art. 78, 88).
func TestGeneratePartlyConfirmedStatesTheRefund(t *testing.T) {
	s3 := storetest.NewS3()
	h := Handler{S3: s3, Bucket: "b"}
	in := contract.DecisionPDFInput{CaseID: "declaration-1", Number: 1, Decision: "partly_confirmed", Grounds: "часть чеков не подтверждена",
		Inspector: "insp-1", Period: 2025, At: time.Date(2026, 3, 1, 22, 0, 0, 0, time.UTC), ConfirmedRefund: 500_000,
		Computed: contract.DeclarationComputed{Tax: 14_300_000, Refund: 1_300_000}}
	res, err := h.Generate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfdoctest.Text(t, s3.Objects[res.Key])
	// 22:00 UTC on 1 March is 2 March in Moscow
	for _, want := range []string{"Возврат подтверждён частично", "Возврат подтверждён 5 000,00 ₽", "02.03.2026"} {
		if !strings.Contains(text, want) {
			t.Fatalf("%q not in the decision:\n%s", want, text)
		}
	}
	in.ConfirmedRefund = 2_000_000
	if _, err := h.Generate(context.Background(), in); err == nil {
		t.Fatal("a confirmed refund above the one computed accepted")
	}
}
