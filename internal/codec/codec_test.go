package codec

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"

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
