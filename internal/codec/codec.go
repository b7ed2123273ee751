// Package codec encrypts every Temporal payload (workflow inputs, results, signals,
// updates, queries, and failure messages) with AES-256-GCM, so personal data never
// rests in Temporal's history in clear text. It fails closed: a payload it cannot
// decrypt is an error, never passed on.
package codec

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/taxflow/taxflow/internal/seal"
)

const (
	metaEncoding = "encoding"
	metaKeyID    = "encryption-key-id"
	encoding     = "binary/encrypted"
)

// Codec is an AES-GCM payload codec with one active key; older keys may decrypt.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// ParseKey reads a base64-encoded 32-byte key.
func ParseKey(b64 string) ([]byte, error) { return seal.ParseKey(b64) }

// New builds a codec encrypting with key; old keys still decrypt (rotation). A key's id
// is the same as it ever was ("taxflow-payload-key:"), so payloads written before decrypt.
func New(key []byte, old ...[]byte) (*Codec, error) {
	active, aeads, err := seal.Keys("taxflow-payload-key:", key, old...)
	if err != nil {
		return nil, fmt.Errorf("payload %w", err)
	}
	return &Codec{active: active, aeads: aeads}, nil
}

// Encode encrypts each payload whole (data and metadata).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	aead := c.aeads[c.active]
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{metaEncoding: []byte(encoding), metaKeyID: []byte(c.active)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(c.active)),
		}
	}
	return out, nil
}

// Decode decrypts payloads this codec encrypted; others pass through unchanged.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[metaEncoding]) != encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[metaKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("payload encrypted with key %s, which is not configured", id)
		}
		ns := aead.NonceSize()
		if len(p.Data) < ns {
			return nil, errors.New("encrypted payload is truncated")
		}
		plain, err := aead.Open(nil, p.Data[:ns], p.Data[ns:], []byte(id))
		if err != nil {
			return nil, errors.New("encrypted payload does not decrypt: wrong key or tampered data")
		}
		var dec commonpb.Payload
		if err := dec.Unmarshal(plain); err != nil {
			return nil, err
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter wraps the default converter with the codec.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into encrypted attributes.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
}
