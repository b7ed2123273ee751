// Package pii masks personal data (INN, SNILS, passport, bank account numbers) in text
// that leaves the process: log lines and error messages. It is the last line of defence;
// code should not put personal data there in the first place.
package pii

import (
	"regexp"
)

// Patterns, most specific first. Long digit runs cover INN (10/12), SNILS (11),
// bank accounts (20) and card-like numbers; the formatted shapes cover SNILS written
// as "XXX-XXX-XXX YY" and a passport written as "SSSS NNNNNN" or "SS SS NNNNNN".
var patterns = []*regexp.Regexp{
	regexp.MustCompile(`\b\d{3}-\d{3}-\d{3}[ -]\d{2}\b`), // SNILS
	regexp.MustCompile(`\b\d{2} ?\d{2} \d{6}\b`),         // passport series + number
	regexp.MustCompile(`\b\d{10,}\b`),                    // INN, SNILS, account
}

// Mask is what replaces personal data.
const Mask = "[redacted]"

// Redact replaces every run of text that looks like personal data with Mask.
func Redact(s string) string {
	for _, p := range patterns {
		s = p.ReplaceAllString(s, Mask)
	}
	return s
}

// RedactBytes is Redact for a byte slice; it returns b itself when nothing matched.
func RedactBytes(b []byte) []byte {
	out := b
	for _, p := range patterns {
		if p.Match(out) {
			out = p.ReplaceAll(out, []byte(Mask))
		}
	}
	return out
}
