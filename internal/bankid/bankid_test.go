package bankid_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
)

const inn = "500100732259"

func keys(t *testing.T, banks ...*bankidtest.Bank) bankid.KeySet {
	t.Helper()
	ks, err := bankid.ParseKeySet(bankidtest.KeySet(banks...))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func newBank(t *testing.T, id, alg string) *bankidtest.Bank {
	t.Helper()
	b, err := bankidtest.NewBank(id, alg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	now := time.Now()
	es := newBank(t, bankidtest.DemoBankID, bankid.ES256)
	ed := newBank(t, "044525998", bankid.EdDSA)
	impostor := newBank(t, bankidtest.DemoBankID, bankid.ES256) // same id, a key taxflow does not hold
	unknown := newBank(t, "044525000", bankid.ES256)
	ks := keys(t, es, ed)
	with := func(k string, v any) func(bankidtest.Claims) { return func(c bankidtest.Claims) { c[k] = v } }
	cases := []struct {
		name   string
		bank   *bankidtest.Bank
		edit   []func(bankidtest.Claims)
		at     time.Time
		want   string // "" verifies; else a part of the refusal
		issuer string
	}{
		{name: "valid ES256", bank: es, issuer: bankidtest.DemoBankID},
		{name: "valid EdDSA", bank: ed, issuer: "044525998"},
		{name: "audience in an array", bank: es, edit: []func(bankidtest.Claims){with("aud", []string{"other", "taxflow"})}, issuer: bankidtest.DemoBankID},
		{name: "forged signature", bank: impostor, want: "signature does not verify"},
		{name: "expired", bank: es, at: now.Add(6 * time.Minute), want: "expired"},
		{name: "not yet valid", bank: es, at: now.Add(-2 * time.Minute), want: "not valid yet"},
		{name: "not before in the future", bank: es, edit: []func(bankidtest.Claims){with("nbf", now.Add(3*time.Minute).Unix())}, want: "not valid yet"},
		{name: "wrong audience", bank: es, edit: []func(bankidtest.Claims){with("aud", "another-service")}, want: "not addressed to taxflow"},
		{name: "no audience", bank: es, edit: []func(bankidtest.Claims){func(c bankidtest.Claims) { delete(c, "aud") }}, want: "not addressed to taxflow"},
		{name: "unknown issuer", bank: unknown, want: "not a partner bank"},
		{name: "issuer claim of another bank", bank: es, edit: []func(bankidtest.Claims){with("iss", "044525998")}, want: "signature does not verify"},
		{name: "other taxpayer", bank: es, edit: []func(bankidtest.Claims){with("sub", "770708389301")}, want: "another taxpayer"},
		{name: "lifetime over ten minutes", bank: es, edit: []func(bankidtest.Claims){with("exp", now.Add(time.Hour).Unix())}, want: "longer than"},
		{name: "no expiry", bank: es, edit: []func(bankidtest.Claims){func(c bankidtest.Claims) { delete(c, "exp") }}, want: "no issue or expiry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := c.bank.Assert(inn, "nonce-1", now, c.edit...)
			if err != nil {
				t.Fatal(err)
			}
			at := c.at
			if at.IsZero() {
				at = now.Add(time.Second)
			}
			parsed, err := bankid.Parse(tok)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			issuer, err := bankid.Verify(parsed, ks, inn, at)
			switch {
			case c.want == "" && (err != nil || issuer != c.issuer):
				t.Fatalf("want verified by %s, got %q %v", c.issuer, issuer, err)
			case c.want != "" && (err == nil || !bankid.IsRefusal(err) || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("want a refusal with %q, got %v", c.want, err)
			}
			if err != nil && strings.Contains(err.Error(), inn) {
				t.Fatalf("the refusal names the INN: %v", err)
			}
		})
	}
}

func TestAlgorithmMustMatchTheIssuersKey(t *testing.T) {
	now := time.Now()
	es := newBank(t, bankidtest.DemoBankID, bankid.ES256)
	ks := keys(t, es)
	// An EdDSA key under the ES256 bank's id, announced as EdDSA: the key taxflow holds
	// for the bank is ES256, so the token cannot pick the check.
	ed := newBank(t, bankidtest.DemoBankID, bankid.EdDSA)
	tok, _ := ed.Assert(inn, "n", now)
	parsed, err := bankid.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bankid.Verify(parsed, ks, inn, now); !bankid.IsRefusal(err) {
		t.Fatalf("got %v", err)
	}
	// A kid the bank does not have.
	tok, _ = es.Sign(map[string]any{"alg": "ES256", "kid": "retired"}, bankidtest.Claims{"iss": es.ID, "sub": inn, "aud": "taxflow",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "j", "nonce": "n"})
	parsed, _ = bankid.Parse(tok)
	if _, err := bankid.Verify(parsed, ks, inn, now); !bankid.IsRefusal(err) {
		t.Fatalf("unknown kid: %v", err)
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	now := time.Now()
	es := newBank(t, bankidtest.DemoBankID, bankid.ES256)
	good, _ := es.Assert(inn, "n", now)
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	cases := map[string]string{
		"empty":             "",
		"two parts":         parts[0] + "." + parts[1],
		"garbage":           "not a token at all",
		"header not json":   enc([]byte("{")) + "." + parts[1] + "." + parts[2],
		"alg none":          enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + "." + parts[2],
		"alg HS256":         enc([]byte(`{"alg":"HS256"}`)) + "." + parts[1] + "." + parts[2],
		"crit":              enc([]byte(`{"alg":"ES256","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2],
		"payload not json":  parts[0] + "." + enc([]byte("[1,2]")) + "." + parts[2],
		"iat a string":      parts[0] + "." + enc([]byte(`{"iat":"now","nonce":"n","jti":"j"}`)) + "." + parts[2],
		"no nonce":          parts[0] + "." + enc([]byte(`{"iss":"x","jti":"j"}`)) + "." + parts[2],
		"no jti":            parts[0] + "." + enc([]byte(`{"iss":"x","nonce":"n"}`)) + "." + parts[2],
		"signature not b64": parts[0] + "." + parts[1] + ".***",
		"oversized":         good + strings.Repeat("A", bankid.MaxTokenBytes),
	}
	for name, tok := range cases {
		if _, err := bankid.Parse(tok); !bankid.IsRefusal(err) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
	if _, err := bankid.Parse(good); err != nil {
		t.Fatal(err)
	}
	// A truncated signature parses but does not verify.
	tok, _ := bankid.Parse(parts[0] + "." + parts[1] + "." + parts[2][:20])
	if _, err := bankid.Verify(tok, keys(t, es), inn, now); !bankid.IsRefusal(err) {
		t.Fatalf("truncated signature: %v", err)
	}
}

func TestParseKeySet(t *testing.T) {
	bad := map[string]string{
		"not json":    `{`,
		"private key": `{"banks":[{"id":"044525999","keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}]}`,
		"no key":      `{"banks":[{"id":"044525999","keys":[]}]}`,
		"bad id":      `{"banks":[{"id":"a b","keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}]}`,
		"RSA":         `{"banks":[{"id":"1","keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}]}`,
		"off curve":   `{"banks":[{"id":"1","keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}]}`,
	}
	for name, s := range bad {
		if _, err := bankid.ParseKeySet([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
