package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// NormalizeSNILS accepts "XXX-XXX-XXX YY" or 11 digits and returns the 11 digits.
func NormalizeSNILS(field, s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case (r == '-' || r == ' ') && i > 0:
		default:
			return "", FieldError{field, "must be XXX-XXX-XXX YY or 11 digits"}
		}
	}
	d := b.String()
	if len(d) != 11 {
		return "", FieldError{field, "must have 11 digits"}
	}
	if SNILSControl(d[:9]) != d[9:] {
		return "", FieldError{field, "control number does not match: the SNILS is mistyped"}
	}
	return d, nil
}

// SNILSControl computes the two control digits of a SNILS's first nine digits.
func SNILSControl(nine string) string {
	sum := 0
	for i := 0; i < 9; i++ {
		sum += int(nine[i]-'0') * (9 - i)
	}
	switch {
	case sum < 100:
	case sum == 100 || sum == 101:
		sum = 0
	default:
		sum %= 101
		if sum == 100 {
			sum = 0
		}
	}
	return fmt.Sprintf("%02d", sum)
}

// FormatSNILS writes 11 digits as XXX-XXX-XXX YY.
func FormatSNILS(d string) string {
	if len(d) != 11 {
		return d
	}
	return d[0:3] + "-" + d[3:6] + "-" + d[6:9] + " " + d[9:]
}

// Passport is an RF internal passport's series (4 digits) and number (6 digits).
type Passport struct {
	Series string `json:"series"`
	Number string `json:"number"`
}

// ParsePassport accepts "4509 123456", "45 09 123456" or "4509123456".
func ParsePassport(field, s string) (Passport, error) {
	d := strings.Map(func(r rune) rune {
		if r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if !digits(d) || len(d) != 10 {
		return Passport{}, FieldError{field, "must be the series (4 digits) and the number (6 digits), such as 4509 123456"}
	}
	return Passport{Series: d[:4], Number: d[4:]}, nil
}

var hyphens = strings.NewReplacer("‐", "-", "‑", "-", "–", "-", "—", "-", "−", "-")

// NormalizeName brings a name to the form it is compared in: capital letters, Ё as Е,
// single spaces, hyphens without spaces around them [004:43].
func NormalizeName(s string) string {
	s = hyphens.Replace(strings.ToUpper(s))
	s = strings.NewReplacer("Ё", "Е").Replace(s)
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(strings.ReplaceAll(s, " -", "-"), "- ", "-")
	return s
}

// ValidateName checks a surname, first name or patronymic: letters, spaces, hyphens
// and apostrophes only, 1-100 characters.
func ValidateName(field, s string, required bool) error {
	n := NormalizeName(s)
	if n == "" {
		if required {
			return FieldError{field, "must not be empty"}
		}
		return nil
	}
	if len([]rune(n)) > 100 {
		return FieldError{field, "at most 100 characters"}
	}
	for _, r := range n {
		if !unicode.IsLetter(r) && r != ' ' && r != '-' && r != '\'' {
			return FieldError{field, "letters, spaces, hyphens and apostrophes only"}
		}
	}
	return nil
}

// ParseDate accepts ДД.ММ.ГГГГ [004:43] or ISO 8601 (YYYY-MM-DD).
func ParseDate(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"02.01.2006", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, FieldError{field, "must be a date as ДД.ММ.ГГГГ or YYYY-MM-DD"}
}
