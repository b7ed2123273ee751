// Package bankid checks a partner bank's identity assertion (domain.md §1, method
// "bank"): the bank identified its client and signed a compact JWS (RFC 7515) saying so,
// for taxflow, for this taxpayer and for one challenge nonce that taxflow issued. A flag in
// the registry proves nothing; a signature by a key taxflow holds for that bank does.
//
// Claims: iss (the bank's id, its BIK), sub (the taxpayer's INN), aud ("taxflow"), iat and
// exp (at most MaxLifetime apart), optional nbf, jti (the bank's id of the assertion) and
// nonce (a challenge from POST /v1/identity-verifications/challenges). Algorithms: ES256
// (ECDSA P-256 with SHA-256) and EdDSA (Ed25519); the algorithm must match the key the
// issuer registered, so a token cannot choose a weaker check ("none", HS256).
//
// The INN is personal data: no reason, error or log line of this package names the
// subject, only whether it is the expected one.
package bankid

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"
)

// Audience is the aud every assertion for taxflow carries.
const Audience = "taxflow"

// MaxTokenBytes bounds an assertion: a signed set of a few claims is well under 1 KB.
const MaxTokenBytes = 8 << 10

// MaxLifetime is the longest exp - iat an assertion may state: it is presented at once.
const MaxLifetime = 10 * time.Minute

// Leeway allows for the bank's clock running ahead of ours when judging iat and nbf.
const Leeway = 30 * time.Second

// Algorithms.
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Refusal is an assertion refused; Reason is for the operator (it never names the INN).
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refuse(format string, args ...any) error { return &Refusal{Reason: fmt.Sprintf(format, args...)} }

// IsRefusal tells whether err refuses the assertion.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// Header is the JWS protected header.
type Header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid,omitempty"`
	Typ  string   `json:"typ,omitempty"`
	Crit []string `json:"crit,omitempty"`
}

// Claims are the assertion's claims.
type Claims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"` // a string or an array of strings (RFC 7519 4.1.3)
	IssuedAt  int64           `json:"iat"`
	Expires   int64           `json:"exp"`
	NotBefore int64           `json:"nbf,omitempty"`
	ID        string          `json:"jti"`
	Nonce     string          `json:"nonce"`
}

// audiences reads aud in either of its forms.
func (c Claims) audiences() []string {
	var one string
	if json.Unmarshal(c.Audience, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Audience, &many)
	return many
}

// Token is a parsed, not yet verified, assertion.
type Token struct {
	Header       Header
	Claims       Claims
	signingInput []byte
	signature    []byte
}

var b64 = base64.RawURLEncoding

// Parse reads a compact JWS. It checks the form only: nothing in it is trusted until
// Verify has checked the signature.
func Parse(s string) (*Token, error) {
	if len(s) > MaxTokenBytes {
		return nil, refuse("the assertion is larger than %d KB: not a bank's assertion", MaxTokenBytes>>10)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, refuse("the assertion is not a compact JWS (header.payload.signature)")
	}
	var t Token
	hdr, err := b64.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hdr, &t.Header) != nil {
		return nil, refuse("the assertion's header is not base64url JSON")
	}
	switch {
	case t.Header.Alg != ES256 && t.Header.Alg != EdDSA:
		return nil, refuse("the assertion's algorithm must be ES256 or EdDSA")
	case len(t.Header.Crit) > 0:
		return nil, refuse("the assertion names critical header extensions taxflow does not implement")
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, refuse("the assertion's payload is not base64url")
	}
	if err := json.Unmarshal(payload, &t.Claims); err != nil {
		return nil, refuse("the assertion's claims are not a JSON object of the expected types")
	}
	if t.signature, err = b64.DecodeString(parts[2]); err != nil {
		return nil, refuse("the assertion's signature is not base64url")
	}
	switch {
	case t.Claims.Nonce == "" || len(t.Claims.Nonce) > 128:
		return nil, refuse("the assertion carries no challenge nonce")
	case t.Claims.ID == "" || len(t.Claims.ID) > 128:
		return nil, refuse("the assertion carries no id (jti)")
	}
	t.signingInput = []byte(parts[0] + "." + parts[1])
	return &t, nil
}

// Key is one public key of a partner bank.
type Key struct {
	ID  string
	Alg string // ES256 or EdDSA, from the key's type
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
}

// Bank is a partner bank and its current keys (more than one while it rotates them).
type Bank struct {
	ID   string
	Name string
	Keys []Key
}

// KeySet is the partner banks taxflow accepts assertions from, by id.
type KeySet map[string]Bank

// jwk is a public JSON Web Key (RFC 7517, 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
	D   string `json:"d,omitempty"`
}

// keySetFile is the stored form: {"banks":[{"id":"044525999","name":"…","keys":[JWK…]}]}.
type keySetFile struct {
	Banks []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Keys []jwk  `json:"keys"`
	} `json:"banks"`
}

var bankIDRE = regexp.MustCompile(`^[0-9A-Za-z._-]{1,40}$`)

// ParseKeySet reads the partner banks' key set. A private key in it is an error: the file
// is trust material many read, and a bank's private key must never leave the bank.
func ParseKeySet(b []byte) (KeySet, error) {
	var f keySetFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("partner bank key set: %w", err)
	}
	ks := KeySet{}
	for i, bk := range f.Banks {
		if !bankIDRE.MatchString(bk.ID) {
			return nil, fmt.Errorf("partner bank key set: bank %d: id must be 1-40 letters, digits, . _ -", i)
		}
		if _, dup := ks[bk.ID]; dup {
			return nil, fmt.Errorf("partner bank key set: bank %s listed twice", bk.ID)
		}
		bank := Bank{ID: bk.ID, Name: bk.Name}
		for j, k := range bk.Keys {
			key, err := k.public()
			if err != nil {
				return nil, fmt.Errorf("partner bank key set: bank %s, key %d: %w", bk.ID, j, err)
			}
			bank.Keys = append(bank.Keys, key)
		}
		if len(bank.Keys) == 0 {
			return nil, fmt.Errorf("partner bank key set: bank %s has no key", bk.ID)
		}
		ks[bk.ID] = bank
	}
	return ks, nil
}

func (k jwk) public() (Key, error) {
	if k.D != "" {
		return Key{}, errors.New("holds a private key: publish the public key only")
	}
	x, err := b64.DecodeString(k.X)
	if err != nil {
		return Key{}, errors.New("x is not base64url")
	}
	switch {
	case k.Kty == "EC" && k.Crv == "P-256":
		y, err := b64.DecodeString(k.Y)
		if err != nil || len(x) != 32 || len(y) != 32 {
			return Key{}, errors.New("x and y must be 32 bytes of base64url")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return Key{}, fmt.Errorf("not a P-256 point: %w", err)
		}
		return Key{ID: k.Kid, Alg: ES256, ec: pub}, nil
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		if len(x) != ed25519.PublicKeySize {
			return Key{}, errors.New("x must be 32 bytes of base64url")
		}
		return Key{ID: k.Kid, Alg: EdDSA, ed: ed25519.PublicKey(x)}, nil
	}
	return Key{}, fmt.Errorf("kty %q crv %q: only EC P-256 (ES256) and OKP Ed25519 (EdDSA) are accepted", k.Kty, k.Crv)
}

func (k Key) verify(msg, sig []byte) bool {
	switch k.Alg {
	case ES256:
		if len(sig) != 64 { // JWS ES256 is r||s, 32 bytes each (RFC 7518 3.4), not ASN.1
			return false
		}
		h := sha256.Sum256(msg)
		return ecdsa.Verify(k.ec, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	case EdDSA:
		return ed25519.Verify(k.ed, msg, sig)
	}
	return false
}

// Verify checks the assertion for the taxpayer with this INN at the time at: a known
// issuer's key of the header's algorithm signed it, it is for taxflow, within its short
// lifetime, and its subject is this taxpayer. The nonce is the caller's to check and spend.
func Verify(t *Token, ks KeySet, inn string, at time.Time) (issuer string, err error) {
	bank, ok := ks[t.Claims.Issuer]
	if !ok {
		if bankIDRE.MatchString(t.Claims.Issuer) {
			return "", refuse("the assertion's issuer %q is not a partner bank", t.Claims.Issuer)
		}
		return "", refuse("the assertion's issuer is not a partner bank")
	}
	signed := false
	for _, k := range bank.Keys {
		if k.Alg == t.Header.Alg && (t.Header.Kid == "" || t.Header.Kid == k.ID) && k.verify(t.signingInput, t.signature) {
			signed = true
			break
		}
	}
	if !signed {
		return "", refuse("the assertion's signature does not verify with a key of partner bank %s (forged, or signed with a key taxflow does not hold)", bank.ID)
	}
	// From here the claims are the bank's.
	aud := false
	for _, a := range t.Claims.audiences() {
		aud = aud || a == Audience
	}
	c := t.Claims
	iat, exp := time.Unix(c.IssuedAt, 0), time.Unix(c.Expires, 0)
	switch {
	case !aud:
		return "", refuse("the assertion of partner bank %s is not addressed to taxflow (aud)", bank.ID)
	case c.IssuedAt == 0 || c.Expires == 0:
		return "", refuse("the assertion of partner bank %s states no issue or expiry time", bank.ID)
	case exp.Sub(iat) > MaxLifetime || !exp.After(iat):
		return "", refuse("the assertion of partner bank %s is valid for longer than %s (or not at all)", bank.ID, MaxLifetime)
	case at.Add(Leeway).Before(iat) || c.NotBefore != 0 && at.Add(Leeway).Before(time.Unix(c.NotBefore, 0)):
		return "", refuse("the assertion of partner bank %s is not valid yet (issued %s)", bank.ID, iat.UTC().Format(time.RFC3339))
	case !at.Before(exp):
		return "", refuse("the assertion of partner bank %s expired at %s", bank.ID, exp.UTC().Format(time.RFC3339))
	case c.Subject != inn:
		return "", refuse("the assertion of partner bank %s identifies another taxpayer", bank.ID)
	}
	return bank.ID, nil
}
