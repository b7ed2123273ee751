// Package esigntest makes a test certification authority, certificates issued to an INN
// and SNILS, and revocation lists, for tests of the e-signature check.
package esigntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/taxflow/taxflow/internal/esign"
)

// CA is a test certification authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA valid five years around now.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test accredited CA"},
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	return &CA{Cert: c, key: key}, err
}

// Issue makes a certificate for the INN and SNILS, valid from..to, as PEM.
func (a *CA) Issue(serial int64, inn, snils string, from, to time.Time) ([]byte, error) {
	cert, _, err := a.IssueWithKey(serial, inn, snils, from, to)
	return cert, err
}

// IssueWithKey is Issue that also returns the certificate's private key, to sign a
// challenge with.
func (a *CA) IssueWithKey(serial int64, inn, snils string, from, to time.Time) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	subj := pkix.Name{CommonName: "TAXPAYER", ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: esign.OIDINN, Value: inn}, {Type: esign.OIDSNILS, Value: snils}}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subj, NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key, nil
}

// Sign signs msg with key as an e-signature proof of possession does (ECDSA, SHA-256).
func Sign(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	sum := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, key, sum[:])
}

// RootPEM is the CA certificate as PEM.
func (a *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Cert.Raw})
}

// CRL is a DER revocation list revoking the serials.
func (a *CA) CRL(now time.Time, serials ...int64) ([]byte, error) {
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.AddDate(0, -1, 0)})
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.AddDate(0, 0, -1),
		NextUpdate: now.AddDate(0, 0, 6), RevokedCertificateEntries: entries}, a.Cert, a.key)
}
