// Package decisionpdf generates the decision document of a desk review [000:143] as a
// PDF and stores it in S3 (never expiring, unlike generated certificates).
package decisionpdf

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/pdfdoc"
	"github.com/taxflow/taxflow/internal/term"
)

// Handler writes decision documents.
type Handler struct {
	S3     document.S3
	Bucket string
}

// Key is where a case's n-th decision is stored.
func Key(caseID string, n int) string { return fmt.Sprintf("decisions/%s/decision-%d.pdf", caseID, n) }

// Labels of decisions, for the document.
var Labels = map[string]string{"confirmed": "Декларация подтверждена", "partly_confirmed": "Возврат подтверждён частично",
	"additional_tax": "Доначислен налог", "refused": "В вычете отказано"}

// Generate renders and stores the document; the same input writes the same key again.
func (h Handler) Generate(ctx context.Context, in contract.DecisionPDFInput) (contract.DecisionPDFResult, error) {
	switch {
	case in.CaseID == "" || in.Number <= 0:
		return contract.DecisionPDFResult{}, fnerr.Invalid("case_id", "a case and a decision number are required")
	case Labels[in.Decision] == "":
		return contract.DecisionPDFResult{}, fnerr.Invalid("decision", "must be confirmed, partly_confirmed, additional_tax or refused")
	case in.ConfirmedRefund < 0 || in.ConfirmedRefund > in.Computed.Refund:
		return contract.DecisionPDFResult{}, fnerr.Invalid("confirmed_refund_kopecks", "must be 0 up to the refund computed")
	case in.Grounds == "":
		return contract.DecisionPDFResult{}, fnerr.Invalid("grounds", "a decision states its grounds")
	}
	c := in.Computed
	lines := []string{
		"Case: " + in.CaseID + fmt.Sprintf(" (decision %d)", in.Number),
		"Date: " + in.At.In(term.Moscow).Format("02.01.2006"),
		"Decision: " + in.Decision + " (" + Labels[in.Decision] + ")",
		"Grounds: " + in.Grounds,
		"Income: " + domain.Kopecks(c.Income).String() + "; deductions: " + domain.Kopecks(c.Deductions).String() + "; tax base: " + domain.Kopecks(c.Base).String(),
		"Tax: " + domain.Kopecks(c.Tax).String() + "; withheld: " + domain.Kopecks(c.Withheld).String() +
			"; payable: " + domain.Kopecks(c.Payable).String() + "; refund: " + domain.Kopecks(c.Refund).String(),
	}
	if c.Refund > 0 {
		// Only the refund the review confirms is paid (Tax Code art. 78, 88).
		lines = append(lines, "Refund confirmed: "+domain.Kopecks(in.ConfirmedRefund).String())
	}
	lines = append(lines, "Inspector: "+in.Inspector,
		"The decision may be appealed through the cabinet within one month of its delivery (Tax Code art. 139.1 p.2).")
	pdf := pdfdoc.Write(pdfdoc.Document{
		Title: fmt.Sprintf("Решение по камеральной проверке 3-НДФЛ за %d год", in.Period),
		Lines: lines,
	})
	key := Key(in.CaseID, in.Number)
	if _, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &h.Bucket, Key: &key, Body: bytes.NewReader(pdf),
		ContentType: aws.String("application/pdf"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return contract.DecisionPDFResult{}, fmt.Errorf("store decision: %w", err)
	}
	return contract.DecisionPDFResult{Key: key, Size: int64(len(pdf))}, nil
}
