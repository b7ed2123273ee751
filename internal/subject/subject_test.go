package subject

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const inn = "500100732259"

func secret(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func mustParse(t *testing.T, current, previous string) Keyring {
	t.Helper()
	k, err := Parse(current, previous)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestValueCarriesVersionAndHidesINN(t *testing.T) {
	k := mustParse(t, "v2:"+secret(1), "")
	v := k.Value(inn)
	if !regexp.MustCompile(`^s2\.[0-9a-f]{32}$`).MatchString(v) {
		t.Fatalf("value %q: want s2.<32 hex>", v)
	}
	if strings.Contains(v, inn) || v != k.Value(inn) {
		t.Fatalf("value %q: must be stable and must not hold the INN", v)
	}
	if k.Value("500100732260") == v {
		t.Fatal("two INNs, one subject")
	}
	if got := k.Query(inn); got != "TaxflowSubject = '"+v+"'" {
		t.Fatalf("query %q", got)
	}
}

// A rotation: the new version makes new values, the old one still finds the old ones.
func TestRotationKeepsOldSubjectsFindable(t *testing.T) {
	before := mustParse(t, "v1:"+secret(1), "")
	after := mustParse(t, "v2:"+secret(2), "v1:"+secret(1))
	old := before.Value(inn)
	if after.Value(inn) == old || !strings.HasPrefix(after.Value(inn), "s2.") {
		t.Fatalf("after the rotation new cases get %q, before %q", after.Value(inn), old)
	}
	if vs := after.Values(inn); len(vs) != 2 || vs[0] != after.Value(inn) || vs[1] != old {
		t.Fatalf("values %v: want current then %s", vs, old)
	}
	want := fmt.Sprintf("TaxflowSubject IN ('%s', '%s')", after.Value(inn), old)
	if got := after.Query(inn); got != want {
		t.Fatalf("query %q, want %q", got, want)
	}
}

// Version 0 is the key taxflow derived from the payload key before subjects had a key
// of their own: as a previous key it finds the unprefixed values made then.
func TestLegacyVersionFindsPreVersioningValues(t *testing.T) {
	payloadKey := secret(9)
	legacy := sha256.Sum256([]byte("taxflow-subject:" + payloadKey))
	m := hmac.New(sha256.New, legacy[:])
	m.Write([]byte(inn))
	made := hex.EncodeToString(m.Sum(nil))[:32]

	k := mustParse(t, "v1:"+secret(1), "v0:"+base64.StdEncoding.EncodeToString(legacy[:]))
	if vs := k.Values(inn); vs[1] != made {
		t.Fatalf("legacy value %q, want %q", vs[1], made)
	}
	if _, err := Parse("v0:"+base64.StdEncoding.EncodeToString(legacy[:]), ""); err == nil || !strings.Contains(err.Error(), VarKey) {
		t.Fatalf("v0 as the current key: %v", err)
	}
}

func TestParseRefusesBadKeysWithoutRepeatingThem(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	for _, c := range []struct{ current, previous, names string }{
		{short, "", VarKey},         // no version
		{"v1:" + short, "", VarKey}, // too short
		{"v1:not*base64*at*all*not*base64*at*all*xx", "", VarKey}, // not base64
		{"vx:" + secret(1), "", VarKey},                           // bad version
		{"v01:" + secret(1), "", VarKey},                          // ambiguous version
		{"v1:" + secret(1), "v1:" + secret(2), VarPrevious},       // a version twice
		{"v2:" + secret(1), "v1:" + short, VarPrevious},           // a short previous key
		{"", "v1:" + secret(1), VarKey},                           // previous without current
	} {
		_, err := Parse(c.current, c.previous)
		if err == nil || !strings.Contains(err.Error(), c.names) {
			t.Errorf("Parse(%q, %q): %v, want an error naming %s", c.current, c.previous, err, c.names)
			continue
		}
		for _, v := range []string{c.current, c.previous} {
			if _, s, ok := strings.Cut(v, ":"); ok && len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		}
	}
}

func TestUnsetIsZeroAndPrintsNoSecret(t *testing.T) {
	if k := mustParse(t, "", ""); !k.IsZero() {
		t.Fatal("an unset key must give the zero keyring")
	}
	k := mustParse(t, "v3:"+secret(7), "")
	if k.IsZero() || k.Current().Version != 3 {
		t.Fatalf("current %v", k.Current())
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k), fmt.Sprint(k.Current())} {
		if strings.Contains(s, secret(7)) || strings.Contains(s, "7 7 7") || strings.Contains(s, "[7") {
			t.Errorf("printed keyring shows the secret: %s", s)
		}
	}
}

func TestZeroKeyringRefusesToMakeValues(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), VarKey) {
			t.Fatalf("recovered %v, want a panic naming %s", r, VarKey)
		}
	}()
	Keyring{}.Value(inn)
}

// The anchor survives a rotation (the old version stays among the previous keys), in
// either order of the two-phase deploy; v0 is never the anchor; derived keys differ by
// label and never equal the secret.
func TestAnchorSurvivesRotationAndDeriveSeparatesLabels(t *testing.T) {
	one := mustParse(t, "v1:"+secret(1), "")
	rotated := mustParse(t, "v2:"+secret(2), "v1:"+secret(1))
	staged := mustParse(t, "v1:"+secret(1), "v2:"+secret(2))
	legacy := mustParse(t, "v2:"+secret(2), "v1:"+secret(1)+",v0:"+secret(9))
	want := one.Anchor().Derive("label")
	for name, k := range map[string]Keyring{"rotated": rotated, "staged": staged, "with v0": legacy} {
		if got := k.Anchor().Derive("label"); !bytes.Equal(got, want) || k.Anchor().Version != 1 {
			t.Errorf("%s: anchor v%d, derived key differs: %v", name, k.Anchor().Version, !bytes.Equal(got, want))
		}
	}
	if bytes.Equal(one.Anchor().Derive("a"), one.Anchor().Derive("b")) || bytes.Equal(one.Anchor().Derive("a"), bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("derived keys must differ by label and from the secret")
	}
	if v2only := mustParse(t, "v2:"+secret(2), ""); bytes.Equal(v2only.Anchor().Derive("label"), want) {
		t.Fatal("another key must derive another key")
	}
}
