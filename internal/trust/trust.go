// Package trust is where taxflow keeps its trust anchors: the e-signature authorities'
// roots and revocation list, and the partner banks' public keys. They live in a bucket of
// their own that every function may at most read: the template denies writes to it in
// every function's role and in the bucket's policy, so no compromised function (the API,
// the batch, the document or decision-PDF steps) can plant a root or a bank key and forge
// an identity proof. Only an operator changes them, with `taxflow trust put`.
package trust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/internal/bankid"
)

// Bucket is the logical name of the trust anchors' bucket (deployed as <prefix>-trust).
const Bucket = "trust"

// The anchors' keys in Bucket.
const (
	RootsKey    = "esign/roots.pem" // PEM certificates of the accredited authorities
	CRLKey      = "esign/crl.der"   // a revocation list (DER); optional
	BankKeysKey = "bank/keys.json"  // the partner banks' public key set (bankid.ParseKeySet)
)

// Anchor is one kind of trust anchor an operator can put.
type Anchor struct {
	Name  string // what the operator types: roots, crl, banks
	Key   string
	About string
	check func([]byte) error
}

// Anchors are the kinds, by name.
var Anchors = map[string]Anchor{
	"roots": {Name: "roots", Key: RootsKey, About: "e-signature root certificates (PEM, one or more CERTIFICATE blocks)", check: checkRoots},
	"crl":   {Name: "crl", Key: CRLKey, About: "the authorities' certificate revocation list (DER)", check: checkCRL},
	"banks": {Name: "banks", Key: BankKeysKey, About: "partner banks' public key set (JSON, no private key)", check: checkBanks},
}

// Names lists the anchors' names, sorted.
func Names() []string {
	out := make([]string, 0, len(Anchors))
	for n := range Anchors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// MaxSize bounds an anchor file: the readers read at most this much.
const MaxSize = 16 << 20

// Check says whether body is a valid anchor of the named kind; nothing is written
// otherwise, so a typo cannot leave the identity checks without roots.
func Check(name string, body []byte) (Anchor, error) {
	a, ok := Anchors[name]
	if !ok {
		return Anchor{}, fmt.Errorf("unknown trust anchor %q: one of %s", name, strings.Join(Names(), ", "))
	}
	if len(body) == 0 || len(body) > MaxSize {
		return Anchor{}, fmt.Errorf("%s: %d bytes, want 1 byte to %d MB", name, len(body), MaxSize>>20)
	}
	if err := a.check(body); err != nil {
		return Anchor{}, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// Putter is the part of the S3 client Put uses.
type Putter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Put checks and stores an anchor in bucket (the deployed Bucket). It is the operator's
// path (`taxflow trust put`), and the tests' and the local stack's: functions hold no
// grant to do it.
func Put(ctx context.Context, c Putter, bucket, name string, body []byte) (Anchor, error) {
	a, err := Check(name, body)
	if err != nil {
		return Anchor{}, err
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(a.Key), Body: bytes.NewReader(body)}); err != nil {
		return Anchor{}, fmt.Errorf("put s3://%s/%s: %w", bucket, a.Key, err)
	}
	return a, nil
}

func checkRoots(b []byte) error {
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("a %s block: only CERTIFICATE blocks belong in the roots", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		if !c.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate", n+1, c.Subject.CommonName)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate")
	}
	return nil
}

func checkCRL(b []byte) error {
	if _, err := x509.ParseRevocationList(b); err != nil {
		return fmt.Errorf("not a DER revocation list: %w", err)
	}
	return nil
}

func checkBanks(b []byte) error {
	_, err := bankid.ParseKeySet(b)
	return err
}
