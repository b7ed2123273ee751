package fnerr

import "testing"

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
