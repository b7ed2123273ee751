//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/declaration"
)

// The contract every API call of these tests is held to: api/openapi.yaml, read by
// kin-openapi. apiClient.do hands each request and response to checkContract, so a
// response the spec does not describe (an undocumented status, a body that does not
// match its schema, a wrong Content-Type) fails the test that made the call.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml is not valid OpenAPI: %w", err)
	}
	// The tests' servers listen on random ports: match operations by path alone.
	doc.Servers = nil
	// Declarations also arrive as XML: read them with the parser the service uses, so
	// the request body is checked against the same schema as the JSON form.
	openapi3filter.RegisterBodyDecoder("application/xml", func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		d, err := declaration.Parse(b, "xml")
		if err != nil {
			return nil, err
		}
		j, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		var v any
		return v, json.Unmarshal(j, &v)
	})
	return legacy.NewRouter(doc)
})

// checkContract validates one exchange against the spec. A request the spec refuses
// must be refused by the server too (4xx); every response must match the spec,
// status code included.
func checkContract(t *testing.T, req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) {
	t.Helper()
	router, err := specRouter()
	if err != nil {
		t.Fatal(err)
	}
	// FindRoute and the validators read the request again: give them a fresh body.
	req = req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("contract: %s %s is not in api/openapi.yaml (%v) but the server answered %d", req.Method, req.URL.Path, err, status)
		}
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), reqIn); reqErr != nil && status < 400 {
		t.Errorf("contract: the server answered %d to %s %s, which the spec refuses: %v", status, req.Method, route.Path, reqErr)
	}
	respIn := &openapi3filter.ResponseValidationInput{RequestValidationInput: reqIn, Status: status, Header: header, Options: opts}
	respIn.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(context.Background(), respIn); err != nil {
		t.Errorf("contract: %s %s answered %d, which api/openapi.yaml does not describe: %v\nbody: %.500s", req.Method, route.Path, status, err, respBody)
	}
}
