package ndfl

import (
	"strings"
	"testing"
)

const (
	goodJSON = `{"inn":"500100732259","period":2025,"incomes":[{"source":"ООО Ромашка","kind":"salary","amount_kopecks":100000000}],` +
		`"withheld_kopecks":13000000,"declared_tax_kopecks":13000000,"declared_refund_kopecks":0}`
	goodXML = `<declaration><inn>500100732259</inn><period>2025</period><incomes><income><source>ООО Ромашка</source>` +
		`<kind>salary</kind><amount_kopecks>100000000</amount_kopecks></income></incomes><withheld_kopecks>13000000</withheld_kopecks>` +
		`<declared_tax_kopecks>13000000</declared_tax_kopecks><declared_refund_kopecks>0</declared_refund_kopecks></declaration>`
)

// A declaration two readers could take differently is refused, not interpreted: data
// after it, and (JSON) a key given twice at any depth. The refusal says where, never the
// values it saw.
func TestParseRefusesWhatTwoReadersCouldReadDifferently(t *testing.T) {
	for _, c := range []struct {
		name, format, body string
	}{
		{"json", "json", goodJSON},
		{"json with blanks after", "json", goodJSON + " \n"},
		{"xml", "xml", goodXML},
		{"xml with a declaration and blanks, a comment after", "xml", `<?xml version="1.0" encoding="UTF-8"?>` + goodXML + "\n<!-- signed -->\n"},
	} {
		d, err := Parse([]byte(c.body), c.format)
		if err != nil || d.INN != "500100732259" || len(d.Incomes) != 1 || d.Incomes[0].Amount != 100000000 {
			t.Errorf("%s: %+v %v", c.name, d, err)
		}
	}
	for _, c := range []struct {
		name, format, body, want string
	}{
		{"json, a second value", "json", goodJSON + `{"inn":"770000000000"}`, "content after"},
		{"json, trailing text", "json", goodJSON + `x`, "content after"},
		{"json, the INN twice", "json", strings.Replace(goodJSON, `{"inn":"500100732259",`, `{"inn":"500100732259","inn":"770000000000",`, 1), "repeated"},
		{"json, a key twice in an income", "json", strings.Replace(goodJSON, `"amount_kopecks":100000000`, `"amount_kopecks":100000000,"amount_kopecks":1`, 1), "repeated"},
		{"json, the INN again in capitals", "json", strings.Replace(goodJSON, `{"inn":"500100732259",`, `{"inn":"500100732259","INN":"770000000000",`, 1), "repeated"},
		{"json, the INN again in mixed case", "json", strings.Replace(goodJSON, `{"inn":"500100732259",`, `{"inn":"500100732259","Inn":"770000000000",`, 1), "repeated"},
		{"xml, the INN twice", "xml", strings.Replace(goodXML, "<inn>500100732259</inn>", "<inn>500100732259</inn><inn>770000000000</inn>", 1), "repeated"},
		{"xml, a second declaration", "xml", goodXML + strings.Replace(goodXML, "500100732259", "770000000000", 1), "content after"},
		{"xml, text after", "xml", goodXML + "770000000000", "content after"},
		{"json, broken", "json", goodJSON[:40], ""},
	} {
		_, err := Parse([]byte(c.body), c.format)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal saying %q", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "770000000000") || strings.Contains(err.Error(), "500100732259") {
			t.Errorf("%s: the refusal echoes a value: %v", c.name, err)
		}
	}
	// A list's items repeat: two incomes in XML.
	twoXML := strings.Replace(goodXML, "<incomes>", "<incomes><income><source>ИП</source><kind>contract</kind><amount_kopecks>1</amount_kopecks></income>", 1)
	if d, err := Parse([]byte(twoXML), "xml"); err != nil || len(d.Incomes) != 2 {
		t.Fatalf("two incomes in XML: %+v %v", d, err)
	}
	// The same key in two objects is no repetition.
	two := strings.Replace(goodJSON, `"incomes":[{`, `"incomes":[{"source":"ИП","kind":"contract","amount_kopecks":1},{`, 1)
	if d, err := Parse([]byte(two), "json"); err != nil || len(d.Incomes) != 2 {
		t.Fatalf("two incomes: %+v %v", d, err)
	}
}
