package domain

import (
	"strings"
	"testing"
	"time"
)

func TestSNILS(t *testing.T) {
	for in, want := range map[string]string{"112-233-445 95": "11223344595", "11223344595": "11223344595", " 112 233 445 95": "11223344595"} {
		got, err := NormalizeSNILS("snils", in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for in, reason := range map[string]string{"112-233-445 96": "control number", "1122334459": "11 digits", "112-233-445-9x": "XXX-XXX"} {
		if _, err := NormalizeSNILS("snils", in); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want %q", in, err, reason)
		}
	}
	if FormatSNILS("11223344595") != "112-233-445 95" {
		t.Fatal(FormatSNILS("11223344595"))
	}
	// sums of 100 and 101 give 00
	if SNILSControl("000000000") != "00" {
		t.Fatal("zero sum")
	}
}

func TestPassport(t *testing.T) {
	for _, in := range []string{"4509 123456", "45 09 123456", "4509123456"} {
		p, err := ParsePassport("passport", in)
		if err != nil || p.Series != "4509" || p.Number != "123456" {
			t.Errorf("%q: %+v %v", in, p, err)
		}
	}
	for _, in := range []string{"450 123456", "4509-123456", "", "4509 12345a"} {
		if _, err := ParsePassport("passport", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"  Семёнов ":         "СЕМЕНОВ",
		"римский – корсаков": "РИМСКИЙ-КОРСАКОВ",
		"Анна  Мария":        "АННА МАРИЯ",
		"салтыков -щедрин":   "САЛТЫКОВ-ЩЕДРИН",
		"ФЁДОРОВ":            "ФЕДОРОВ",
		"д'артаньян":         "Д'АРТАНЬЯН",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
	if err := ValidateName("surname", "Петров2", true); err == nil {
		t.Fatal("digits in a name accepted")
	}
	if err := ValidateName("patronymic", " ", false); err != nil {
		t.Fatal("an empty optional name refused")
	}
}

func TestParseDate(t *testing.T) {
	for _, in := range []string{"05.03.1990", "1990-03-05"} {
		d, err := ParseDate("birth_date", in)
		if err != nil || !d.Equal(time.Date(1990, 3, 5, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%q: %v %v", in, d, err)
		}
	}
	for _, in := range []string{"31.02.1990", "5.3.1990", "1990/03/05"} {
		if _, err := ParseDate("birth_date", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
