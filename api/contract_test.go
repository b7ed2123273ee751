package api

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The spec is valid OpenAPI to kin-openapi too (make lint runs redocly over it), and every
// operation says what it is and every error it can answer: integrators generate clients
// from it and must not meet a status code it does not list.
func TestOpenAPIDescribesEveryOperationAndError(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	scopes := map[string]string{}
	for _, r := range routes {
		scopes[r.method+" "+r.path] = r.scope
	}
	ids := map[string]bool{}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			documented = append(documented, name)
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q missing or repeated", name, op.OperationID)
			}
			ids[op.OperationID] = true
			if len(op.Tags) == 0 {
				t.Errorf("%s: no tags", name)
			}
			for code, ref := range op.Responses.Map() {
				if code[0] != '4' && code[0] != '5' || path == "/readyz" {
					continue
				}
				if ref.Value == nil || ref.Value.Content.Get("application/problem+json") == nil {
					t.Errorf("%s %s: not an application/problem+json answer", name, code)
				}
			}
			if scopes[name] == "" {
				continue
			}
			want := []string{"400", "401", "403", "404", "503"}
			if op.RequestBody != nil {
				want = append(want, "413")
			}
			if identityLimited[name] {
				want = append(want, "429")
			}
			for _, code := range want {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s: answers %s, which the spec does not list", name, code)
				}
			}
		}
	}
	served := Routes()
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("OpenAPI documents %v\nrouter serves %v", documented, served)
	}
	if !strings.Contains(string(OpenAPI), "application/problem+json") {
		t.Fatal("no problem+json in the spec")
	}
}
