package esign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test accredited CA"},
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return ca{c, key}
}

func (a ca) issue(t *testing.T, serial int64, inn, snils string, from, to time.Time) *x509.Certificate {
	return a.issueFor(t, serial, inn, snils, from, to, x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

// issueFor is issue with the key usages of a certificate profile.
func (a ca) issueFor(t *testing.T, serial int64, inn, snils string, from, to time.Time, ku x509.KeyUsage, eku []x509.ExtKeyUsage) *x509.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	subj := pkix.Name{CommonName: "ПЕТРОВ ИВАН СЕРГЕЕВИЧ"}
	if inn != "" {
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: OIDINN, Value: inn})
	}
	if snils != "" {
		subj.ExtraNames = append(subj.ExtraNames, pkix.AttributeTypeAndValue{Type: OIDSNILS, Value: snils})
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subj, NotBefore: from, NotAfter: to,
		KeyUsage: ku, ExtKeyUsage: eku}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (a ca) crl(t *testing.T, serials ...int64) *x509.RevocationList {
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.AddDate(0, -1, 0)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.AddDate(0, 0, -1),
		NextUpdate: now.AddDate(0, 0, 6), RevokedCertificateEntries: entries}, a.cert, a.key)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := x509.ParseRevocationList(der)
	return l
}

const inn, snils = "500100732259", "11223344595"

func TestVerify(t *testing.T) {
	a, other := newCA(t), newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(a.cert)
	trust := Trust{Roots: pool, CRLs: []*x509.RevocationList{a.crl(t, 66), other.crl(t, 10)}}
	year := func(from, to int) (time.Time, time.Time) { return now.AddDate(from, 0, 0), now.AddDate(to, 0, 0) }
	f, to := year(-1, 1)
	cases := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"valid", a.issue(t, 10, inn, snils, f, to), ""}, // serial 10 is revoked only by the other CA
		{"expired", a.issue(t, 11, inn, snils, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1)), "expired on"},
		{"not yet valid", a.issue(t, 12, inn, snils, now.AddDate(0, 0, 2), now.AddDate(1, 0, 0)), "not valid until"},
		{"revoked", a.issue(t, 66, inn, snils, f, to), "revoked on"},
		{"another INN", a.issue(t, 13, "7707083893", snils, f, to), "another person"},
		{"another SNILS", a.issue(t, 14, inn, "08765430300", f, to), "another person"},
		{"no identifiers", a.issue(t, 15, "", "", f, to), "does not name both an INN and a SNILS"},
		{"untrusted CA", other.issue(t, 16, inn, snils, f, to), "accredited certification authority"},
		// A certificate naming only the holder's SNILS verified them as any INN whose
		// SNILS the caller submitted: the INN and SNILS are now both the registry's.
		{"only a SNILS", a.issue(t, 17, "", snils, f, to), "does not name both"},
		{"only an INN", a.issue(t, 18, inn, "", f, to), "does not name both"},
		// Signing profiles only: no key usage for signing, or a TLS server's or a code
		// signer's extended usage, is refused (ExtKeyUsageAny accepted them all).
		{"key encipherment only", a.issueFor(t, 19, inn, snils, f, to, x509.KeyUsageKeyEncipherment, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}), "does not allow signing"},
		{"server certificate", a.issueFor(t, 20, inn, snils, f, to, x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}), "for signing"},
		{"code signing", a.issueFor(t, 21, inn, snils, f, to, x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}), "for signing"},
		{"nonRepudiation, e-mail", a.issueFor(t, 22, inn, snils, f, to, x509.KeyUsageContentCommitment, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}), ""},
		{"no extended usage", a.issueFor(t, 23, inn, snils, f, to, x509.KeyUsageDigitalSignature, nil), ""},
		{"SNILS written with separators in the registry", a.issue(t, 24, inn, snils, f, to), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			registrySNILS := snils
			if strings.Contains(c.name, "separators") {
				registrySNILS = "112-233-445 95"
			}
			err := Verify(c.cert, trust, inn, registrySNILS, now)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !IsRefusal(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "update your electronic signature") {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestParsePEMAndDER(t *testing.T) {
	a := newCA(t)
	c := a.issue(t, 20, inn, snils, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	for name, b := range map[string][]byte{"pem": pemBytes, "der": c.Raw} {
		got, err := Parse(b)
		if err != nil || got.SerialNumber.Int64() != 20 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if gotINN, gotSNILS := Subject(c); gotINN != inn || gotSNILS != snils {
		t.Fatalf("subject %s %s", gotINN, gotSNILS)
	}
	for name, b := range map[string][]byte{"garbage": []byte("hello"), "key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})} {
		if _, err := Parse(b); !IsRefusal(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Revocation fails closed: only another authority's list, or none, is "unknown", never valid.
func TestRevocationUnknownIsNotValid(t *testing.T) {
	a, other := newCA(t), newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(a.cert)
	f, to := now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0)
	c := a.issue(t, 20, inn, snils, f, to)
	for name, crls := range map[string][]*x509.RevocationList{"no list": nil, "another authority's list": {other.crl(t)}} {
		err := Verify(c, Trust{Roots: pool, CRLs: crls}, inn, snils, now)
		if !IsUnknown(err) || IsRefusal(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A stale list (past its next update) cannot vouch for a later day.
	if err := Verify(c, Trust{Roots: pool, CRLs: []*x509.RevocationList{a.crl(t)}}, inn, snils, now.AddDate(0, 0, 7)); !IsUnknown(err) {
		t.Errorf("stale list: %v", err)
	}
	if err := Verify(c, Trust{Roots: pool, CRLs: []*x509.RevocationList{a.crl(t)}}, inn, snils, now); err != nil {
		t.Errorf("current list: %v", err)
	}
}
