// Package declaration runs the automatic checks of a stored 3-НДФЛ declaration (JSON or
// XML): required fields, INN, period (a past year in Moscow time; a refund or deduction
// for the 3 preceding years only, Tax Code art. 78 p.7) and the arithmetic (internal/ndfl)
// [000:123, 004:128].
package declaration

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/ndfl"
)

// Handler checks declarations.
type Handler struct {
	S3     document.S3
	Bucket string
	Rules  ndfl.Rules
}

// Parse reads a declaration in its format: ndfl.Parse, which the API and the batch import
// use too.
func Parse(b []byte, format string) (ndfl.Declaration, error) { return ndfl.Parse(b, format) }

// Check reads the declaration from S3 and checks it.
func (h Handler) Check(ctx context.Context, in contract.DeclarationCheckInput) (contract.DeclarationCheckResult, error) {
	if !strings.HasPrefix(in.Key, "declarations/"+in.CaseID+"/") || in.CaseID == "" {
		return contract.DeclarationCheckResult{}, fnerr.Invalid("key", "must be declarations/<case_id>/…")
	}
	if in.At.IsZero() {
		return contract.DeclarationCheckResult{}, fnerr.Invalid("at", "must be set")
	}
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &in.Key})
	if err != nil {
		return contract.DeclarationCheckResult{}, fmt.Errorf("read declaration: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(obj.Body, 10<<20))
	_ = obj.Body.Close() // a reader: what was read is all that is needed
	if err != nil {
		return contract.DeclarationCheckResult{}, fmt.Errorf("read declaration: %w", err)
	}
	d, err := Parse(b, in.Format)
	if err != nil {
		return contract.DeclarationCheckResult{Problems: []domain.FieldError{{Field: "declaration", Reason: err.Error()}}}, nil
	}
	c, problems := h.Rules.Check(d, in.At)
	return contract.DeclarationCheckResult{OK: len(problems) == 0, Problems: problems, INN: d.INN, Period: d.Period,
		Computed: computed(c)}, nil
}

// computed is the part of our arithmetic the processes carry (the base split and the
// carry-over stay in ndfl until a process needs them).
func computed(c ndfl.Computed) contract.DeclarationComputed {
	return contract.DeclarationComputed{Income: c.Income, Deductions: c.Deductions, Base: c.Base, Tax: c.Tax,
		Withheld: c.Withheld, Payable: c.Payable, Refund: c.Refund}
}
