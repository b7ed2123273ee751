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

// Tax Code art. 78 p.7: a refund is claimed for the 3 preceding years only; the tax year
// is Moscow's (a 2025 declaration filed at 01:30 MSK on 1 January 2026 is in time).
func TestCheckPeriodRules(t *testing.T) {
	s3 := storetest.NewS3()
	h := Handler{S3: s3, Bucket: "b", Rules: ndfl.DefaultRules()}
	old := strings.Replace(jsonDecl, `"period":2025`, `"period":2022`, 1)
	s3.Put("declarations/c2/v1.json", []byte(old))
	s3.Put("declarations/c2/v2.json", []byte(jsonDecl))
	cases := []struct {
		key    string
		at     time.Time
		ok     bool
		reason string
	}{
		{"declarations/c2/v1.json", time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), false, "art. 78 p.7"},
		{"declarations/c2/v1.json", time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC), true, ""},
		{"declarations/c2/v2.json", time.Date(2025, 12, 31, 22, 30, 0, 0, time.UTC), true, ""},
		{"declarations/c2/v2.json", time.Date(2025, 12, 31, 20, 30, 0, 0, time.UTC), false, "past tax year"},
	}
	for _, c := range cases {
		res, err := h.Check(context.Background(), contract.DeclarationCheckInput{CaseID: "c2", Key: c.key, Format: "json", At: c.at})
		if err != nil || res.OK != c.ok {
			t.Errorf("%s at %s: %+v %v", c.key, c.at, res, err)
			continue
		}
		if !c.ok && (len(res.Problems) == 0 || res.Problems[0].Field != "period" || !strings.Contains(res.Problems[0].Reason, c.reason)) {
			t.Errorf("%s at %s: problems %v, want period: %q", c.key, c.at, res.Problems, c.reason)
		}
	}
}
