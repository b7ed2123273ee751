package identity

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

func reg() contract.Taxpayer {
	return contract.Taxpayer{INN: inn, SNILS: "11223344595", Surname: "Семёнов", FirstName: "Иван", Patronymic: "Петрович",
		BirthDate: "1985-04-12", Passport: &contract.PassportRecord{Series: "4509", Number: "123456", IssuedOn: "2010-05-20"}}
}

func submitted() contract.PersonData {
	return contract.PersonData{INN: inn, SNILS: "112-233-445 95", Surname: "СЕМЕНОВ", FirstName: "иван", Patronymic: "Петрович",
		BirthDate: "12.04.1985", PassportSeries: "4509", PassportNumber: "123456"}
}

func pngOf(w, h int) []byte {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)))
	return buf.Bytes()
}

func TestMatch(t *testing.T) {
	at := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	young := reg()
	young.BirthDate, young.Passport.IssuedOn = "2005-01-10", "2019-02-01" // turned 20 in Jan 2025: passport expired
	noPassport := reg()
	noPassport.Passport = nil
	cases := []struct {
		name    string
		tp      contract.Taxpayer
		mutate  func(*contract.PersonData)
		docs    map[string][]byte
		outcome string
		reason  string
	}{
		{"match, ё and case normalised", reg(), func(*contract.PersonData) {}, map[string][]byte{"documents/c/p": pngOf(1000, 700)}, contract.MatchYes, ""},
		{"wrong passport", reg(), func(p *contract.PersonData) { p.PassportNumber = "000001" }, nil, contract.MatchNo, "passport series or number"},
		{"wrong birth date", reg(), func(p *contract.PersonData) { p.BirthDate = "1985-04-13" }, nil, contract.MatchNo, "date of birth"},
		{"other surname", reg(), func(p *contract.PersonData) { p.Surname = "Кузнецов" }, nil, contract.MatchNo, "surname does not match"},
		{"one letter off", reg(), func(p *contract.PersonData) { p.Surname = "Семенова" }, nil, contract.MatchInconclusive, "one letter"},
		{"no passport on record", noPassport, func(*contract.PersonData) {}, nil, contract.MatchInconclusive, "no passport data"},
		{"expired passport", young, func(p *contract.PersonData) { p.BirthDate = "2005-01-10" }, nil, contract.MatchNo, "replaced at the age of 20"},
		{"small image", reg(), func(*contract.PersonData) {}, map[string][]byte{"documents/c/p": pngOf(400, 300)}, contract.MatchNo, "too small to read"},
		{"pdf scan", reg(), func(*contract.PersonData) {}, map[string][]byte{"documents/c/p": []byte("%PDF-1.7\n%%EOF")}, contract.MatchYes, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := storetest.New(map[string]storetest.Key{"tp": {PK: "inn"}})
			if _, err := store.PutNew(context.Background(), db, "tp", "inn", c.tp); err != nil {
				t.Fatal(err)
			}
			s3 := storetest.NewS3()
			var keys []string
			for k, b := range c.docs {
				s3.Put(k, b)
				keys = append(keys, k)
			}
			p := submitted()
			c.mutate(&p)
			res, err := Handler{DB: db, Taxpayers: "tp", S3: s3, Bucket: "b"}.Match(context.Background(), contract.IdentityMatchInput{Person: p, Documents: keys, At: at})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != c.outcome || c.reason != "" && !strings.Contains(strings.Join(res.Reasons, ";"), c.reason) {
				t.Fatalf("got %s %v, want %s %q", res.Outcome, res.Reasons, c.outcome, c.reason)
			}
		})
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	_, errs := Validate(contract.PersonData{INN: "1", SNILS: "x", Surname: "", FirstName: "Иван2", BirthDate: "1985/04/12", PassportSeries: "45", PassportNumber: "1"})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	if strings.Join(fields, ",") != "inn,snils,surname,first_name,birth_date,passport" {
		t.Fatalf("fields %v", fields)
	}
}
