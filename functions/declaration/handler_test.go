package declaration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/ndfl"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const xmlDecl = `<?xml version="1.0" encoding="UTF-8"?>
<declaration>
  <inn>500100732259</inn><period>2025</period>
  <incomes><income><source>ООО Ромашка</source><kind>salary</kind><amount_kopecks>120000000</amount_kopecks></income></incomes>
  <withheld_kopecks>15600000</withheld_kopecks>
  <deductions><deduction><kind>social</kind><amount_kopecks>10000000</amount_kopecks><documents><document>receipt-1</document></documents></deduction></deductions>
  <declared_tax_kopecks>14300000</declared_tax_kopecks><declared_refund_kopecks>1300000</declared_refund_kopecks>
</declaration>`

const jsonDecl = `{"inn":"500100732259","period":2025,"incomes":[{"source":"ООО Ромашка","kind":"salary","amount_kopecks":120000000}],
"withheld_kopecks":15600000,"deductions":[{"kind":"social","amount_kopecks":10000000,"documents":["receipt-1"]}],
"declared_tax_kopecks":14300000,"declared_refund_kopecks":1300000}`

func TestCheckJSONAndXMLAlike(t *testing.T) {
	s3 := storetest.NewS3()
	s3.Put("declarations/c1/v1.json", []byte(jsonDecl))
	s3.Put("declarations/c1/v1.xml", []byte(xmlDecl))
	s3.Put("declarations/c1/v2.json", []byte(`{"inn":"500100732259","surprise":1}`))
	h := Handler{S3: s3, Bucket: "b", Rules: ndfl.DefaultRules()}
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var results []contract.DeclarationCheckResult
	for _, f := range []string{"json", "xml"} {
		res, err := h.Check(context.Background(), contract.DeclarationCheckInput{CaseID: "c1", Key: "declarations/c1/v1." + f, Format: f, At: at})
		if err != nil || !res.OK || res.Computed.Refund != 1_300_000 {
			t.Fatalf("%s: %+v %v", f, res, err)
		}
		results = append(results, res)
	}
	if results[0].Computed != results[1].Computed || results[0].Period != results[1].Period {
		t.Fatal("JSON and XML differ")
	}
	res, err := h.Check(context.Background(), contract.DeclarationCheckInput{CaseID: "c1", Key: "declarations/c1/v2.json", Format: "json", At: at})
	if err != nil || res.OK || !strings.Contains(res.Problems[0].Reason, "surprise") {
		t.Fatalf("unknown field: %+v %v", res, err)
	}
	if _, err := h.Check(context.Background(), contract.DeclarationCheckInput{CaseID: "c1", Key: "documents/other", Format: "json", At: at}); err == nil {
		t.Fatal("a key outside the case accepted")
	}
}
