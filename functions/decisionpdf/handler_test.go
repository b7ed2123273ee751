package decisionpdf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/pdfdoc"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestGenerate(t *testing.T) {
	s3 := storetest.NewS3()
	h := Handler{S3: s3, Bucket: "b"}
	res, err := h.Generate(context.Background(), contract.DecisionPDFInput{CaseID: "declaration-1", Number: 1, Decision: "refused",
		Grounds: "нет подтверждающих документов", Inspector: "insp-1", Period: 2025, At: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Computed: contract.DeclarationComputed{Tax: 14_300_000}})
	if err != nil || res.Key != "decisions/declaration-1/decision-1.pdf" {
		t.Fatalf("%+v %v", res, err)
	}
	page, exact, err := pdfdoc.Text(s3.Objects[res.Key])
	if err != nil || !strings.Contains(exact, "нет подтверждающих документов") || !strings.Contains(strings.Join(page, "\n"), "Tax: 143000.00 RUB") {
		t.Fatalf("%v %q %q", err, exact, page)
	}
	if _, err := h.Generate(context.Background(), contract.DecisionPDFInput{CaseID: "d", Number: 1, Decision: "maybe", Grounds: "x"}); err == nil {
		t.Fatal("unknown decision accepted")
	}
}
