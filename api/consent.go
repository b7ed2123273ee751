package api

import (
	"net/http"
	"regexp"

	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/workflows"
)

// ConsentRequest is how consent to personal-data processing is given [001:53-67]: the
// channel it was given through and the signed consent document it rests on.
type ConsentRequest struct {
	Channel    string `json:"channel"`
	DocumentID string `json:"document_id"`
}

var consentChannels = map[string]bool{"cabinet": true, "mobile": true, "paper": true, "esia": true}

var consentDocRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$`)

// check refuses consent that names no known channel or no signed document: then nothing
// is recorded.
func (req ConsentRequest) check() error {
	var errs []domain.FieldError
	if !consentChannels[req.Channel] {
		errs = append(errs, domain.FieldError{Field: "channel", Reason: "must be cabinet, mobile, paper or esia"})
	}
	if !consentDocRE.MatchString(req.DocumentID) {
		errs = append(errs, domain.FieldError{Field: "document_id", Reason: "the signed consent document is required: its id (1-200 letters, digits, . _ : / -)"})
	}
	if len(errs) > 0 {
		return refuse(http.StatusBadRequest, "invalid_request", "consent must name its channel and document", errs...)
	}
	return nil
}

// GenericMismatch is what integrators are told when identity data does not match: which
// field differs (and so what the registry holds) stays with the staff who review it.
const GenericMismatch = "the data could not be confirmed; check it with the taxpayer and re-submit, or ask for a review"

// redactReasons replaces the reasons of an identity verification with one generic reason
// for anyone but staff.
func redactReasons(p Principal, st *workflows.IdentityStatus) {
	if p.Staff() || len(st.Reasons) == 0 {
		return
	}
	st.Reasons = []string{GenericMismatch}
}
