package invoker

import (
	"errors"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/taxflow/taxflow/internal/fnerr"
)

// ToInvokeError converts whatever a handler returned into the error the Lambda runtime
// reports, so that the errorType is ours (fnerr's) and not a Go type name such as
// "wrapError". It is the other half of what Invoke reads back.
func ToInvokeError(err error) error {
	if err == nil {
		return nil
	}
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie
	}
	var be *fnerr.Error
	if errors.As(err, &be) {
		return messages.InvokeResponse_Error{Type: be.Type, Message: be.Message}
	}
	return messages.InvokeResponse_Error{Type: fnerr.TypeInternal, Message: err.Error()}
}
