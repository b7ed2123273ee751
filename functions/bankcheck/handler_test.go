package bankcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const inn = "500100732259"

type fixture struct {
	h    *Handler
	db   *storetest.DB
	s3   *storetest.S3
	bank *bankidtest.Bank
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	bank, err := bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: storetest.New(map[string]storetest.Key{"nonces": {PK: "key"}}), s3: storetest.NewS3(), bank: bank, now: time.Now()}
	f.s3.Put(KeySetKey, bankidtest.KeySet(bank))
	f.h = &Handler{S3: f.s3, Bucket: "documents", DB: f.db, Nonces: "nonces"}
	return f
}

// issue records a challenge as the API does.
func (f *fixture) issue(t *testing.T, nonce string, ttl time.Duration) {
	t.Helper()
	if _, err := store.PutNew(context.Background(), f.db, "nonces", "key", challenge{Key: "nonce#" + nonce, Tenant: "t1", ExpiresAt: f.now.Add(ttl).Unix()}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) check(t *testing.T, assertion, caseID string) contract.BankCheckResult {
	t.Helper()
	res, err := f.h.Check(context.Background(), contract.BankCheckInput{Assertion: assertion, INN: inn, CaseID: caseID, At: f.now})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if strings.Contains(res.Reason, inn) {
		t.Fatalf("the reason names the INN: %s", res.Reason)
	}
	return res
}

func TestValidAssertionSpendsItsNonceOnce(t *testing.T) {
	f := newFixture(t)
	f.issue(t, "n1", 5*time.Minute)
	tok, _ := f.bank.Assert(inn, "n1", f.now)
	if res := f.check(t, tok, "identity-a"); !res.Valid || res.Issuer != bankidtest.DemoBankID {
		t.Fatalf("valid: %+v", res)
	}
	// The same case's retry (the answer was lost) passes again.
	if res := f.check(t, tok, "identity-a"); !res.Valid {
		t.Fatalf("retry of the same case: %+v", res)
	}
	// Another case with the same assertion: a replay.
	if res := f.check(t, tok, "identity-b"); res.Valid || !strings.Contains(res.Reason, "already used") {
		t.Fatalf("replay: %+v", res)
	}
	// Another assertion for the spent nonce, even a genuine one, is refused too.
	again, _ := f.bank.Assert(inn, "n1", f.now)
	if res := f.check(t, again, "identity-a"); res.Valid || !strings.Contains(res.Reason, "already used") {
		t.Fatalf("a second assertion for a spent nonce: %+v", res)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	f.issue(t, "live", 5*time.Minute)
	f.issue(t, "stale", -time.Second)
	forger, _ := bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	sign := func(b *bankidtest.Bank, nonce string, edit ...func(bankidtest.Claims)) string {
		tok, err := b.Assert(inn, nonce, f.now, edit...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := map[string]struct{ tok, want string }{
		"forged":          {sign(forger, "live"), "signature does not verify"},
		"other taxpayer":  {sign(f.bank, "live", func(c bankidtest.Claims) { c["sub"] = "770708389301" }), "another taxpayer"},
		"nonce not ours":  {sign(f.bank, "invented"), "not a challenge taxflow issued"},
		"nonce expired":   {sign(f.bank, "stale"), "expired"},
		"wrong audience":  {sign(f.bank, "live", func(c bankidtest.Claims) { c["aud"] = "x" }), "not addressed to taxflow"},
		"malformed":       {"a.b", "not a compact JWS"},
		"oversized token": {strings.Repeat("a", bankid.MaxTokenBytes+1), "larger than"},
	}
	for name, c := range cases {
		if res := f.check(t, c.tok, "identity-"+name); res.Valid || res.Inconclusive || !strings.Contains(res.Reason, c.want) {
			t.Errorf("%s: %+v, want refused with %q", name, res, c.want)
		}
	}
	// None of the refused ones spent the live nonce.
	if res := f.check(t, sign(f.bank, "live"), "identity-ok"); !res.Valid {
		t.Fatalf("the live nonce after refusals: %+v", res)
	}
}

type failingS3 struct{ *storetest.S3 }

func (failingS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("connection reset")
}

func TestKeySetUnavailable(t *testing.T) {
	f := newFixture(t)
	f.issue(t, "n", 5*time.Minute)
	tok, _ := f.bank.Assert(inn, "n", f.now)
	in := contract.BankCheckInput{Assertion: tok, INN: inn, CaseID: "identity-a", At: f.now}
	// Unreadable: an error, retried by the activity; never valid.
	h := &Handler{S3: failingS3{f.s3}, Bucket: "documents", DB: f.db, Nonces: "nonces"}
	if res, err := h.Check(context.Background(), in); err == nil || res.Valid {
		t.Fatalf("unreadable key set: %+v %v", res, err)
	}
	// Missing or broken: inconclusive, for an operator.
	for name, body := range map[string][]byte{"missing": nil, "broken": []byte(`{"banks":[{"id":"1","keys":[]}]}`)} {
		s := storetest.NewS3()
		if body != nil {
			s.Put(KeySetKey, body)
		}
		h := &Handler{S3: s, Bucket: "documents", DB: f.db, Nonces: "nonces"}
		if res, err := h.Check(context.Background(), in); err != nil || res.Valid || !res.Inconclusive {
			t.Fatalf("%s key set: %+v %v", name, res, err)
		}
	}
	// The nonce was not spent by the checks that could not complete.
	if res := f.check(t, tok, "identity-b"); !res.Valid {
		t.Fatalf("after the failed checks: %+v", res)
	}
}

func TestInputIsValidated(t *testing.T) {
	f := newFixture(t)
	h := lambda.NewHandler(fn.Handler(f.h.Check))
	for _, payload := range []string{`{"inn":"500100732259","case_id":"c","at":"2026-11-22T10:00:00Z"}`,
		`{"assertion":"a.b.c","inn":"500100732259","at":"2026-11-22T10:00:00Z"}`} {
		_, err := h.Invoke(context.Background(), []byte(payload))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput {
			t.Errorf("%s: got %v, want an invalid input", payload, err)
		}
	}
}
