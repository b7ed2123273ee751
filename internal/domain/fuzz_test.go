package domain

import (
	"testing"
	"unicode/utf8"
)

func FuzzINN(f *testing.F) {
	for _, s := range []string{"500100732259", "7707083893", "", "00000000000a", "5001007322590"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateINN("inn", s, false)
		if err == nil && len(s) == 10 && ValidateINN("inn", CompleteINN12(s), true) != nil {
			t.Fatalf("valid 10 digits %q do not complete to a valid 12-digit INN", s)
		}
		if len(s) >= 10 && digits(s[:10]) {
			if ValidateINN("inn", CompleteINN12(s[:10]), true) != nil {
				t.Fatalf("CompleteINN12(%q) invalid", s[:10])
			}
		}
	})
}

func FuzzSNILS(f *testing.F) {
	for _, s := range []string{"112-233-445 95", "11223344595", "", "---", "112-233-445 9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := NormalizeSNILS("snils", s)
		if err != nil {
			return
		}
		// a valid SNILS round-trips through its printed form
		again, err := NormalizeSNILS("snils", FormatSNILS(d))
		if err != nil || again != d {
			t.Fatalf("%q → %q → %q %v", s, d, FormatSNILS(d), err)
		}
	})
}

func FuzzPassport(f *testing.F) {
	for _, s := range []string{"4509 123456", "45 09 123456", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePassport("passport", s)
		if err != nil {
			return
		}
		again, err := ParsePassport("passport", p.Series+" "+p.Number)
		if err != nil || again != p {
			t.Fatalf("%q → %+v → %+v %v", s, p, again, err)
		}
	})
}

func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"Семёнов", "римский – корсаков", " a  b ", "-", "Ё-ё"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		n := NormalizeName(s)
		if NormalizeName(n) != n {
			t.Fatalf("not idempotent: %q → %q → %q", s, n, NormalizeName(n))
		}
	})
}
