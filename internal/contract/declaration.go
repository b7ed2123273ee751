package contract

import (
	"time"

	"github.com/taxflow/taxflow/internal/domain"
)

// Functions of declaration review.
const (
	FnDeclarationCheck = "declaration-check"
	FnDecisionPDF      = "decision-pdf"
)

// DeclarationCheckInput names a stored declaration to check.
type DeclarationCheckInput struct {
	CaseID string    `json:"case_id"`
	Key    string    `json:"key"`    // S3 key of the declaration
	Format string    `json:"format"` // json or xml
	At     time.Time `json:"at"`
}

// DeclarationComputed is the arithmetic of a checked declaration, in kopecks.
type DeclarationComputed struct {
	Income     int64 `json:"income_kopecks"`
	Deductions int64 `json:"deductions_kopecks"`
	Base       int64 `json:"base_kopecks"`
	Tax        int64 `json:"tax_kopecks"`
	Withheld   int64 `json:"withheld_kopecks"`
	Payable    int64 `json:"payable_kopecks"`
	Refund     int64 `json:"refund_kopecks"`
}

// DeclarationCheckResult: Problems name fields [000:126]; none means accepted.
type DeclarationCheckResult struct {
	OK       bool                `json:"ok"`
	Problems []domain.FieldError `json:"problems,omitempty"`
	Computed DeclarationComputed `json:"computed"`
	INN      string              `json:"inn"`
	Period   int                 `json:"period"`
}

// DecisionPDFInput is the decision to put in a document [000:143].
type DecisionPDFInput struct {
	CaseID    string              `json:"case_id"`
	INN       string              `json:"inn"`    // the document prints it masked
	Number    int                 `json:"number"` // the n-th decision on the case (appeals make more)
	Decision  string              `json:"decision"`
	Grounds   string              `json:"grounds"`
	Inspector string              `json:"inspector"`
	Period    int                 `json:"period"`
	Computed  DeclarationComputed `json:"computed"`
	// ConfirmedRefund is the refund the decision confirms (Tax Code art. 78, 88).
	ConfirmedRefund int64     `json:"confirmed_refund_kopecks,omitempty"`
	At              time.Time `json:"at"`
}

// DecisionPDFResult is where the document is.
type DecisionPDFResult struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}
