package codec

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func key(t *testing.T) []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

type secret struct {
	INN string `json:"inn"`
}

func TestRoundTripHidesData(t *testing.T) {
	c, _ := New(key(t))
	dc := DataConverter(c)
	p, err := dc.ToPayload(secret{INN: "500100732259"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte("500100732259")) || bytes.Contains(p.Data, []byte("json")) {
		t.Fatal("payload not encrypted")
	}
	var got secret
	if err := dc.FromPayload(p, &got); err != nil || got.INN != "500100732259" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestFailsClosed(t *testing.T) {
	k := key(t)
	c, _ := New(k)
	p, _ := DataConverter(c).ToPayload(secret{INN: "1"})

	other, _ := New(key(t))
	var got secret
	if err := DataConverter(other).FromPayload(p, &got); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("wrong key: %v", err)
	}
	p.Data[len(p.Data)-1] ^= 1
	if err := DataConverter(c).FromPayload(p, &got); err == nil || !strings.Contains(err.Error(), "tampered") {
		t.Fatalf("tampered: %v", err)
	}
}

func TestRotationDecryptsWithOldKey(t *testing.T) {
	old, cur := key(t), key(t)
	before, _ := New(old)
	p, _ := DataConverter(before).ToPayload(secret{INN: "7707083893"})
	after, _ := New(cur, old)
	var got secret
	if err := DataConverter(after).FromPayload(p, &got); err != nil || got.INN != "7707083893" {
		t.Fatalf("%+v %v", got, err)
	}
	plain, _ := converter.GetDefaultDataConverter().ToPayload("clear")
	var s string
	if err := DataConverter(after).FromPayload(plain, &s); err != nil || s != "clear" {
		t.Fatal("an unencrypted payload must pass through")
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey("c2hvcnQ="); err == nil {
		t.Fatal("short key accepted")
	}
}

// A key's id is what it has always been (payloads in histories name it): the first 6 bytes
// of SHA-256 of "taxflow-payload-key:" and the key, in hex.
func TestKeyIDIsStable(t *testing.T) {
	k := bytes.Repeat([]byte{9}, 32)
	c, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte("taxflow-payload-key:"), k...))
	if got, want := string(out[0].Metadata["encryption-key-id"]), hex.EncodeToString(sum[:6]); got != want {
		t.Fatalf("key id %s, want %s", got, want)
	}
}
