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

func TestMaskINN(t *testing.T) {
	for in, want := range map[string]string{"500100732259": "********2259", "7707083893": "******3893", "123": "****", "": "****"} {
		if got := MaskINN(in); got != want {
			t.Errorf("MaskINN(%q) = %q, want %q", in, got, want)
		}
	}
}
