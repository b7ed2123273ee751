// Package esign checks a qualified electronic signature certificate [002:195-209]:
// readable (PEM or DER), within its validity period, issued by a trusted certification
// authority, not revoked (per the configured CRL), and issued to this taxpayer (the INN
// and SNILS attributes of a Russian qualified certificate's subject). Every refusal
// tells the taxpayer to update the signature, as the cabinet does [002:209].
//
// Go's crypto/x509 verifies RSA and ECDSA chains; certificates signed with GOST R
// 34.10-2012 need a GOST-capable verifier behind the same Verify function.
package esign

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Subject attribute OIDs of Russian qualified certificates (order of the FSB No. 795).
var (
	OIDINN   = asn1.ObjectIdentifier{1, 2, 643, 3, 131, 1, 1}
	OIDSNILS = asn1.ObjectIdentifier{1, 2, 643, 100, 3}
)

// Trust is what a certificate is checked against.
type Trust struct {
	Roots *x509.CertPool
	CRLs  []*x509.RevocationList
}

// Refusal is a certificate refused, with a reason for the taxpayer.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

const update = ": update your electronic signature and upload the new certificate"

func refuse(why string) error { return &Refusal{Reason: why + update} }

// Unknown is a check that could not complete (revocation status unknown): neither valid
// nor refused; the verification goes to an operator.
type Unknown struct{ Reason string }

func (u *Unknown) Error() string { return u.Reason }

// IsUnknown tells whether err is a check that could not complete.
func IsUnknown(err error) bool {
	var u *Unknown
	return errors.As(err, &u)
}

// IsRefusal tells whether err refuses the certificate.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Parse reads a certificate from PEM or DER.
func Parse(b []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, &Refusal{Reason: "the file is a " + strings.ToLower(blk.Type) + ", not a certificate: upload the certificate (.cer, PEM or DER)"}
		}
		b = blk.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, &Refusal{Reason: "the file is not a readable certificate (PEM or DER): export the certificate again"}
	}
	return c, nil
}

// Subject returns the INN and SNILS a certificate was issued to ("" when absent).
func Subject(c *x509.Certificate) (inn, snils string) {
	for _, n := range c.Subject.Names {
		v, _ := n.Value.(string)
		switch {
		case n.Type.Equal(OIDINN):
			inn = v
		case n.Type.Equal(OIDSNILS):
			snils = v
		}
	}
	return inn, snils
}

// SigningUsages are the extended key usages a taxpayer's certificate may name (or it names
// none): the profiles of a qualified signature certificate of a person (client
// authentication, e-mail protection). A server's or a code signer's certificate is not one.
var SigningUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}

// SigningKey refuses a certificate whose key may not sign for its holder: a certification
// authority's, one whose key usage allows neither digitalSignature nor nonRepudiation
// (contentCommitment), and keys other than ECDSA or RSA (the proof of possession is
// checked with SHA-256 over them).
func SigningKey(c *x509.Certificate) error {
	switch {
	case c.IsCA:
		return refuse("the certificate is a certification authority's, not a person's")
	case c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0:
		return refuse("the certificate's key usage does not allow signing (digitalSignature or nonRepudiation)")
	case c.PublicKeyAlgorithm != x509.ECDSA && c.PublicKeyAlgorithm != x509.RSA:
		return refuse("the certificate's key is neither ECDSA nor RSA")
	}
	return nil
}

// Bind checks that the certificate names the taxpayer the registry holds: both the INN
// and the SNILS the registry has for that INN (never a SNILS the caller submitted).
func Bind(c *x509.Certificate, registryINN, registrySNILS string) error {
	gotINN, gotSNILS := Subject(c)
	if gotINN == "" || gotSNILS == "" {
		return refuse("the certificate does not name both an INN and a SNILS, so it cannot identify you")
	}
	if registryINN == "" || registrySNILS == "" || gotINN != registryINN || digits(gotSNILS) != digits(registrySNILS) {
		return refuse("the certificate was issued to another person (its INN or SNILS differs from the registry's)")
	}
	return nil
}

// digits keeps the digits of a SNILS ("112-233-445 95" and "11223344595" are one number).
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// CheckPossession verifies a SHA-256 signature over msg by the certificate's key
// (ECDSA, or RSA PKCS #1 v1.5).
func CheckPossession(c *x509.Certificate, msg, sig []byte) error {
	alg := x509.SHA256WithRSA
	if c.PublicKeyAlgorithm == x509.ECDSA {
		alg = x509.ECDSAWithSHA256
	}
	if err := c.CheckSignature(alg, msg, sig); err != nil {
		return errors.New("the signature does not verify with the certificate's public key")
	}
	return nil
}

// Verify checks the certificate for the taxpayer the registry holds with this INN and
// SNILS at now: validity, a chain to a trusted root for a signing usage, a key that may
// sign, the binding to the registry's INN and SNILS, and revocation.
func Verify(c *x509.Certificate, t Trust, inn, snils string, now time.Time) error {
	if now.Before(c.NotBefore) {
		return refuse(fmt.Sprintf("the certificate is not valid until %s", c.NotBefore.UTC().Format(time.DateOnly)))
	}
	if now.After(c.NotAfter) {
		return refuse(fmt.Sprintf("the certificate expired on %s", c.NotAfter.UTC().Format(time.DateOnly)))
	}
	chains, err := c.Verify(x509.VerifyOptions{Roots: t.Roots, CurrentTime: now, KeyUsages: SigningUsages})
	if err != nil {
		return refuse("the certificate was not issued by an accredited certification authority for signing")
	}
	if err := SigningKey(c); err != nil {
		return err
	}
	if err := Bind(c, inn, snils); err != nil {
		return err
	}
	issuer := c
	if len(chains) > 0 && len(chains[0]) > 1 {
		issuer = chains[0][1]
	}
	// Fail closed: without a current list signed by the certificate's own authority the
	// revocation status is unknown, and an unknown status is not a valid certificate.
	current := false
	for _, crl := range t.CRLs {
		if crl.CheckSignatureFrom(issuer) != nil {
			continue // another authority's list
		}
		if now.Before(crl.ThisUpdate) || !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			continue // not current: it cannot vouch for today
		}
		current = true
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return refuse(fmt.Sprintf("the certificate was revoked on %s", e.RevocationTime.UTC().Format(time.DateOnly)))
			}
		}
	}
	if !current {
		return &Unknown{Reason: "the revocation status of the certificate could not be established (no current revocation list of its authority): an operator reviews it"}
	}
	return nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
