package ndfl

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Parse reads a declaration in its format ("json" or "xml"). The declaration-check
// function, the API and the batch import all read declarations with it.
func Parse(b []byte, format string) (Declaration, error) {
	var d Declaration
	var err error
	switch format {
	case "json":
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&d)
	case "xml":
		err = xml.Unmarshal(b, &struct {
			XMLName xml.Name `xml:"declaration"`
			*Declaration
		}{Declaration: &d})
	default:
		return d, fmt.Errorf("format must be json or xml")
	}
	if err != nil {
		return d, fmt.Errorf("the declaration cannot be read as %s: %s", strings.ToUpper(format), problem(err))
	}
	return d, nil
}

// problem says what is wrong with a declaration without echoing what it holds: the
// decoders' messages quote the value they could not take ("parsing \"<text>\""), and a
// declaration's values are personal data. The message reaches the API's answer and the
// check's problems.
func problem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var xsyn *xml.SyntaxError
	var num *strconv.NumError
	var xun xml.UnmarshalError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s must be %s", clip(typ.Field), typ.Type.Kind())
	case errors.As(err, &xsyn):
		return fmt.Sprintf("syntax error on line %d", xsyn.Line)
	case errors.As(err, &num):
		return "an element that holds a number (a year, kopecks) holds something else"
	case errors.As(err, &xun):
		return clip(string(xun))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + clip(strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends before its value does"
	}
	return "unreadable"
}

// clip bounds a name taken from the declaration (a field or an element's) in a message.
func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
