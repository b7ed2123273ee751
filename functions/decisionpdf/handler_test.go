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
	page, _, err := pdfdoc.Text(s3.Objects[res.Key])
	text := strings.Join(page, "\n")
	// 22:00 UTC on 1 March is 2 March in Moscow
	if err != nil || !strings.Contains(text, "Refund confirmed: 5000.00 RUB") || !strings.Contains(text, "Date: 02.03.2026") {
		t.Fatalf("%v %q", err, page)
	}
	in.ConfirmedRefund = 2_000_000
	if _, err := h.Generate(context.Background(), in); err == nil {
		t.Fatal("a confirmed refund above the one computed accepted")
	}
}
