package fnerr

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

func TestToInvokeErrorKeepsBusinessTypeThroughWrapping(t *testing.T) {
	err := fmt.Errorf("append entry: %w", Invalid("case_id", "must not be empty"))
	var ie messages.InvokeResponse_Error
	if !errors.As(ToInvokeError(err), &ie) {
		t.Fatalf("not an invoke error: %T", ToInvokeError(err))
	}
	if ie.Type != TypeInvalidInput || ie.Message != "case_id: must not be empty" {
		t.Fatalf("got %+v", ie)
	}
}

func TestToInvokeErrorMarksOtherErrorsInternal(t *testing.T) {
	var ie messages.InvokeResponse_Error
	errors.As(ToInvokeError(errors.New("dial tcp: refused")), &ie)
	if ie.Type != TypeInternal || IsBusiness(ie.Type) {
		t.Fatalf("got %+v", ie)
	}
	if ToInvokeError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}

func TestIsBusiness(t *testing.T) {
	for _, typ := range []string{TypeInvalidInput, TypeRejected, TypeNotFound, TypeConflict, TypeKeyReused, TypeRequisitesChanged} {
		if !IsBusiness(typ) {
			t.Errorf("%s must be a business error", typ)
		}
	}
	for _, typ := range []string{TypeInternal, "Sandbox.Timedout", "Runtime.ExitError", ""} {
		if IsBusiness(typ) {
			t.Errorf("%s must be retryable", typ)
		}
	}
}
