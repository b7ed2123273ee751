// Package bankidtest is a demo partner bank: a key pair made at set-up, its public key set
// (what taxflow stores under trust/banks.json), and assertions it signs. Tests and the
// local stack use it the way they use esigntest's certification authority.
package bankidtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/taxflow/taxflow/internal/bankid"
)

// DemoBankID is the demo bank's id (a BIK that no real bank has: 04 region, 999).
const DemoBankID = "044525999"

// Bank is a demo partner bank holding its private key.
type Bank struct {
	ID  string
	Alg string
	Kid string
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

// NewBank makes a bank with a fresh key for alg (bankid.ES256 or bankid.EdDSA).
func NewBank(id, alg string) (*Bank, error) {
	b := &Bank{ID: id, Alg: alg, Kid: id + "-" + alg + "-1"}
	var err error
	switch alg {
	case bankid.ES256:
		b.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case bankid.EdDSA:
		_, b.ed, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("bankidtest: algorithm %q", alg)
	}
	return b, err
}

var b64 = base64.RawURLEncoding

// JWK is the bank's public key as a JSON Web Key.
func (b *Bank) JWK() map[string]string {
	if b.Alg == bankid.EdDSA {
		return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": b.Kid, "x": b64.EncodeToString(b.ed.Public().(ed25519.PublicKey))}
	}
	raw, _ := b.ec.PublicKey.Bytes() // 0x04 || x || y
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": b.Kid, "x": b64.EncodeToString(raw[1:33]), "y": b64.EncodeToString(raw[33:])}
}

// KeySet is the stored key set naming these banks.
func KeySet(banks ...*Bank) []byte {
	type entry struct {
		ID   string              `json:"id"`
		Name string              `json:"name"`
		Keys []map[string]string `json:"keys"`
	}
	var f struct {
		Banks []entry `json:"banks"`
	}
	for _, b := range banks {
		f.Banks = append(f.Banks, entry{ID: b.ID, Name: "Demo partner bank " + b.ID, Keys: []map[string]string{b.JWK()}})
	}
	out, _ := json.Marshal(f)
	return out
}

// Claims are what the bank asserts; Assert fills the usual ones.
type Claims map[string]any

// Assert signs a fresh assertion that the person with this INN was identified, for the
// nonce, issued at iat and valid for five minutes; edit can change any claim first.
func (b *Bank) Assert(inn, nonce string, iat time.Time, edit ...func(Claims)) (string, error) {
	c := Claims{"iss": b.ID, "sub": inn, "aud": bankid.Audience, "iat": iat.Unix(), "exp": iat.Add(5 * time.Minute).Unix(),
		"jti": uuid.NewString(), "nonce": nonce}
	for _, e := range edit {
		e(c)
	}
	return b.Sign(map[string]any{"alg": b.Alg, "kid": b.Kid, "typ": "JWT"}, c)
}

// Sign signs any header and claims (to make malformed or unusual tokens too).
func (b *Bank) Sign(header map[string]any, claims Claims) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	var sig []byte
	switch b.Alg {
	case bankid.EdDSA:
		sig = ed25519.Sign(b.ed, []byte(input))
	default:
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, b.ec, d[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64.EncodeToString(sig), nil
}
