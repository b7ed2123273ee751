package trust

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

// An operator's put stores a valid anchor under its key; anything else is refused and
// nothing is written, so a wrong file never leaves the checks without their anchors.
func TestPutStoresOnlyValidAnchors(t *testing.T) {
	now := time.Now()
	ca, err := esigntest.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(7, "500100732259", "11223344595", now, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	bank, err := bankidtest.NewBank(bankidtest.DemoBankID, bankid.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	keys := bankidtest.KeySet(bank)
	var withPrivate map[string]any
	_ = json.Unmarshal(keys, &withPrivate)
	withPrivate["banks"].([]any)[0].(map[string]any)["keys"].([]any)[0].(map[string]any)["d"] = "c2VjcmV0"
	leaked, _ := json.Marshal(withPrivate)

	for _, c := range []struct {
		anchor string
		body   []byte
		ok     bool
	}{
		{"roots", ca.RootPEM(), true},
		{"roots", append(ca.RootPEM(), ca.RootPEM()...), true},
		{"crl", crl, true},
		{"banks", keys, true},
		{"roots", leaf, false}, // a taxpayer's certificate is no root
		{"roots", []byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"), false},
		{"roots", []byte("not pem"), false},
		{"roots", nil, false},
		{"crl", ca.RootPEM(), false},
		{"banks", leaked, false}, // a private key never belongs in the trust bucket
		{"banks", []byte(`{"banks":[{"id":"x","keys":[]}]}`), false},
		{"bank", keys, false}, // no such anchor
		{"../documents/x", keys, false},
	} {
		s3 := storetest.NewS3()
		a, err := Put(t.Context(), s3, "taxflow-trust", c.anchor, c.body)
		if (err == nil) != c.ok {
			t.Errorf("%s (%d bytes): err %v, want ok=%v", c.anchor, len(c.body), err, c.ok)
			continue
		}
		if !c.ok {
			if len(s3.Objects) != 0 {
				t.Errorf("%s: refused, yet %d objects written", c.anchor, len(s3.Objects))
			}
			if !strings.Contains(err.Error(), c.anchor) {
				t.Errorf("%s: the error does not name the anchor: %v", c.anchor, err)
			}
			continue
		}
		if got := s3.Objects[a.Key]; !bytes.Equal(got, c.body) || a.Key != Anchors[c.anchor].Key {
			t.Errorf("%s: stored under %s: %d bytes", c.anchor, a.Key, len(got))
		}
	}
}
