// Package subject computes TaxflowSubject, the search attribute that finds one
// taxpayer's cases without revealing the INN: an HMAC-SHA256 of the INN under a secret
// of its own (TAXFLOW_SUBJECT_KEY), never derived from the payload key, so a rotation of
// the payload key changes no subject and no account workflow id.
//
// The key is versioned and the version is part of every value ("s2.<hex>"): after a
// rotation the values made under the previous versions stay searchable (a keyring holds
// them for lookups), and a value names the key that made it. Only the API holds the
// keyring; a workflow never does: a parent passes its own TaxflowSubject to its children.
package subject

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Variables naming the keyring's settings, for errors and documentation.
const (
	VarKey      = "TAXFLOW_SUBJECT_KEY"
	VarPrevious = "TAXFLOW_SUBJECT_KEYS_PREVIOUS"
)

// MinSecret is the shortest secret accepted, in bytes: an HMAC-SHA256 key of full strength.
const MinSecret = 32

// LegacyVersion names the key taxflow used before subjects were versioned: it was
// derived from the payload key and its values carry no version prefix. It is accepted
// among the previous keys only, so that cases and accounts made before the change are
// still found; nothing new is ever made under it.
const LegacyVersion = 0

// hexLen is how many hex digits of the HMAC a value keeps (128 bits): ample against
// collisions among taxpayers, short enough for workflow ids.
const hexLen = 32

// Key is one version of the subject key. Its secret never leaves the package: String
// shows the version only, so a key printed by mistake reveals nothing.
type Key struct {
	Version int
	secret  []byte
}

// String names the key without its secret.
func (k Key) String() string { return fmt.Sprintf("v%d:[redacted]", k.Version) }

// GoString keeps %#v from printing the secret too.
func (k Key) GoString() string { return k.String() }

// Value is the TaxflowSubject of an INN under this key.
func (k Key) Value(inn string) string {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(inn))
	sum := hex.EncodeToString(m.Sum(nil))[:hexLen]
	if k.Version == LegacyVersion {
		return sum
	}
	return "s" + strconv.Itoa(k.Version) + "." + sum
}

// Keyring is the current key, which makes every new value, and the previous keys, which
// only find what was made under them. The zero Keyring has no key: IsZero tells.
type Keyring struct {
	current  Key
	previous []Key
}

// New builds a keyring from the current key and the previous ones (in lookup order).
func New(current Key, previous ...Key) (Keyring, error) {
	if len(current.secret) < MinSecret {
		return Keyring{}, fmt.Errorf("the current subject key must have at least %d bytes", MinSecret)
	}
	if current.Version == LegacyVersion {
		return Keyring{}, errors.New("version 0 names the pre-versioning key, allowed among the previous keys only")
	}
	seen := map[int]bool{current.Version: true}
	for _, p := range previous {
		if seen[p.Version] {
			return Keyring{}, fmt.Errorf("version %d appears twice", p.Version)
		}
		seen[p.Version] = true
		if len(p.secret) < MinSecret {
			return Keyring{}, fmt.Errorf("the key of version %d must have at least %d bytes", p.Version, MinSecret)
		}
	}
	return Keyring{current: current, previous: append([]Key(nil), previous...)}, nil
}

// NewKey builds a key from its version and secret (tests, and Parse).
func NewKey(version int, secret []byte) Key {
	return Key{Version: version, secret: append([]byte(nil), secret...)}
}

// Parse reads the keyring from the values of TAXFLOW_SUBJECT_KEY and
// TAXFLOW_SUBJECT_KEYS_PREVIOUS. An empty current key gives the zero Keyring (the
// caller decides whether it needs one); a present but malformed or short one is an
// error that names the variable and never repeats the value.
func Parse(current, previous string) (Keyring, error) {
	current, previous = strings.TrimSpace(current), strings.TrimSpace(previous)
	if current == "" {
		if previous != "" {
			return Keyring{}, fmt.Errorf("%s is set but %s is not: previous keys only find what an earlier current key made", VarPrevious, VarKey)
		}
		return Keyring{}, nil
	}
	cur, err := parseKey(current)
	if err != nil {
		return Keyring{}, fmt.Errorf("%s %w", VarKey, err)
	}
	if cur.Version == LegacyVersion {
		return Keyring{}, fmt.Errorf("%s: version v0 names the pre-versioning key, allowed in %s only; give the new key v1 or higher", VarKey, VarPrevious)
	}
	var prev []Key
	if previous != "" {
		for i, part := range strings.Split(previous, ",") {
			k, err := parseKey(strings.TrimSpace(part))
			if err != nil {
				return Keyring{}, fmt.Errorf("%s (key %d) %w", VarPrevious, i+1, err)
			}
			prev = append(prev, k)
		}
	}
	kr, err := New(cur, prev...)
	if err != nil {
		return Keyring{}, fmt.Errorf("%s, %s: %w", VarKey, VarPrevious, err)
	}
	return kr, nil
}

// parseKey reads "v<version>:<base64 secret>".
func parseKey(s string) (Key, error) {
	const form = "must be v<version>:<base64 of at least 32 random bytes>, such as v1:$(openssl rand -base64 32)"
	ver, secret, ok := strings.Cut(s, ":")
	if !ok || len(ver) < 2 || ver[0] != 'v' {
		return Key{}, errors.New(form)
	}
	n, err := strconv.Atoi(ver[1:])
	if err != nil || n < 0 || n > 9999 || strconv.Itoa(n) != ver[1:] {
		return Key{}, errors.New(form + " (version: a whole number 0-9999)")
	}
	b, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(secret); err != nil {
			return Key{}, errors.New(form + " (the secret is not base64)")
		}
	}
	if len(b) < MinSecret {
		return Key{}, fmt.Errorf("%s (the secret has %d bytes: too short)", form, len(b))
	}
	return NewKey(n, b), nil
}

// String names the versions without the secrets, so a configuration printed by mistake
// reveals nothing.
func (k Keyring) String() string {
	if k.IsZero() {
		return "no subject key"
	}
	vs := []string{k.current.String() + " (current)"}
	for _, p := range k.previous {
		vs = append(vs, p.String())
	}
	return strings.Join(vs, ", ")
}

// GoString keeps %#v from printing the secrets too.
func (k Keyring) GoString() string { return k.String() }

// IsZero tells that the keyring has no key (TAXFLOW_SUBJECT_KEY unset).
func (k Keyring) IsZero() bool { return k.current.secret == nil }

// Current is the version of the key that makes new values.
func (k Keyring) Current() Key { return k.current }

// Previous are the keys kept for lookups, in lookup order.
func (k Keyring) Previous() []Key { return append([]Key(nil), k.previous...) }

// Value is the INN's subject under the current key: what a new case carries and what a
// new account's workflow id is made of. It panics on the zero Keyring, which a process
// that makes subjects refuses at start (config.RequireSubjectKey).
func (k Keyring) Value(inn string) string {
	if k.IsZero() {
		panic("subject: no key: " + VarKey + " is not set")
	}
	return k.current.Value(inn)
}

// Values are the INN's subject under every known key, current first: a search for a
// taxpayer's cases asks for all of them, so a rotation loses none.
func (k Keyring) Values(inn string) []string {
	out := []string{k.Value(inn)}
	for _, p := range k.previous {
		out = append(out, p.Value(inn))
	}
	return out
}

// Query is the visibility filter on TaxflowSubject that finds the INN's cases under
// every known key. The values are hex digits, 's' and '.', so quoting them is safe.
func (k Keyring) Query(inn string) string {
	vs := k.Values(inn)
	if len(vs) == 1 {
		return "TaxflowSubject = '" + vs[0] + "'"
	}
	return "TaxflowSubject IN ('" + strings.Join(vs, "', '") + "')"
}

// Anchor is the key that values meant to outlive every rotation are made under: the
// oldest versioned key the keyring holds (the lowest version of 1 or more, current or
// previous). A rotation keeps the old version among the previous keys, so the anchor
// stays what it was; it moves only when its version is dropped from the keyring.
func (k Keyring) Anchor() Key {
	a := k.current
	for _, p := range k.previous {
		if p.Version != LegacyVersion && p.Version < a.Version {
			a = p
		}
	}
	return a
}

// Derive is a key of its own for another purpose, named by label: HMAC-SHA256 of the
// label under the key's secret. The secret cannot be recovered from it, and two labels
// give unrelated keys.
func (k Key) Derive(label string) []byte {
	m := hmac.New(sha256.New, k.secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}
