package esigncheck

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

func TestCheckWithTrustFromS3(t *testing.T) {
	now := time.Now()
	ca, _ := esigntest.NewCA(now)
	s3 := storetest.NewS3()
	h := &Handler{S3: s3, Bucket: "b"}
	good, _ := ca.Issue(5, "500100732259", "11223344595", now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	in := contract.ESignCheckInput{Certificate: good, INN: "500100732259", SNILS: "112-233-445 95", At: now}
	if _, err := h.Check(context.Background(), in); err == nil || !strings.Contains(err.Error(), "no trusted roots") {
		t.Fatalf("without roots: %v", err)
	}
	s3.Put(RootsKey, ca.RootPEM())
	crl, _ := ca.CRL(now, 5)
	h = &Handler{S3: s3, Bucket: "b"}
	res, err := h.Check(context.Background(), in)
	if err != nil || res.Valid || !res.Inconclusive { // no CRL: revocation unknown, never valid
		t.Fatalf("without a revocation list: %+v %v", res, err)
	}
	empty, _ := ca.CRL(now)
	s3.Put(CRLKey, empty)
	h = &Handler{S3: s3, Bucket: "b"}
	if res, err = h.Check(context.Background(), in); err != nil || !res.Valid || res.Inconclusive {
		t.Fatalf("valid with a current list: %+v %v", res, err)
	}
	// A list past its next update cannot vouch for today.
	h = &Handler{S3: s3, Bucket: "b"}
	later := in
	later.At = now.AddDate(0, 0, 8)
	if res, err = h.Check(context.Background(), later); err != nil || res.Valid || !res.Inconclusive {
		t.Fatalf("stale list: %+v %v", res, err)
	}
	s3.Put(CRLKey, crl)
	h = &Handler{S3: s3, Bucket: "b"}
	res, err = h.Check(context.Background(), in)
	if err != nil || res.Valid || !strings.Contains(res.Reason, "revoked") {
		t.Fatalf("revoked: %+v %v", res, err)
	}
	res, _ = h.Check(context.Background(), contract.ESignCheckInput{Certificate: []byte("junk"), INN: "500100732259", SNILS: "11223344595", At: now})
	if res.Valid || !strings.Contains(res.Reason, "not a readable certificate") {
		t.Fatalf("junk: %+v", res)
	}
}
