package seal

import (
	"bytes"
	"strings"
	"testing"
)

// A sealed value opens under its key and after a rotation (as an old key), never under
// another key, never tampered, and never shows the secret.
func TestSealOpensOnlyWithItsKey(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s1, _ := New(k1)
	v, err := s1.Seal([]byte("whsec_secret"))
	if err != nil || strings.Contains(v, "secret") {
		t.Fatalf("sealed %q, %v", v, err)
	}
	if got, err := s1.Open(v); err != nil || string(got) != "whsec_secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	rotated, _ := New(k2, k1)
	if got, err := rotated.Open(v); err != nil || string(got) != "whsec_secret" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	other, _ := New(k2)
	if _, err := other.Open(v); err == nil {
		t.Fatal("opened under another key")
	}
	tampered := v[:len(v)-2] + "AA"
	if _, err := s1.Open(tampered); err == nil {
		t.Fatal("opened a tampered value")
	}
	for _, bad := range []string{"", "whsec_secret", "sealed:v1:", "sealed:v1:x:@@"} {
		if _, err := s1.Open(bad); err == nil {
			t.Fatalf("opened %q", bad)
		}
	}
}
