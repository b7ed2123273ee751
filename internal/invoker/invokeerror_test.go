package invoker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/internal/fnerr"
)

func TestToInvokeErrorKeepsBusinessTypeThroughWrapping(t *testing.T) {
	err := fmt.Errorf("append entry: %w", fnerr.Invalid("case_id", "must not be empty"))
	var ie messages.InvokeResponse_Error
	if !errors.As(ToInvokeError(err), &ie) {
		t.Fatalf("not an invoke error: %T", ToInvokeError(err))
	}
	if ie.Type != fnerr.TypeInvalidInput || ie.Message != "case_id: must not be empty" {
		t.Fatalf("got %+v", ie)
	}
}

func TestToInvokeErrorMarksOtherErrorsInternal(t *testing.T) {
	var ie messages.InvokeResponse_Error
	errors.As(ToInvokeError(errors.New("dial tcp: refused")), &ie)
	if ie.Type != fnerr.TypeInternal || fnerr.IsBusiness(ie.Type) {
		t.Fatalf("got %+v", ie)
	}
	if ToInvokeError(nil) != nil {
		t.Fatal("nil must stay nil")
	}
}
