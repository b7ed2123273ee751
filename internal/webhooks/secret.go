package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/seal"
)

// SecretPrefix starts every signing secret (the Standard Webhooks format).
const SecretPrefix = "whsec_"

// NewSecret is a signing secret: "whsec_" and the base64 of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// Sealer keeps signing secrets encrypted at rest: sealed (internal/seal: AES-256-GCM
// under TAXFLOW_PAYLOAD_KEY, older keys still open), the same key and rotation as the
// personal data in Temporal's payloads, so no new secret to manage. A secret must be
// opened to sign (HMAC needs the key), so a hash would not do.
type Sealer interface {
	Seal(secret string) (string, error)
	Open(sealed string) (string, error)
}

// KeySealer seals with the payload key.
type KeySealer struct{ S *seal.Sealer }

// Seal encrypts a secret.
func (k KeySealer) Seal(secret string) (string, error) {
	out, err := k.S.Seal([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("seal webhook secret: %w", err)
	}
	return out, nil
}

// Open decrypts a sealed secret.
func (k KeySealer) Open(sealed string) (string, error) {
	b, err := k.S.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	return string(b), nil
}

// SealerFrom is the deployment's sealer: TAXFLOW_PAYLOAD_KEY (and TAXFLOW_PAYLOAD_KEYS_OLD).
// Without a usable key it refuses every seal and open, saying why, rather than keep a
// secret in clear text.
func SealerFrom(c config.Temporal) Sealer {
	if c.PayloadKey == "" {
		return brokenSealer{errors.New("TAXFLOW_PAYLOAD_KEY is not set: webhook secrets are sealed with it")}
	}
	key, err := seal.ParseKey(c.PayloadKey)
	if err != nil {
		return brokenSealer{fmt.Errorf("TAXFLOW_PAYLOAD_KEY %w", err)}
	}
	var old [][]byte
	for _, o := range c.OldPayloadKeys {
		k, err := seal.ParseKey(o)
		if err != nil {
			return brokenSealer{fmt.Errorf("TAXFLOW_PAYLOAD_KEYS_OLD %w", err)}
		}
		old = append(old, k)
	}
	s, err := seal.New(key, old...)
	if err != nil {
		return brokenSealer{err}
	}
	return KeySealer{S: s}
}

type brokenSealer struct{ err error }

func (b brokenSealer) Seal(string) (string, error) { return "", b.err }
func (b brokenSealer) Open(string) (string, error) { return "", b.err }
