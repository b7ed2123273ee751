package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/taxflow/taxflow/internal/domain"
)

// One parse per request. Every JSON body of the API is decoded once, strictly, by
// DecodeStrict, and every check reads the value it produced:
//
//   - a create (POST /v1/refunds, POST /v1/identity-verifications) is decoded by the
//     idempotency middleware, which must hash the request before the handler runs; it
//     hashes the decoded value (its canonical encoding) and hands the value to the handler
//     through the request context (createBodies, decodedBody);
//   - every other body is decoded by the route's pipeline (pipeline.go, decodeBody); the
//     route's own code calls the checks with the value: the identity rate limit
//     (limitIdentity) and the proof of possession (verifyESign) are functions of the
//     decoded request, not middleware, so no route can reach a handler past them and no
//     check can read the body differently.
//
// A body two parsers could read differently is refused, not interpreted: a byte order mark,
// invalid UTF-8, a duplicate key (at any depth), a field name that matches a field only
// when case is ignored (encoding/json would take it), an unknown field, and anything after
// the first JSON value. The answer is 400 naming the field or the byte offset.

// bodyError is a body DecodeStrict refuses: Field is the JSON path ("person.inn",
// "incomes[1].kind") when the problem is a field's, else "".
type bodyError struct {
	Field  string
	Reason string
}

func (e *bodyError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// DecodeStrict decodes data, one JSON value, into v (a pointer), or refuses it with a
// *bodyError saying why. It is the only JSON decoder of request bodies.
func DecodeStrict(data []byte, v any) error {
	if bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
		return &bodyError{Reason: "the body starts with a byte order mark: send UTF-8 JSON without one"}
	}
	if !utf8.Valid(data) {
		return &bodyError{Reason: "the body is not valid UTF-8"}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &bodyError{Reason: "the body is empty: send a JSON object"}
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("decode: want a pointer, got %T", v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := shape(dec, t.Elem(), ""); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &bodyError{Reason: fmt.Sprintf("the body has data after the JSON value (at byte %d): send exactly one JSON object", dec.InputOffset())}
	}
	// The shape is known to be exact; this decode fills v. Unknown fields cannot remain
	// (shape refused them), DisallowUnknownFields is kept as a second lock.
	full := json.NewDecoder(bytes.NewReader(data))
	full.DisallowUnknownFields()
	if err := full.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &bodyError{Field: te.Field, Reason: "must be " + jsonKind(te.Type.Kind())}
		}
		return &bodyError{Reason: "the body is not the expected JSON: " + jsonProblem(err)}
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shape reads one JSON value from dec and checks it against t: no duplicate key in any
// object, and an object decoded into a struct names only its fields, exactly as they are
// spelled (case included). A type that decodes itself (time.Time, json.RawMessage) and
// any/map values are checked for duplicates only. Type mismatches are left to the decode.
func shape(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil // its own decoder: check duplicates only
	}
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(dec, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := shape(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return syntaxError(dec, err)
			}
			key, _ := tok.(string)
			at := clipField(key)
			if path != "" {
				at = path + "." + at
			}
			if seen[key] {
				return &bodyError{Field: at, Reason: "appears twice: send each field once"}
			}
			seen[key] = true
			ft := elem
			if fields != nil {
				var known bool
				if ft, known = fields[key]; !known {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &bodyError{Field: at, Reason: "unknown field: field names are case-sensitive (did you mean " + name + "?)"}
						}
					}
					return &bodyError{Field: at, Reason: "unknown field"}
				}
			}
			if err := shape(dec, ft, at); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return syntaxError(dec, err)
	}
	return nil
}

// clipField bounds a field name echoed in an answer (it comes from the caller).
func clipField(s string) string {
	if utf8.RuneCountInString(s) <= 64 {
		return s
	}
	return string([]rune(s)[:64]) + "…"
}

func syntaxError(dec *json.Decoder, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &bodyError{Reason: "the body ends before its JSON value does"}
	}
	return &bodyError{Reason: fmt.Sprintf("the body is not JSON: %s (near byte %d)", jsonProblem(err), dec.InputOffset())}
}

// jsonFields are the JSON names encoding/json decodes into a struct's fields, with their
// types, embedded structs flattened.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// createBodies are the JSON bodies of the creates, decoded by the idempotency middleware
// (it hashes the decoded request before the handler runs). A create not listed here
// (a declaration: a document, parsed by its own parser) is hashed as the bytes it is.
var createBodies = map[string]func() any{
	"POST /v1/refunds":                func() any { return new(CreateRefundRequest) },
	"POST /v1/identity-verifications": func() any { return new(CreateIdentityRequest) },
}

type decodedCtx struct{}

// decodedBody is a body decoded once, for the handler to take (decodeBody).
type decodedBody struct{ v any }

// canonicalJSON is the encoding of a decoded request that the idempotency hash covers:
// two bodies that decode to the same request are the same request.
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode the decoded request: %w", err)
	}
	return b, nil
}

// decodeBody gives the handler its request: the value the middleware decoded when there
// is one (of the same type), else the body decoded now, strictly. ok is false when an
// answer was written (400 naming the problem, or 413).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if d, found := r.Context().Value(decodedCtx{}).(*decodedBody); found {
		src, dst := reflect.ValueOf(d.v), reflect.ValueOf(v)
		if src.Type() != dst.Type() {
			// A handler reading another type than the one its request was decoded and
			// checked as: refuse, never decode again.
			writeError(w, http.StatusInternalServerError, "internal", "the request could not be read", nil)
			return false
		}
		dst.Elem().Set(src.Elem())
		return true
	}
	body, ok := readBody(w, r, JSONBodyLimit)
	if !ok {
		return false
	}
	r.Body = http.NoBody // read once: nothing reads it again
	return decodeInto(w, body, v)
}

// decodeInto decodes body strictly into v, or answers 400 naming the problem.
func decodeInto(w http.ResponseWriter, body []byte, v any) bool {
	if err := DecodeStrict(body, v); err != nil {
		var be *bodyError
		if !errors.As(err, &be) {
			writeError(w, http.StatusInternalServerError, "internal", "the request could not be read", nil)
			return false
		}
		var fields []domain.FieldError
		if be.Field != "" {
			fields = []domain.FieldError{{Field: be.Field, Reason: be.Reason}}
		}
		writeError(w, http.StatusBadRequest, "invalid_json", "the body is not the expected JSON: "+be.Error(), fields)
		return false
	}
	return true
}

// withDecoded is r carrying its decoded body for the handler.
func withDecoded(ctx context.Context, v any) context.Context {
	return context.WithValue(ctx, decodedCtx{}, &decodedBody{v: v})
}

// requestHashOf is the SHA-256 of a decoded request's canonical encoding: what a case
// records as the request it was started by.
func requestHashOf(v any) (string, error) {
	b, err := canonicalJSON(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
