package activities

import (
	"context"

	"github.com/taxflow/taxflow/internal/contract"
)

// DeleteCaseDocuments destroys a case's documents after consent was withdrawn for good
// (152-FZ art. 21 p.5); it runs with RecordOptions, since it must not be lost either.
func (a *Activities) DeleteCaseDocuments(ctx context.Context, in contract.CaseDocumentsDeleteInput) (contract.CaseDocumentsDeleteResult, error) {
	return call[contract.CaseDocumentsDeleteResult](ctx, a.Invoker, contract.FnCaseDocumentsDelete, in)
}

// CheckBankAssertion verifies a partner bank's signed assertion and spends its nonce for
// the case (a retry of the same case passes again). Options: ReadOptions; a failure that
// outlasts the retries sends the case to an operator, never to verified.
func (a *Activities) CheckBankAssertion(ctx context.Context, in contract.BankCheckInput) (contract.BankCheckResult, error) {
	return call[contract.BankCheckResult](ctx, a.Invoker, contract.FnBankCheck, in)
}
