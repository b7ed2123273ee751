package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

type pipeBody struct {
	Reason string `json:"reason"`
}

func (b pipeBody) check() error { return reasonFits(b.Reason) }

// The pipeline's steps run in order and a refused step ends the request: the route's own
// code never runs on a request whose object, body or fields were refused.
func TestPipelineStepsInOrder(t *testing.T) {
	s := &Server{Log: zerolog.Nop()}
	ran := 0
	h := handle(refundID, func(_ *Server, c *call[pipeBody]) (reply, error) {
		ran++
		return okReply(map[string]string{"reason": c.Body.Reason, "id": c.ID}), nil
	})
	good := "refund-00000000-0000-4000-8000-000000000000"
	for _, tc := range []struct {
		name, id, body string
		code           int
		want           string
	}{
		{"object first", "refund-x", `{"reason":`, http.StatusNotFound, "no such refund case"},
		{"body decoded strictly", good, `{"reason":"a","reason":"b"}`, http.StatusBadRequest, "invalid_json"},
		{"fields checked", good, `{"reason":"` + strings.Repeat("x", 5000) + `"}`, http.StatusBadRequest, "some fields are invalid"},
		{"then the route", good, `{"reason":"ok"}`, http.StatusOK, `"reason":"ok"`},
	} {
		before := ran
		r := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
		r.SetPathValue("id", tc.id)
		w := httptest.NewRecorder()
		h(s, w, r)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
		if got := ran - before; (tc.code == http.StatusOK) != (got == 1) {
			t.Errorf("%s: the route ran %d times", tc.name, got)
		}
	}
}

// A route that takes no body leaves it unread (a file or a declaration is read by the
// route itself); a reply without a body is written as its status alone.
func TestPipelineNoBodyAndNoContent(t *testing.T) {
	s := &Server{Log: zerolog.Nop()}
	var rest string
	h := handle(noObject, func(_ *Server, c *call[none]) (reply, error) {
		b, _ := io.ReadAll(c.r.Body)
		rest = string(b)
		return reply{status: http.StatusNoContent}, nil
	})
	w := httptest.NewRecorder()
	h(s, w, httptest.NewRequest("POST", "/x", strings.NewReader("%PDF-1.7 not json")))
	if rest != "%PDF-1.7 not json" || w.Code != http.StatusNoContent || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "" {
		t.Fatalf("body left %q; answer %d %q %q", rest, w.Code, w.Body, w.Header().Get("Content-Type"))
	}
}

// uncheckedBody can say nothing about what is wrong with it.
type uncheckedBody struct {
	Reason string `json:"reason"`
}

// The pipeline fails closed: a route whose body type has no check is refused when the
// route table is built, and validate refuses such a body if one ever reaches it. Every
// route of the table passed that refusal, or this package would not have initialised.
func TestPipelineRefusesABodyWithoutACheck(t *testing.T) {
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "api.uncheckedBody has no check") {
				t.Errorf("building a route over an unchecked body: %v", r)
			}
		}()
		handle(noObject, func(*Server, *call[uncheckedBody]) (reply, error) { return reply{}, nil })
		t.Error("a route over an unchecked body was built")
	}()
	if err := validate(uncheckedBody{Reason: strings.Repeat("x", 10<<20)}); err == nil {
		t.Error("validate passed a body that has no check")
	}
	for _, b := range []any{none{}, pipeBody{Reason: "ok"}} {
		if err := validate(b); err != nil {
			t.Errorf("validate(%T): %v", b, err)
		}
	}
	if len(routes) == 0 {
		t.Fatal("no routes: the table was not built")
	}
}
