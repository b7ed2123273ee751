package contract

import (
	"time"

	"github.com/taxflow/taxflow/internal/domain"
)

// Functions of identity verification.
const (
	FnIdentityMatch   = "identity-match"
	FnESignCheck      = "esign-check"
	FnIdentityConfirm = "identity-confirm"
	FnBankCheck       = "bank-check"
)

// Identity methods [001:41-45, 002:111].
const (
	MethodDocuments  = "documents"
	MethodESignature = "esignature"
	MethodBank       = "bank"
	MethodVideo      = "video"
)

// PersonData is what the taxpayer submits to be identified.
type PersonData struct {
	INN            string `json:"inn"`
	SNILS          string `json:"snils"`
	Surname        string `json:"surname"`
	FirstName      string `json:"first_name"`
	Patronymic     string `json:"patronymic,omitempty"`
	BirthDate      string `json:"birth_date"` // YYYY-MM-DD
	PassportSeries string `json:"passport_series"`
	PassportNumber string `json:"passport_number"`
}

// IdentityMatchInput asks to compare submitted data and documents with the registry.
type IdentityMatchInput struct {
	Person    PersonData `json:"person"`
	Documents []string   `json:"documents,omitempty"` // S3 keys of stored identity documents
	At        time.Time  `json:"at"`                  // the time to judge validity at (workflow time)
}

// Match outcomes.
const (
	MatchYes          = "match"
	MatchNo           = "mismatch"
	MatchInconclusive = "inconclusive"
)

// IdentityMatchResult: Reasons say what did not match, in words for the taxpayer [000:57].
type IdentityMatchResult struct {
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons,omitempty"`
}

// ESignCheckInput asks to check a qualified certificate for the taxpayer: the one the
// registry holds for INN (its SNILS is read from the registry; SNILS is what the caller
// submitted and binds nothing), with the proof of possession the API verified for CaseID.
type ESignCheckInput struct {
	Certificate []byte      `json:"certificate"` // PEM or DER
	INN         string      `json:"inn"`
	SNILS       string      `json:"snils"`
	At          time.Time   `json:"at"`
	CaseID      string      `json:"case_id,omitempty"`
	Proof       *ESignProof `json:"proof,omitempty"`
}

// ESignProof is an e-signature submission's proof of possession as the API's verifier
// accepted it: a challenge nonce issued to Tenant, spent for CaseID, and the signature
// over the nonce's ASCII bytes by the certificate's key. The esign check verifies it
// again (the signature, and that the nonce was spent for this case).
type ESignProof struct {
	Nonce     string `json:"nonce"`
	Signature []byte `json:"signature"`
	Tenant    string `json:"tenant"`
	CaseID    string `json:"case_id"`
}

// ESignCheckResult says whether the certificate identifies the taxpayer.
type ESignCheckResult struct {
	Valid bool `json:"valid"`
	// Inconclusive: the check could not complete (revocation status unknown); the
	// verification goes to manual review, never to verified.
	Inconclusive bool `json:"inconclusive,omitempty"`
	// Refused: the submission's proof of possession is missing or not the verifier's; no
	// certificate can mend that in this case.
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// BankCheckInput asks to verify a partner bank's signed assertion (a compact JWS) that it
// identified the taxpayer, for this case (its nonce is spent by this case only).
type BankCheckInput struct {
	Assertion string    `json:"assertion"`
	INN       string    `json:"inn"`
	CaseID    string    `json:"case_id"`
	At        time.Time `json:"at"` // the time to judge validity at (workflow time)
}

// BankCheckResult says whether the assertion identifies the taxpayer. Reason is for the
// operator (the integrator is told a generic reason); it never names the INN.
type BankCheckResult struct {
	Valid bool `json:"valid"`
	// Inconclusive: the assertion could not be checked (no partner bank keys configured);
	// the verification goes to manual review, never to verified.
	Inconclusive bool   `json:"inconclusive,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Issuer       string `json:"issuer,omitempty"` // the bank that identified the person
}

// IdentityConfirmInput sets the confirmed mark with time and method [001:52, 004:27].
type IdentityConfirmInput struct {
	INN    string    `json:"inn"`
	Method string    `json:"method"`
	CaseID string    `json:"case_id"`
	At     time.Time `json:"at"`
}

// IdentityConfirmResult acknowledges the mark.
type IdentityConfirmResult struct {
	Confirmed bool `json:"confirmed"`
}

// FnCaseDocumentsDelete destroys a case's documents (ФЗ-152 art. 21 p.5).
const FnCaseDocumentsDelete = "case-documents-delete"

// CaseDocumentsDeleteInput names the case whose documents are destroyed.
type CaseDocumentsDeleteInput struct {
	CaseID string `json:"case_id"`
}

// CaseDocumentsDeleteResult counts the objects removed (0 when a retry finds none left).
type CaseDocumentsDeleteResult struct {
	Deleted int `json:"deleted"`
}

// ValidatePerson checks the submitted data's form and returns it normalised.
func ValidatePerson(p PersonData) (PersonData, []domain.FieldError) {
	var errs []domain.FieldError
	add := func(err error) {
		if fe, ok := err.(domain.FieldError); ok {
			errs = append(errs, fe)
		}
	}
	add(domain.ValidateINN("inn", p.INN, true))
	snils, err := domain.NormalizeSNILS("snils", p.SNILS)
	add(err)
	add(domain.ValidateName("surname", p.Surname, true))
	add(domain.ValidateName("first_name", p.FirstName, true))
	add(domain.ValidateName("patronymic", p.Patronymic, false))
	birth, err := domain.ParseDate("birth_date", p.BirthDate)
	add(err)
	pass, err := domain.ParsePassport("passport", p.PassportSeries+p.PassportNumber)
	add(err)
	if len(errs) > 0 {
		return p, errs
	}
	return PersonData{INN: p.INN, SNILS: snils, Surname: domain.NormalizeName(p.Surname), FirstName: domain.NormalizeName(p.FirstName),
		Patronymic: domain.NormalizeName(p.Patronymic), BirthDate: birth.Format(time.DateOnly),
		PassportSeries: pass.Series, PassportNumber: pass.Number}, nil
}
