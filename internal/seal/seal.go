// Package seal keeps small secrets (a webhook endpoint's signing secret) encrypted at rest
// with AES-256-GCM under the deployment's payload key (TAXFLOW_PAYLOAD_KEY), older keys
// still opening what they sealed (TAXFLOW_PAYLOAD_KEYS_OLD): the same keys and rotation
// as the Temporal payloads, without Temporal's payload types, so a function can open a
// secret without importing Temporal (internal/layers). It fails closed: what it cannot
// open is an error, never passed on.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// prefix marks a sealed value and its format.
const prefix = "sealed:v1:"

// Sealer seals with one active key; older keys still open.
type Sealer struct {
	active string
	aeads  map[string]cipher.AEAD
}

// ParseKey reads a base64-encoded 32-byte key.
func ParseKey(b64 string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != 32 {
		return nil, errors.New("must be 32 random bytes, base64-encoded (openssl rand -base64 32)")
	}
	return k, nil
}

// New builds a sealer sealing with key; old keys still open (rotation).
func New(key []byte, old ...[]byte) (*Sealer, error) {
	active, aeads, err := Keys("taxflow-seal-key:", key, old...)
	if err != nil {
		return nil, err
	}
	return &Sealer{active: active, aeads: aeads}, nil
}

// Keys builds an AES-256-GCM AEAD per key, each named by an id that reveals nothing of it
// (the first 6 bytes of SHA-256 of label and key, in hex); active is key's id. The payload
// codec (internal/codec) builds its keys here too, with a label of its own.
func Keys(label string, key []byte, old ...[]byte) (active string, aeads map[string]cipher.AEAD, err error) {
	aeads = map[string]cipher.AEAD{}
	for i, k := range append([][]byte{key}, old...) {
		block, err := aes.NewCipher(k)
		if err != nil {
			return "", nil, fmt.Errorf("key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return "", nil, fmt.Errorf("key: %w", err)
		}
		sum := sha256.Sum256(append([]byte(label), k...))
		id := hex.EncodeToString(sum[:6])
		aeads[id] = aead
		if i == 0 {
			active = id
		}
	}
	return active, aeads, nil
}

// Seal encrypts plain; the result names its key and is bound to it.
func (s *Sealer) Seal(plain []byte) (string, error) {
	aead := s.aeads[s.active]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return prefix + s.active + ":" + base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(s.active))), nil
}

// Open decrypts what Seal made under any configured key.
func (s *Sealer) Open(sealed string) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	id, data, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return nil, errors.New("open: not a sealed value")
	}
	aead, ok := s.aeads[id]
	if !ok {
		return nil, fmt.Errorf("open: sealed with key %s, which is not configured", id)
	}
	b, err := base64.RawStdEncoding.DecodeString(data)
	if err != nil || len(b) < aead.NonceSize() {
		return nil, errors.New("open: a sealed value is truncated or not base64")
	}
	plain, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, errors.New("open: does not decrypt: wrong key or tampered data")
	}
	return plain, nil
}
