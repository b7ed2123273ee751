package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/taxflow/taxflow/internal/codec"
	"github.com/taxflow/taxflow/internal/config"
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

// Sealer keeps signing secrets encrypted at rest. The deployment's seals them with the
// payload codec (internal/codec: AES-256-GCM under TAXFLOW_PAYLOAD_KEY, older keys
// still open): the same key and rotation as the personal data in Temporal's payloads,
// so no new secret to manage. A secret must be opened to sign (HMAC needs the key), so a
// hash would not do.
type Sealer interface {
	Seal(secret string) (string, error)
	Open(sealed string) (string, error)
}

// CodecSealer seals with a payload codec.
type CodecSealer struct{ Codec *codec.Codec }

func (c CodecSealer) Seal(secret string) (string, error) {
	out, err := c.Codec.Encode([]*commonpb.Payload{{Data: []byte(secret)}})
	if err != nil {
		return "", fmt.Errorf("seal webhook secret: %w", err)
	}
	b, err := proto.Marshal(out[0])
	if err != nil {
		return "", fmt.Errorf("seal webhook secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func (c CodecSealer) Open(sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("open webhook secret: not base64")
	}
	var p commonpb.Payload
	if err := proto.Unmarshal(b, &p); err != nil {
		return "", fmt.Errorf("open webhook secret: not a sealed payload")
	}
	out, err := c.Codec.Decode([]*commonpb.Payload{&p})
	if err != nil {
		return "", fmt.Errorf("open webhook secret: %w", err)
	}
	if out[0] == &p { // the codec passes what it did not seal through
		return "", fmt.Errorf("open webhook secret: not sealed")
	}
	return string(out[0].Data), nil
}

// SealerFrom is the deployment's sealer: the payload codec of TAXFLOW_PAYLOAD_KEY (and
// TAXFLOW_PAYLOAD_KEYS_OLD). Without a usable key it refuses every seal and open, saying
// why, rather than keep a secret in clear text.
func SealerFrom(c config.Temporal) Sealer {
	if c.PayloadKey == "" {
		return brokenSealer{errors.New("TAXFLOW_PAYLOAD_KEY is not set: webhook secrets are sealed with it")}
	}
	key, err := codec.ParseKey(c.PayloadKey)
	if err != nil {
		return brokenSealer{fmt.Errorf("TAXFLOW_PAYLOAD_KEY %w", err)}
	}
	var old [][]byte
	for _, o := range c.OldPayloadKeys {
		k, err := codec.ParseKey(o)
		if err != nil {
			return brokenSealer{fmt.Errorf("TAXFLOW_PAYLOAD_KEYS_OLD %w", err)}
		}
		old = append(old, k)
	}
	cd, err := codec.New(key, old...)
	if err != nil {
		return brokenSealer{err}
	}
	return CodecSealer{Codec: cd}
}

type brokenSealer struct{ err error }

func (b brokenSealer) Seal(string) (string, error) { return "", b.err }
func (b brokenSealer) Open(string) (string, error) { return "", b.err }
