package ndfl

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Parse reads a declaration in its format ("json" or "xml"). The declaration-check
// function, the API and the batch import all read declarations with it.
func Parse(b []byte, format string) (Declaration, error) {
	var d Declaration
	var err error
	switch format {
	case "json":
		if err := oneJSONValue(b); err != nil {
			return d, fmt.Errorf("the declaration cannot be read as JSON: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&d)
	case "xml":
		if err := oneXMLDocument(b); err != nil {
			return d, fmt.Errorf("the declaration cannot be read as XML: %s", problem(err))
		}
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
	case errors.Is(err, errAfter):
		return errAfter.Error()
	case strings.HasPrefix(err.Error(), "an element is repeated"):
		return err.Error()
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

// A declaration is read once and the same way by every reader (the API, the check, the
// batch import), and a document two parsers could read differently is refused rather than
// interpreted: a JSON declaration must be one value whose objects repeat no key, an XML one
// must end with its element (only blanks, comments and processing instructions after it).

// errAfter is content after the declaration.
var errAfter = errors.New("there is content after the declaration: send exactly one")

// oneJSONValue refuses a duplicate key (at any depth) and anything after the first value.
// It says where, never what: the values are personal data.
func oneJSONValue(b []byte) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next string token of this object is a key
	}
	var stack []*frame
	for {
		t, err := dec.Token()
		if err == io.EOF {
			return errors.New("the body is empty")
		}
		if err != nil {
			return errors.New(problem(err))
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := t.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.object {
					top.key = true // the object or array was a member's value
				}
				stack = append(stack, &frame{object: v == '{', keys: map[string]bool{}, key: v == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
			}
		case string:
			if top != nil && top.object && top.key {
				// encoding/json matches a key to a field ignoring case: "inn" and "INN"
				// are the same field, so they are the same key here.
				k := foldKey(v)
				if top.keys[k] {
					return fmt.Errorf("a key is repeated in an object, perhaps in another case (at byte %d)", dec.InputOffset())
				}
				top.keys[k] = true
				top.key = false
				continue
			}
			if top != nil && top.object {
				top.key = true
			}
		default:
			if top != nil && top.object {
				top.key = true
			}
		}
		if len(stack) == 0 {
			if _, err := dec.Token(); err != io.EOF {
				return errAfter
			}
			return nil
		}
	}
}

// foldKey is a key's case-folded form: two keys have the same one exactly when
// strings.EqualFold says they are equal (each rune becomes the least of its fold orbit).
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, k)
}

// listItems are the elements a declaration's XML repeats: the items of its lists.
var listItems = map[string]bool{"income": true, "deduction": true, "month": true, "document": true}

// oneXMLDocument refuses an element given twice where the declaration holds one value
// (encoding/xml would keep the last), and anything but blanks, comments and processing
// instructions after the root element. It says where, never what.
func oneXMLDocument(b []byte) error {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var stack []map[string]bool // per open element: the names of its children so far
	rootDone := false
	for {
		t, err := dec.Token()
		if err == io.EOF {
			if !rootDone {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch v := t.(type) {
		case xml.StartElement:
			if rootDone {
				return errAfter
			}
			if n := len(stack); n > 0 {
				if stack[n-1][v.Name.Local] && !listItems[v.Name.Local] {
					line, _ := dec.InputPos()
					return fmt.Errorf("an element is repeated where one value is read (line %d)", line)
				}
				stack[n-1][v.Name.Local] = true
			}
			stack = append(stack, map[string]bool{})
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			rootDone = len(stack) == 0
		case xml.CharData:
			if rootDone && strings.TrimSpace(string(v)) != "" {
				return errAfter
			}
		case xml.Directive:
			if rootDone {
				return errAfter
			}
		}
	}
}
