package domain

import (
	"strings"
	"testing"
)

func TestValidateINN(t *testing.T) {
	cases := []struct {
		inn        string
		individual bool
		wantErr    string
	}{
		{"500100732259", true, ""},
		{"7707083893", false, ""},
		{"7707083893", true, "12 digits"},
		{"500100732258", true, "check digits"},
		{"7707083894", false, "check digit"},
		{"50010073225", false, "10 (organisation) or 12"},
		{"5001 0073225", true, "digits only"},
		{"", true, "digits only"},
	}
	for _, c := range cases {
		err := ValidateINN("inn", c.inn, c.individual)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%q: got %v, want %q", c.inn, err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), c.inn) && c.inn != "" {
			t.Errorf("error repeats the INN: %v", err)
		}
	}
	for _, p := range []string{"5001007322", "7707083893", "1234567890"} {
		if err := ValidateINN("inn", CompleteINN12(p), true); err != nil {
			t.Errorf("CompleteINN12(%s): %v", p, err)
		}
	}
}

func TestValidateAccount(t *testing.T) {
	// Sberbank, Moscow: BIK 044525225, a real-shaped account with a valid key.
	if err := ValidateAccount("account", "40817810938160925982", "044525225"); err != nil {
		t.Fatal(err)
	}
	if err := ValidateAccount("account", "40817810938160925983", "044525225"); err == nil || !strings.Contains(err.Error(), "control key") {
		t.Fatalf("want control key error, got %v", err)
	}
	if err := ValidateAccount("account", "4081781093816092598", "044525225"); err == nil || !strings.Contains(err.Error(), "20 digits") {
		t.Fatalf("want length error, got %v", err)
	}
	for _, bik := range []string{"044525225", "044525000", "041234567"} {
		acc := CompleteAccount("40817810000000012345", bik)
		if err := ValidateAccount("account", acc, bik); err != nil {
			t.Errorf("CompleteAccount for %s: %v", bik, err)
		}
	}
	if err := ValidateBIK("bik", "144525225"); err == nil {
		t.Fatal("BIK not starting with 04 accepted")
	}
}

func TestKopecksString(t *testing.T) {
	if got := Kopecks(123405).String(); got != "1234.05 ₽" {
		t.Fatal(got)
	}
	if got := Kopecks(-5).String(); got != "-0.05 ₽" {
		t.Fatal(got)
	}
}

// domain.md: payout accounts are rouble (810) accounts of an individual.
func TestValidatePayoutAccount(t *testing.T) {
	const bik = "044525225"
	acc := func(first8 string) string { return CompleteAccount(first8+"000000000001", bik) }
	for _, c := range []struct {
		name, account, reason string
	}{
		{"resident current account", acc("40817810"), ""},
		{"non-resident current account", acc("40820810"), ""},
		{"demand deposit", acc("42301810"), ""},
		{"dollar account", acc("40817840"), "rouble"},
		{"euro deposit", acc("42301978"), "rouble"},
		{"entrepreneur", acc("40802810"), "entrepreneur"},
		{"organisation", acc("40702810"), "individual"},
		{"term deposit", acc("42305810"), "individual"},
		{"bank transit", acc("30232810"), "individual"},
		{"bad key", "40817810000000000001", "control key"},
	} {
		err := ValidatePayoutAccount("account", c.account, bik)
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.reason != "" && (err == nil || !strings.Contains(err.Error(), c.reason)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.reason)
		case err != nil && strings.Contains(err.Error(), c.account):
			t.Errorf("%s: the error repeats the account", c.name)
		}
	}
}

func TestMaskINN(t *testing.T) {
	for in, want := range map[string]string{"500100732259": "********2259", "7707083893": "******3893", "123": "****", "": "****"} {
		if got := MaskINN(in); got != want {
			t.Errorf("MaskINN(%q) = %q, want %q", in, got, want)
		}
	}
}
