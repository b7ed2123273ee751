package batch

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const inn = "500100732259"

const decl = `{"inn":"500100732259","period":2025,"incomes":[{"source":"ООО Ромашка","kind":"salary","amount_kopecks":120000000}],"withheld_kopecks":15600000,"declared_tax_kopecks":15600000,"declared_refund_kopecks":0}`

func csvFile(rows ...string) []byte {
	return []byte("schema_version,kind,external_id,inn,period,amount_kopecks,reason,event_type,declaration,confirmation_method,confirmation_reference\n" +
		strings.Join(rows, "\n") + "\n")
}

func TestCSVKinds(t *testing.T) {
	quoted := `"` + strings.ReplaceAll(decl, `"`, `""`) + `"`
	lines, ref := Parse(csvFile(
		"1,refund,r-1,"+inn+",2025,2500000,overpaid income tax,,,,",
		"1,account_event,e-1,"+inn+",,,,login_failed,,,",
		"1,declaration,d-1,,,,,,"+quoted+",sms,code-17",
	), CSV, "bank-a", now, DefaultLimits)
	require.Nil(t, ref)
	require.Len(t, lines, 3)
	for _, l := range lines {
		assert.True(t, l.Valid(), "line %d: %v", l.No, l.Errors)
	}
	assert.Equal(t, 2, lines[0].No, "the header is line 1")
	assert.Equal(t, int64(2500000), lines[0].Refund.Amount)
	assert.Equal(t, "login_failed", lines[1].Event.Event.Type)
	assert.Equal(t, "e-1", lines[1].Event.Event.EventID, "the external id is the event id")
	assert.Equal(t, inn, lines[2].Declaration.INN)
	assert.Equal(t, "sms", lines[2].Declaration.ConfirmationMethod)
}

func TestLineErrorsNameTheField(t *testing.T) {
	lines, ref := Parse(csvFile(
		"1,refund,r-1,500100732250,2025,2500000,overpaid,,,,", // bad INN check digits
		"1,refund,r-2,"+inn+",2030,2500000,overpaid,,,,",      // future period
		"1,refund,r-3,"+inn+",2025,25.5,overpaid,,,,",         // fraction
		"1,refund,r-4,"+inn+",2025,100,,,,,",                  // no reason
		"1,refund,r 5,"+inn+",2025,100,why,,,,",               // bad external id
		"1,account_event,e-1,"+inn+",,,,jumped,,,",            // unknown event type
		"1,mystery,x-1,,,,,,,,",                               // unknown kind
		"1,declaration,d-1,,,,,,{},telegram,",                 // unreadable declaration, bad confirmation
		"1,refund,r-6,"+inn+",2025,100,why,login_failed,,,",   // a field of another kind
		"1,refund,r-7", // short line
		"1,declaration,d-2,,,,,,\"{\"\"inn\"\":\"\""+inn+"\"\"}\",sms,=HYPERLINK(1)", // a reference that is a formula
		"1,declaration,d-3,,,,,,\"{\"\"inn\"\":\"\""+inn+"\"\"}\",sms,482913",        // the SMS code itself
	), CSV, "bank-a", now, DefaultLimits)
	require.Nil(t, ref)
	want := [][]string{{"inn"}, {"period"}, {"amount_kopecks"}, {"reason"}, {"external_id"}, {"event_type"}, {"kind"},
		{"confirmation_method", "declaration.inn"}, {"event_type"}, {"line"}, {"confirmation_reference"}, {"confirmation_reference"}}
	require.Len(t, lines, len(want))
	for i, l := range lines {
		var fields []string
		for _, e := range l.Errors {
			fields = append(fields, e.Field)
			assert.NotContains(t, e.Reason, "500100732250", "an error never repeats the value")
		}
		assert.Equal(t, want[i], fields, "line %d", l.No)
		assert.False(t, l.Valid())
		assert.Nil(t, l.Refund, "an invalid line carries no request")
	}
}

func TestDuplicatesInAFile(t *testing.T) {
	lines, ref := Parse(csvFile(
		"1,refund,r-1,"+inn+",2025,100,why,,,,",
		"1,refund,r-1,"+inn+",2025,100,why,,,,",
		"1,refund,r-1,"+inn+",2025,200,why,,,,",
		"1,account_event,r-1,"+inn+",,,,login_failed,,,", // another kind: another case
	), CSV, "bank-a", now, DefaultLimits)
	require.Nil(t, ref)
	assert.True(t, lines[0].Valid())
	assert.Equal(t, 0, lines[0].DuplicateOf)
	assert.True(t, lines[1].Valid())
	assert.Equal(t, 2, lines[1].DuplicateOf)
	require.Len(t, lines[2].Errors, 1)
	assert.Equal(t, "external_id", lines[2].Errors[0].Field)
	assert.True(t, lines[3].Valid())
	assert.Equal(t, 0, lines[3].DuplicateOf)
}

func TestJSONLines(t *testing.T) {
	data := `{"schema_version":1,"kind":"refund","external_id":"r-1","inn":"` + inn + `","period":2025,"amount_kopecks":2500000,"reason":"overpaid"}
{"schema_version":1,"kind":"declaration","external_id":"d-1","declaration":` + decl + `,"confirmation_method":"esignature","confirmation_reference":"sig-1"}

{"schema_version":1,"kind":"refund","external_id":"r-2","inn":"` + inn + `","period":2025,"amount_kopecks":1.5,"reason":"x","colour":"red"}
not json
`
	lines, ref := Parse([]byte(data), JSONL, "bank-a", now, DefaultLimits)
	require.Nil(t, ref)
	require.Len(t, lines, 4)
	assert.True(t, lines[0].Valid(), "%v", lines[0].Errors)
	assert.True(t, lines[1].Valid(), "%v", lines[1].Errors)
	assert.JSONEq(t, decl, string(lines[1].Declaration.Declaration))
	assert.Equal(t, 4, lines[2].No, "blank lines keep the numbering")
	assert.Equal(t, "colour", lines[2].Errors[0].Field)
	assert.Equal(t, "line", lines[3].Errors[0].Field)
}

func TestWholeFileRefusals(t *testing.T) {
	good := csvFile("1,refund,r-1," + inn + ",2025,100,why,,,,")
	cases := []struct {
		name string
		data []byte
		f    Format
		lim  Limits
		code string
	}{
		{"empty", []byte(" \n"), CSV, DefaultLimits, RefusedEmpty},
		{"header only", []byte("schema_version,kind,external_id\n"), CSV, DefaultLimits, RefusedEmpty},
		{"not utf-8", append([]byte("schema_version,kind,external_id\n1,refund,"), 0xff, 0xfe), CSV, DefaultLimits, RefusedNotUTF8},
		{"unknown column", []byte("schema_version,kind,external_id,colour\n1,refund,r,red\n"), CSV, DefaultLimits, RefusedHeader},
		{"missing column", []byte("kind,external_id\nrefund,r\n"), CSV, DefaultLimits, RefusedHeader},
		{"schema version", []byte("schema_version,kind,external_id\n2,refund,r\n"), CSV, DefaultLimits, RefusedSchemaVersion},
		{"jsonl schema version", []byte(`{"schema_version":"9","kind":"refund","external_id":"r"}`), JSONL, DefaultLimits, RefusedSchemaVersion},
		{"too large", good, CSV, Limits{MaxBytes: 10, MaxLines: 10}, RefusedTooLarge},
		{"too many lines", good, CSV, Limits{MaxBytes: 1 << 20, MaxLines: 0}, RefusedTooLarge},
		{"other tenant", []byte("schema_version,kind,external_id,tenant\n1,refund,r,bank-b\n"), CSV, DefaultLimits, RefusedTenant},
		{"broken quote", []byte("schema_version,kind,external_id\n1,refund,\"r\n"), CSV, DefaultLimits, RefusedCSV},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, ref := Parse(c.data, c.f, "bank-a", now, c.lim)
			require.NotNil(t, ref)
			assert.Equal(t, c.code, ref.Code)
			assert.Nil(t, lines, "nothing of a refused file is a line")
		})
	}
}

func TestParseKey(t *testing.T) {
	o, ref := ParseKey("inbox/bank-a/night-2026-11-23.csv")
	require.Nil(t, ref)
	assert.Equal(t, Object{Tenant: "bank-a", Name: "night-2026-11-23.csv", Format: CSV}, o)
	for _, k := range []string{"inbox/bank-a/sub/x.csv", "inbox/x.csv", "other/bank-a/x.csv", "inbox/Bank_A/x.csv"} {
		_, ref := ParseKey(k)
		require.NotNil(t, ref, k)
		assert.Equal(t, RefusedTenant, ref.Code, k)
	}
	_, ref = ParseKey("inbox/bank-a/x.xlsx")
	assert.Equal(t, RefusedFormat, ref.Code)
}

func TestIDsAreStableAndOpaque(t *testing.T) {
	a := BatchID("taxflow-documents", "inbox/bank-a/x.csv", `"abc"`)
	assert.Equal(t, a, BatchID("taxflow-documents", "inbox/bank-a/x.csv", "abc"), "quotes of an ETag do not matter")
	assert.NotEqual(t, a, BatchID("taxflow-documents", "inbox/bank-a/x.csv", "abd"))
	assert.NotContains(t, a, "bank-a")
	assert.Equal(t, CaseKey("bank-a", KindRefund, "r-1"), CaseKey("bank-a", KindRefund, "r-1"))
	assert.NotEqual(t, CaseKey("bank-a", KindRefund, "r-1"), CaseKey("bank-b", KindRefund, "r-1"), "external ids are per tenant")
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, CaseKey("bank-a", KindRefund, "r-1"))
}

// The schema file documents exactly the fields the parser knows.
func TestSchemaFileMatchesParser(t *testing.T) {
	b, err := os.ReadFile("../../api/batch-line.schema.json")
	require.NoError(t, err)
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	require.NoError(t, json.Unmarshal(b, &s))
	var props []string
	for k := range s.Properties {
		props = append(props, k)
		assert.True(t, known[k], "schema field %s unknown to the parser", k)
	}
	assert.Len(t, props, len(known))
	assert.ElementsMatch(t, required, s.Required)
}

func FuzzParse(f *testing.F) {
	f.Add(string(csvFile("1,refund,r-1,"+inn+",2025,100,why,,,,")), true)
	f.Add(`{"schema_version":1,"kind":"account_event","external_id":"e","inn":"`+inn+`","event_type":"login_failed"}`, false)
	f.Add("schema_version,kind\n\"", true)
	f.Fuzz(func(t *testing.T, data string, isCSV bool) {
		format := JSONL
		if isCSV {
			format = CSV
		}
		lines, ref := Parse([]byte(data), format, "bank-a", now, Limits{MaxBytes: 1 << 16, MaxLines: 1000})
		if ref != nil {
			if lines != nil || ref.Code == "" || ref.Reason == "" {
				t.Fatalf("a refusal carries no lines and says why: %+v", ref)
			}
			return
		}
		for _, l := range lines {
			valid := l.Refund != nil || l.Declaration != nil || l.Event != nil
			if l.Valid() != valid || (l.Valid() && l.Hash == "") {
				t.Fatalf("line %d: valid=%v but request set=%v", l.No, l.Valid(), valid)
			}
			for _, e := range l.Errors {
				if e.Field == "" || e.Reason == "" {
					t.Fatalf("line %d: an error names a field and a reason: %+v", l.No, e)
				}
			}
		}
	})
}

// A line that names a field twice is refused, whatever the two values: the API refuses
// the same request (a body with a duplicate key), and a line must not mean what the
// second of two values says while a reader of the file sees the first (an INN, an amount,
// a scope-bearing kind). A line that is not UTF-8 is refused too, never read with its
// bytes replaced.
func TestJSONLineWithAFieldTwiceIsRefused(t *testing.T) {
	other := "500100732259"
	data := `{"schema_version":1,"kind":"refund","external_id":"r-1","inn":"` + inn + `","period":2025,"amount_kopecks":100,"amount_kopecks":2500000,"reason":"x"}
{"schema_version":1,"kind":"refund","external_id":"r-2","inn":"` + inn + `","inn":"` + other + `","period":2025,"amount_kopecks":100,"reason":"x"}
{"schema_version":1,"kind":"refund","external_id":"r-3","inn":"` + inn + `","period":2025,"amount_kopecks":100,"reason":"\xff\xfe"}
{"schema_version":1,"kind":"refund","external_id":"r-4","inn":"` + inn + `","period":2025,"amount_kopecks":100,"reason":"x","re\u0061son":"y"}
`
	lines, ref := Parse([]byte(data), JSONL, "bank-a", now, DefaultLimits)
	require.Nil(t, ref)
	require.Len(t, lines, 4)
	for i, want := range []string{"amount_kopecks", "inn", "line", "reason"} {
		require.False(t, lines[i].Valid(), "line %d taken: %+v", i+1, lines[i])
		assert.Equal(t, want, lines[i].Errors[0].Field, "line %d: %v", i+1, lines[i].Errors)
	}
	for _, l := range lines {
		for _, e := range l.Errors {
			assert.NotContains(t, e.Reason, other, "an error echoes the line's data")
		}
	}
}
