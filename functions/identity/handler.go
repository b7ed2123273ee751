// Package identity compares what a taxpayer submitted (personal data and stored
// identity documents) with the taxpayer registry [000:56-57]: name (normalised), date of
// birth, passport series and number and the passport's validity, SNILS, and whether each
// image is readable. A near miss (a name one letter off, missing registry data) is
// inconclusive and goes to an operator.
package identity

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // decoders for DecodeConfig
	_ "image/png"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// MinImageSide is the smallest side, in pixels, of a readable document photo.
const MinImageSide = 600

// Handler compares submissions with the registry.
type Handler struct {
	DB        store.DB
	Taxpayers string
	S3        document.S3
	Bucket    string
}

// Validate checks the submitted data's form and returns it normalised: contract.ValidatePerson,
// which the API checks a submission with before it starts a case.
func Validate(p contract.PersonData) (contract.PersonData, []domain.FieldError) {
	return contract.ValidatePerson(p)
}

// Match compares and answers match, mismatch (with reasons) or inconclusive.
func (h Handler) Match(ctx context.Context, in contract.IdentityMatchInput) (contract.IdentityMatchResult, error) {
	p, errs := Validate(in.Person)
	if len(errs) > 0 {
		return contract.IdentityMatchResult{}, fnerr.Invalid(errs[0].Field, errs[0].Reason)
	}
	tp, found, err := taxpayer.Lookup(ctx, h.DB, h.Taxpayers, p.INN)
	if err != nil {
		return contract.IdentityMatchResult{}, fmt.Errorf("identity match: %w", err)
	}
	if !found {
		return contract.IdentityMatchResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	var mismatch, unsure []string
	if tp.SNILS != "" && tp.SNILS != p.SNILS {
		mismatch = append(mismatch, "the SNILS does not match the registry")
	}
	want := []string{domain.NormalizeName(tp.Surname), domain.NormalizeName(tp.FirstName), domain.NormalizeName(tp.Patronymic)}
	got := []string{p.Surname, p.FirstName, p.Patronymic}
	for i, part := range []string{"surname", "first name", "patronymic"} {
		switch d := distance(want[i], got[i]); {
		case d == 0:
		case d == 1 && len([]rune(want[i])) > 3:
			unsure = append(unsure, "the "+part+" differs from the registry by one letter: an operator will check it")
		default:
			mismatch = append(mismatch, "the "+part+" does not match the name in the registry")
		}
	}
	if tp.BirthDate != "" && tp.BirthDate != p.BirthDate {
		mismatch = append(mismatch, "the date of birth does not match the registry")
	}
	switch {
	case tp.Passport == nil:
		unsure = append(unsure, "the registry has no passport data to compare with")
	case tp.Passport.Series != p.PassportSeries || tp.Passport.Number != p.PassportNumber:
		mismatch = append(mismatch, "the passport series or number does not match the registry")
	default:
		if reason := passportExpired(p.BirthDate, tp.Passport.IssuedOn, in.At); reason != "" {
			mismatch = append(mismatch, reason)
		}
	}
	for _, key := range in.Documents {
		reason, err := h.readable(ctx, key)
		if err != nil {
			return contract.IdentityMatchResult{}, err
		}
		if reason != "" {
			mismatch = append(mismatch, reason)
		}
	}
	switch {
	case len(mismatch) > 0:
		return contract.IdentityMatchResult{Outcome: contract.MatchNo, Reasons: append(mismatch, unsure...)}, nil
	case len(unsure) > 0:
		return contract.IdentityMatchResult{Outcome: contract.MatchInconclusive, Reasons: unsure}, nil
	}
	return contract.IdentityMatchResult{Outcome: contract.MatchYes}, nil
}

// passportExpired applies the replacement ages: an RF passport must be replaced at 20
// and at 45, within 90 days of the birthday.
func passportExpired(birth, issued string, at time.Time) string {
	b, err1 := time.Parse(time.DateOnly, birth)
	i, err2 := time.Parse(time.DateOnly, issued)
	if err1 != nil || err2 != nil {
		return ""
	}
	for _, age := range []int{20, 45} {
		birthday := b.AddDate(age, 0, 0)
		if i.Before(birthday) && at.After(birthday.AddDate(0, 0, 90)) {
			return fmt.Sprintf("the passport has expired: it had to be replaced at the age of %d", age)
		}
	}
	return ""
}

// readable judges a stored image by its size; PDFs are taken as they are.
func (h Handler) readable(ctx context.Context, key string) (string, error) {
	if !strings.HasPrefix(key, "documents/") {
		return "", fnerr.Invalid("documents", "must be keys of stored documents")
	}
	obj, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &h.Bucket, Key: &key})
	if err != nil {
		return "", fmt.Errorf("read document: %w", err)
	}
	head, err := io.ReadAll(io.LimitReader(obj.Body, 1<<20))
	_ = obj.Body.Close() // a reader: what was read is all that is needed
	if err != nil {
		return "", fmt.Errorf("read document: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(head))
	if err != nil {
		if bytes.HasPrefix(head, []byte("%PDF-")) {
			return "", nil
		}
		return "the image cannot be read: photograph the page again", nil
	}
	if min(cfg.Width, cfg.Height) < MinImageSide {
		return fmt.Sprintf("the %s image is %d×%d pixels, too small to read: photograph the page again (at least %d pixels a side)",
			format, cfg.Width, cfg.Height, MinImageSide), nil
	}
	return "", nil
}

// distance is the Levenshtein distance between two names, in letters.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur := make([]int, len(rb)+1)
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(rb)]
}
