package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/subject"
)

// Case ids are made under a key derived from the subject keyring's anchor (caseKeyFor).
// Were the anchor to move — its version dropped from the keyring, or an older version
// added back — every Idempotency-Key would name another case, and a retry would start a
// second one. So the key is pinned: the first create of a deployment records the anchor's
// fingerprint (never the key) in the idempotency table, and every API process compares its
// own with it before its first create. While they differ the process refuses creates (503,
// logged with both versions); reads and every other route go on. A match is taken for
// pinRecheck, then compared again: one read every ten minutes notices the pin was moved.

// pinRecheck is how long a match is taken before the pin is read again; pinLogEvery
// bounds the refusal's error log to a line a minute however many creates are refused.
const (
	pinRecheck  = 10 * time.Minute
	pinLogEvery = time.Minute
)

// anchorPinKey is the pin's item in the idempotency table (it has no expires_at: kept).
const anchorPinKey = "settings#case-id-key"

// anchorPin is what the table holds of the case-id key.
type anchorPin struct {
	Key         string `json:"key"`
	Version     int    `json:"version"`
	Fingerprint string `json:"fingerprint"`
	RecordedAt  int64  `json:"recorded_at"`
}

// errAnchorMoved: this process's case-id key is not the recorded one.
var errAnchorMoved = errors.New("the subject keyring's anchor is not the key case ids are made under")

// anchorFingerprint identifies the case-id key without revealing it: an HMAC of a fixed
// label under the derived key.
func anchorFingerprint(a subject.Key) string {
	m := hmac.New(sha256.New, a.Derive(caseIDLabel))
	m.Write([]byte("taxflow case id key fingerprint"))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// caseIDKeyPinned is nil when this process makes case ids under the recorded key
// (recording it if none is yet), errAnchorMoved (wrapped, with the versions) when not, and
// another error when the table cannot be read.
func (s *Server) caseIDKeyPinned(ctx context.Context) error {
	hot := s.hot()
	now := time.Now()
	if now.UnixNano() < hot.pinnedUntil.Load() {
		return nil
	}
	a := s.Subjects.Anchor()
	mine := anchorPin{Key: anchorPinKey, Version: a.Version, Fingerprint: anchorFingerprint(a), RecordedAt: time.Now().Unix()}
	key := map[string]types.AttributeValue{"key": store.S(anchorPinKey)}
	var got anchorPin
	found, err := store.Get(ctx, s.DB, s.Idempotency, key, &got)
	if err != nil {
		return fmt.Errorf("read the recorded case-id key: %w", err)
	}
	if !found {
		created, err := store.PutNew(ctx, s.DB, s.Idempotency, "key", mine)
		if err != nil {
			return fmt.Errorf("record the case-id key: %w", err)
		}
		if created {
			s.Log.Info().Int("version", a.Version).Msg("case ids: the subject keyring's anchor recorded as the case-id key")
			hot.pinnedUntil.Store(now.Add(pinRecheck).UnixNano())
			return nil
		}
		// Another process recorded one meanwhile: compare with it.
		if found, err = store.Get(ctx, s.DB, s.Idempotency, key, &got); err != nil {
			return fmt.Errorf("read the recorded case-id key: %w", err)
		} else if !found {
			return errors.New("the recorded case-id key was not found after another process recorded it")
		}
	}
	if got.Fingerprint != mine.Fingerprint {
		if last := hot.pinLogged.Load(); now.UnixNano()-last >= int64(pinLogEvery) && hot.pinLogged.CompareAndSwap(last, now.UnixNano()) {
			s.Log.Error().Int("anchor_version", a.Version).Int("recorded_version", got.Version).
				Msg("case ids: creates refused: the subject keyring's anchor is not the recorded case-id key; put that version back among TAXFLOW_SUBJECT_KEYS_PREVIOUS (and drop any older one added since)")
		}
		return fmt.Errorf("%w (anchor v%d, recorded v%d)", errAnchorMoved, a.Version, got.Version)
	}
	hot.pinnedUntil.Store(now.Add(pinRecheck).UnixNano())
	return nil
}
