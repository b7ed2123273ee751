// Package fnerr defines the errors a function (Lambda) returns on purpose.
//
// A business error means "the request was understood and refused": retrying it cannot
// change the answer, so callers must not retry. Any other error a function returns
// (a store that does not answer, a timeout) is transient and may be retried.
//
// The error type travels as the Lambda errorType (invoker.ToInvokeError puts it there),
// so the same names reach a caller through AWS, LocalStack, the local Lambda host or an
// in-process invocation. Workflows read these names too: this package holds no AWS type.
// Messages must never contain personal data: the Lambda runtime logs them.
package fnerr

import "fmt"

// Business error types. Keep this list and IsBusiness in step.
const (
	TypeInvalidInput = "InvalidInput" // the input is malformed: which field, why
	TypeRejected     = "Rejected"     // a business rule refuses the request
	TypeNotFound     = "NotFound"     // the record the request names does not exist
	TypeConflict     = "Conflict"     // the request contradicts the record's current state
	// TypeKeyReused: an idempotency key already names an effect with other content. It is
	// a bug to surface (two facts share a key), never a reason to retry or to pick a new key.
	TypeKeyReused = "KeyReused"
	// TypeRequisitesChanged: a payout cannot go out to the payee it was prepared for (a
	// change of bank requisites is pending, none are verified, or the verified account is
	// another one). The caller holds the payout until the requisites are settled.
	TypeRequisitesChanged = "RequisitesChanged"
)

// TypeInternal names every other failure of a function; it is retryable.
const TypeInternal = "InternalError"

// Error is a business error with a stable Type and a message safe to show and log.
type Error struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Invalid reports a malformed input field.
func Invalid(field, reason string) *Error {
	return &Error{Type: TypeInvalidInput, Message: field + ": " + reason}
}

// Rejected reports a request refused by a business rule.
func Rejected(format string, args ...any) *Error {
	return &Error{Type: TypeRejected, Message: fmt.Sprintf(format, args...)}
}

// KeyReused reports an idempotency key used before for an effect with other content.
func KeyReused(format string, args ...any) *Error {
	return &Error{Type: TypeKeyReused, Message: fmt.Sprintf(format, args...)}
}

// RequisitesChanged reports a payout held by the state of the bank requisites.
func RequisitesChanged(format string, args ...any) *Error {
	return &Error{Type: TypeRequisitesChanged, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing record.
func NotFound(format string, args ...any) *Error {
	return &Error{Type: TypeNotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflict reports a request that contradicts the current state.
func Conflict(format string, args ...any) *Error {
	return &Error{Type: TypeConflict, Message: fmt.Sprintf(format, args...)}
}

// IsBusiness tells whether an errorType names a business (non-retryable) error.
func IsBusiness(errorType string) bool {
	switch errorType {
	case TypeInvalidInput, TypeRejected, TypeNotFound, TypeConflict, TypeKeyReused, TypeRequisitesChanged:
		return true
	}
	return false
}
