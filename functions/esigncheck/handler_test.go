package esigncheck

import (
	"context"
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const (
	inn, snils = "500100732259", "11223344595"
	caseID     = "identity-0c6f6f9e-0000-4000-8000-000000000002"
)

// stores holds the registry (the taxpayer with inn and snils) and the API's challenges.
func stores(t *testing.T) *storetest.DB {
	t.Helper()
	db := storetest.New(map[string]storetest.Key{"taxpayers": {PK: "inn"}, "api_idempotency": {PK: "key"}})
	if _, err := store.PutNew(context.Background(), db, "taxpayers", "inn", contract.Taxpayer{INN: inn, SNILS: snils}); err != nil {
		t.Fatal(err)
	}
	return db
}

// proven runs the API's verifier for the case: a challenge issued, signed, spent.
func proven(t *testing.T, db *storetest.DB, cert []byte, key *ecdsa.PrivateKey, nonce, forCase string) *contract.ESignProof {
	t.Helper()
	if _, err := store.PutNew(context.Background(), db, "api_idempotency", "key", esign.Challenge{Key: "nonce#" + nonce, Tenant: "alpha", ExpiresAt: time.Now().Add(time.Minute).Unix()}); err != nil {
		t.Fatal(err)
	}
	sig, _ := esigntest.Sign(key, []byte(nonce))
	p, err := esign.Verifier{DB: db, Nonces: "api_idempotency", Taxpayers: "taxpayers"}.Prove(context.Background(),
		esign.Claim{Tenant: "alpha", CaseID: forCase, Certificate: cert, Nonce: nonce, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	return p.Proof()
}

func handler(s3 *storetest.S3, db *storetest.DB) *Handler {
	return &Handler{S3: s3, Bucket: "b", DB: db, Taxpayers: "taxpayers", Nonces: "api_idempotency"}
}

func TestCheckWithTrustFromS3(t *testing.T) {
	now := time.Now()
	ca, _ := esigntest.NewCA(now)
	s3 := storetest.NewS3()
	db := stores(t)
	good, key, _ := ca.IssueWithKey(5, inn, snils, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	in := contract.ESignCheckInput{Certificate: good, INN: inn, SNILS: "112-233-445 95", At: now, CaseID: caseID, Proof: proven(t, db, good, key, "n-1", caseID)}
	h := handler(s3, db)
	if _, err := h.Check(context.Background(), in); err == nil || !strings.Contains(err.Error(), "no trusted roots") {
		t.Fatalf("without roots: %v", err)
	}
	s3.Put(RootsKey, ca.RootPEM())
	crl, _ := ca.CRL(now, 5)
	h = handler(s3, db)
	res, err := h.Check(context.Background(), in)
	if err != nil || res.Valid || !res.Inconclusive { // no CRL: revocation unknown, never valid
		t.Fatalf("without a revocation list: %+v %v", res, err)
	}
	empty, _ := ca.CRL(now)
	s3.Put(CRLKey, empty)
	h = handler(s3, db)
	if res, err = h.Check(context.Background(), in); err != nil || !res.Valid || res.Inconclusive {
		t.Fatalf("valid with a current list: %+v %v", res, err)
	}
	// A list past its next update cannot vouch for today.
	h = handler(s3, db)
	later := in
	later.At = now.AddDate(0, 0, 8)
	if res, err = h.Check(context.Background(), later); err != nil || res.Valid || !res.Inconclusive {
		t.Fatalf("stale list: %+v %v", res, err)
	}
	s3.Put(CRLKey, crl)
	h = handler(s3, db)
	res, err = h.Check(context.Background(), in)
	if err != nil || res.Valid || !strings.Contains(res.Reason, "revoked") {
		t.Fatalf("revoked: %+v %v", res, err)
	}
	res, _ = h.Check(context.Background(), contract.ESignCheckInput{Certificate: []byte("junk"), INN: inn, SNILS: snils, At: now, CaseID: caseID, Proof: in.Proof})
	if res.Valid || !strings.Contains(res.Reason, "not a readable certificate") {
		t.Fatalf("junk: %+v", res)
	}
	// Without the registry and the challenges nothing is judged valid.
	if _, err := (&Handler{S3: s3, Bucket: "b"}).Check(context.Background(), in); err == nil {
		t.Fatal("a check without the registry answered")
	}
}

// The check binds the certificate to the registry's INN and SNILS, and refuses a
// submission whose proof of possession the API's verifier did not accept for this case.
func TestCheckBindsTheRegistryAndReverifiesTheProof(t *testing.T) {
	now := time.Now()
	ca, _ := esigntest.NewCA(now)
	s3 := storetest.NewS3()
	s3.Put(RootsKey, ca.RootPEM())
	empty, _ := ca.CRL(now)
	s3.Put(CRLKey, empty)
	db := stores(t)
	h := handler(s3, db)
	year := func() (time.Time, time.Time) { return now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0) }
	from, to := year()
	victim, key, _ := ca.IssueWithKey(10, inn, snils, from, to)
	_, otherKey, _ := ca.IssueWithKey(11, inn, snils, from, to)
	// The attacker's certificate names only the attacker's SNILS; the attacker submits it
	// with the victim's INN and the attacker's SNILS, and holds its key.
	attacker, attKey, _ := ca.IssueWithKey(12, "", "08765430300", from, to)

	good := proven(t, db, victim, key, "n-good", caseID)
	forged := *good
	forged.Signature, _ = esigntest.Sign(otherKey, []byte(good.Nonce))
	otherCase := proven(t, db, victim, key, "n-other", "identity-0c6f6f9e-0000-4000-8000-000000000099")
	// Signed by the right key over a nonce the verifier never saw (nothing spent).
	unspentSig, _ := esigntest.Sign(key, []byte("n-never-issued"))
	unspent := &contract.ESignProof{Nonce: "n-never-issued", Signature: unspentSig, Tenant: "alpha", CaseID: caseID}
	// The attacker's proof is genuine for the attacker's certificate (the verifier of a
	// re-submission does not know the INN); the registry refuses the binding.
	attackerProof := proven(t, db, attacker, attKey, "n-attacker", caseID)

	for name, c := range map[string]struct {
		in      contract.ESignCheckInput
		want    string
		refused bool
	}{
		"no proof":             {contract.ESignCheckInput{Certificate: victim, INN: inn, SNILS: snils, At: now, CaseID: caseID}, "without a proof", true},
		"forged signature":     {contract.ESignCheckInput{Certificate: victim, INN: inn, SNILS: snils, At: now, CaseID: caseID, Proof: &forged}, "does not verify", true},
		"another case's proof": {contract.ESignCheckInput{Certificate: victim, INN: inn, SNILS: snils, At: now, CaseID: caseID, Proof: otherCase}, "not accepted for this case", true},
		"a proof never spent":  {contract.ESignCheckInput{Certificate: victim, INN: inn, SNILS: snils, At: now, CaseID: caseID, Proof: unspent}, "not accepted for this case", true},
		"submitted SNILS":      {contract.ESignCheckInput{Certificate: attacker, INN: inn, SNILS: "087-654-303 00", At: now, CaseID: caseID, Proof: attackerProof}, "does not name both", false},
	} {
		res, err := h.Check(context.Background(), c.in)
		if err != nil || res.Valid || res.Refused != c.refused || !strings.Contains(res.Reason, c.want) {
			t.Errorf("%s: %+v %v", name, res, err)
		}
	}
	if res, err := h.Check(context.Background(), contract.ESignCheckInput{Certificate: victim, INN: inn, SNILS: snils, At: now, CaseID: caseID, Proof: good}); err != nil || !res.Valid {
		t.Fatalf("the verifier's proof: %+v %v", res, err)
	}
}
