package contract

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/domain"
)

// The validation of the requests that create work lives here, not in the API, because
// two doors lead in: the HTTP API and the back-office batch files (internal/batch). Both
// must refuse exactly the same things with exactly the same field errors.

// MaxReasonChars bounds the free text of a reason (decision, withdrawal, requisites,
// refund claim): longer text is refused at the edge, never inside a workflow.
const MaxReasonChars = 500

// RefundRequest is a refund claim: the body of POST /v1/refunds and a batch file's
// `refund` line.
type RefundRequest struct {
	INN     string `json:"inn"`
	Period  int    `json:"period"`
	Amount  int64  `json:"amount_kopecks"`
	Reason  string `json:"reason"`
	BIK     string `json:"bik,omitempty"`
	Account string `json:"account,omitempty"`
}

// MaxRefundKopecks bounds a claim (10 billion roubles): larger is a typing error, and
// the interest arithmetic stays far from overflow.
const MaxRefundKopecks = 1_000_000_000_000

// Validate lists every bad field with its reason (never the value). Tax periods are
// years in Moscow time: the current one may be claimed, a future one may not.
func (c RefundRequest) Validate(now time.Time) []domain.FieldError {
	var errs []domain.FieldError
	add := func(err error) {
		var fe domain.FieldError
		if errors.As(err, &fe) {
			errs = append(errs, fe)
		}
	}
	add(domain.ValidateINN("inn", c.INN, true))
	year := now.In(calendar.Moscow).Year()
	if c.Period < 2000 || c.Period > year {
		errs = append(errs, domain.FieldError{Field: "period", Reason: fmt.Sprintf("must be a past or current tax year, 2000-%d", year)})
	}
	if c.Amount <= 0 || c.Amount > MaxRefundKopecks {
		errs = append(errs, domain.FieldError{Field: "amount_kopecks", Reason: "must be a whole number of kopecks greater than 0 and at most 1000000000000"})
	}
	if strings.TrimSpace(c.Reason) == "" || utf8.RuneCountInString(c.Reason) > MaxReasonChars {
		errs = append(errs, domain.FieldError{Field: "reason", Reason: fmt.Sprintf("must say why (for example, overpaid income tax), at most %d characters", MaxReasonChars)})
	}
	if c.BIK != "" || c.Account != "" {
		add(domain.ValidateBIK("bik", c.BIK))
		add(domain.ValidateAccount("account", c.Account, c.BIK))
	}
	return errs
}

var eventIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,100}$`)

var eventTypes = map[string]bool{EventLoginFailed: true, EventLoginSucceeded: true, EventSuspicious: true, EventDataIncorrect: true}

// Validate checks an account event as POST /v1/accounts/{inn}/events and a batch file's
// `account_event` line take it.
func (e AccountEvent) Validate() []domain.FieldError {
	var errs []domain.FieldError
	if !eventIDRE.MatchString(e.EventID) {
		errs = append(errs, domain.FieldError{Field: "event_id", Reason: "1-100 letters, digits, '.', '_', ':' or '-'; unique per event"})
	}
	if !eventTypes[e.Type] {
		errs = append(errs, domain.FieldError{Field: "type", Reason: "must be login_failed, login_succeeded, suspicious_activity or data_incorrect"})
	}
	return errs
}

// Confirmation methods of a declaration: a qualified e-signature or an SMS code (both
// accepted [002:322, 004:127]).
const (
	ConfirmESignature = "esignature"
	ConfirmSMS        = "sms"
)

// Confirmation references, per method. The reference is what the case records of the
// check that confirmed the declaration; it is shown with the case and may be exported,
// so it is plain: Latin letters, digits and a few separators, starting with a letter or
// digit (never markup, a formula or a control character).
//   - esignature: the signing service's id of the signature, or a hash of the detached
//     signature (hex or base64): 4-128 characters of A-Z a-z 0-9 . _ : - / + =
//   - sms: the SMS gateway's id of the code check, never the code itself: 4-64 characters
//     of A-Z a-z 0-9 . _ : - with at least one letter (digits alone look like the code).
var (
	esignatureRefRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/+=-]{3,127}$`)
	smsRefRE        = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{3,63}$`)
	hasLetterRE     = regexp.MustCompile(`[A-Za-z]`)
)

// ValidateConfirmation checks how a declaration was confirmed: the method, and the
// reference to its check in the method's format. methodField and referenceField name the
// two in the caller's terms (headers for the API, columns for a batch).
func ValidateConfirmation(methodField, referenceField, method, reference string) []domain.FieldError {
	var ok bool
	var format string
	switch method {
	case ConfirmESignature:
		ok, format = esignatureRefRE.MatchString(reference),
			"an e-signature reference is the signature's id or the hash of the detached signature: 4-128 characters of A-Z a-z 0-9 . _ : - / + =, starting with a letter or digit"
	case ConfirmSMS:
		ok, format = smsRefRE.MatchString(reference) && hasLetterRE.MatchString(reference),
			"an SMS reference is the id of the code check at the SMS gateway, never the code: 4-64 characters of A-Z a-z 0-9 . _ : -, starting with a letter or digit, with at least one letter"
	default:
		return []domain.FieldError{{Field: methodField, Reason: "the declaration must be confirmed by esignature or sms"}}
	}
	if !ok {
		return []domain.FieldError{{Field: referenceField, Reason: format}}
	}
	return nil
}
