// Package domain holds taxflow's value types and their validation rules: INN, bank
// requisites (BIK and account with its control key), money in kopecks. A validation
// error names the field and the reason, and never repeats the value (it may be personal).
package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldError is a validation failure of one input field.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func checksum(d string, weights []int) int {
	sum := 0
	for i, w := range weights {
		sum += int(d[i]-'0') * w
	}
	return sum % 11 % 10
}

// ValidateINN checks an INN: 10 digits (organisation) or 12 (individual) with check digits.
// individual requires the 12-digit form.
func ValidateINN(field, inn string, individual bool) error {
	switch {
	case !digits(inn):
		return FieldError{field, "must be digits only, without spaces"}
	case individual && len(inn) != 12:
		return FieldError{field, "an individual's INN has 12 digits"}
	case len(inn) != 10 && len(inn) != 12:
		return FieldError{field, "must have 10 (organisation) or 12 (individual) digits"}
	}
	if len(inn) == 10 {
		if checksum(inn, []int{2, 4, 10, 3, 5, 9, 4, 6, 8}) != int(inn[9]-'0') {
			return FieldError{field, "check digit does not match: the INN is mistyped"}
		}
		return nil
	}
	if checksum(inn, []int{7, 2, 4, 10, 3, 5, 9, 4, 6, 8}) != int(inn[10]-'0') ||
		checksum(inn, []int{3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8}) != int(inn[11]-'0') {
		return FieldError{field, "check digits do not match: the INN is mistyped"}
	}
	return nil
}

// CompleteINN12 appends the two check digits to 10 digits (for generating test data).
func CompleteINN12(first10 string) string {
	n11 := checksum(first10, []int{7, 2, 4, 10, 3, 5, 9, 4, 6, 8})
	with11 := first10 + strconv.Itoa(n11)
	return with11 + strconv.Itoa(checksum(with11, []int{3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8}))
}

// ValidateBIK checks a Russian bank identification code: 9 digits starting with 04.
func ValidateBIK(field, bik string) error {
	if !digits(bik) || len(bik) != 9 {
		return FieldError{field, "must be 9 digits"}
	}
	if !strings.HasPrefix(bik, "04") {
		return FieldError{field, "a Russian BIK starts with 04"}
	}
	return nil
}

// accountKeyBase is the 3 digits the control key is computed over before the account:
// the last 3 of the BIK, or for a settlement centre "0" and BIK digits 5-6.
func accountKeyBase(bik string) string {
	if bik[6:] == "000" {
		return "0" + bik[4:6]
	}
	return bik[6:]
}

var keyWeights = []int{7, 1, 3}

func accountSum(base, account string) int {
	s := base + account
	sum := 0
	for i := range s {
		sum += (int(s[i]-'0') * keyWeights[i%3]) % 10
	}
	return sum % 10
}

// ValidateAccount checks a 20-digit account number and its control key against the BIK.
func ValidateAccount(field, account, bik string) error {
	if !digits(account) || len(account) != 20 {
		return FieldError{field, "must be 20 digits"}
	}
	if ValidateBIK("bik", bik) != nil {
		return FieldError{field, "cannot be checked without a valid BIK"}
	}
	if accountSum(accountKeyBase(bik), account) != 0 {
		return FieldError{field, "control key does not match the BIK: the account or the BIK is mistyped"}
	}
	return nil
}

// CompleteAccount sets the control key (9th digit) of a 20-digit account for a BIK
// (for generating test data).
func CompleteAccount(account, bik string) string {
	b := []byte(account)
	for k := byte('0'); k <= '9'; k++ {
		b[8] = k
		if accountSum(accountKeyBase(bik), string(b)) == 0 {
			break
		}
	}
	return string(b)
}

// Kopecks is an amount of money in kopecks. Never a float.
type Kopecks int64

// String formats kopecks as roubles: "1234.05 ₽".
func (k Kopecks) String() string {
	sign := ""
	if k < 0 {
		sign, k = "-", -k
	}
	return fmt.Sprintf("%s%d.%02d ₽", sign, int64(k)/100, int64(k)%100)
}

// MaskINN keeps an INN's length and shows only its last four digits, for documents that
// must say whose they are without printing the INN in clear.
func MaskINN(inn string) string {
	if len(inn) <= 4 {
		return "****"
	}
	return strings.Repeat("*", len(inn)-4) + inn[len(inn)-4:]
}

// MaskAccount shows only the last four digits of an account.
func MaskAccount(account string) string {
	if len(account) < 4 {
		return "****"
	}
	return "****" + account[len(account)-4:]
}

// payoutPrefixes are the balance accounts (Bank of Russia chart of accounts, Regulation
// No. 809-P) a tax refund to an individual may be paid into, each with the rouble
// currency code 810 in digits 6–8: 40817 current accounts of resident individuals,
// 40820 current accounts of non-resident individuals, 42301 and 42601 demand deposits of
// resident and non-resident individuals. Term deposits (42302–42307) take no incoming
// transfers; 40802 is an individual entrepreneur's business account; 407xx belong to
// organisations; 30xxx are banks' own transit accounts.
var payoutPrefixes = []string{"40817810", "40820810", "42301810", "42601810"}

// ValidatePayoutAccount checks that a refund may be paid into the account: a valid
// account for the BIK (ValidateAccount), in roubles (810), of an individual (see
// payoutPrefixes) [domain.md, "Rules added after review"].
func ValidatePayoutAccount(field, account, bik string) error {
	if err := ValidateAccount(field, account, bik); err != nil {
		return err
	}
	for _, p := range payoutPrefixes {
		if strings.HasPrefix(account, p) {
			return nil
		}
	}
	switch {
	case account[5:8] != "810":
		return FieldError{field, "is not a rouble account: a refund is paid in roubles (currency code 810)"}
	case strings.HasPrefix(account, "40802"):
		return FieldError{field, "is an individual entrepreneur's business account: give a personal current account (40817…)"}
	default:
		return FieldError{field, "is not an individual's current or demand-deposit account: give an account starting 40817810, 40820810, 42301810 or 42601810"}
	}
}
