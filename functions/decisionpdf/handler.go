// Package decisionpdf generates the decision document of a desk review [000:143] as a
// PDF in Russian and stores it in S3 (never expiring, unlike generated certificates).
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

// Generate renders and stores the document; the same input writes the same bytes to the
// same key again.
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
	case in.At.IsZero():
		return contract.DecisionPDFResult{}, fnerr.Invalid("at", "a decision is dated")
	}
	pdf, err := pdfdoc.Write(decision(in))
	if err != nil {
		return contract.DecisionPDFResult{}, fmt.Errorf("render decision %d of %s: %w", in.Number, in.CaseID, err)
	}
	key := Key(in.CaseID, in.Number)
	if _, err := h.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &h.Bucket, Key: &key, Body: bytes.NewReader(pdf),
		ContentType: aws.String("application/pdf"), ServerSideEncryption: s3types.ServerSideEncryptionAes256}); err != nil {
		return contract.DecisionPDFResult{}, fmt.Errorf("store decision: %w", err)
	}
	return contract.DecisionPDFResult{Key: key, Size: int64(len(pdf))}, nil
}

// decision is the document as it is printed. The taxpayer is named by the masked INN only:
// the document travels by e-mail and download links, and the case number identifies it.
func decision(in contract.DecisionPDFInput) pdfdoc.Document {
	inn := "не указан" // decisions scheduled before the INN was passed along
	if in.INN != "" {
		inn = domain.MaskINN(in.INN)
	}
	c := in.Computed
	amounts := []pdfdoc.Field{
		{Label: "Доходы", Value: pdfdoc.Rubles(c.Income)},
		{Label: "Налоговые вычеты", Value: pdfdoc.Rubles(c.Deductions)},
		{Label: "Налоговая база", Value: pdfdoc.Rubles(c.Base)},
		{Label: "Сумма налога", Value: pdfdoc.Rubles(c.Tax)},
		{Label: "Удержано налоговыми агентами", Value: pdfdoc.Rubles(c.Withheld)},
		{Label: "К доплате", Value: pdfdoc.Rubles(c.Payable)},
		{Label: "К возврату", Value: pdfdoc.Rubles(c.Refund)},
	}
	if c.Refund > 0 {
		// Only the refund the review confirms is paid (Tax Code art. 78, 88).
		amounts = append(amounts, pdfdoc.Field{Label: "Возврат подтверждён", Value: pdfdoc.Rubles(in.ConfirmedRefund)})
	}
	return pdfdoc.Document{
		Title:  fmt.Sprintf("Решение по итогам камеральной налоговой проверки\nналоговой декларации по форме 3-НДФЛ за %d год", in.Period),
		Number: fmt.Sprintf("%s/%d", in.CaseID, in.Number),
		Date:   in.At,
		Sections: []pdfdoc.Section{
			{Fields: []pdfdoc.Field{
				{Label: "Налогоплательщик (ИНН)", Value: inn},
				{Label: "Номер дела", Value: in.CaseID},
				{Label: "Номер решения по делу", Value: fmt.Sprint(in.Number)},
				{Label: "Налоговый период", Value: fmt.Sprintf("%d год", in.Period)},
				{Label: "Дата решения", Value: pdfdoc.Day(in.At)},
			}},
			{Heading: "Решение", Text: fmt.Sprintf("%s (код решения: %s).", Labels[in.Decision], in.Decision)},
			{Heading: "Основания", Text: in.Grounds},
			{Heading: "Расчёт налога", Fields: amounts},
			{Heading: "Порядок обжалования", Text: "Решение может быть обжаловано через личный кабинет налогоплательщика в течение одного месяца со дня его получения (п. 2 ст. 139.1 НК РФ)."},
		},
		Signature: "Инспектор: " + in.Inspector,
	}
}
