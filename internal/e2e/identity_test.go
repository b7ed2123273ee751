//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/taxflow/taxflow/api"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/workflows"
)

// newPerson registers a taxpayer with identity data; consent as given.
func newPerson(t *testing.T, consent bool) contract.PersonData {
	t.Helper()
	inn := domain.CompleteINN12(fmt.Sprintf("50%08d", rand.IntN(100_000_000)))
	nine := fmt.Sprintf("%09d", 10_000_000+rand.IntN(900_000_000))
	snils := nine + domain.SNILSControl(nine)
	tp := contract.Taxpayer{INN: inn, AccountState: "active", INNLinked: true, SNILS: snils, SNILSLinked: true,
		Surname: "ФЁДОРОВА", FirstName: "АННА", Patronymic: "СЕРГЕЕВНА", BirthDate: "1988-09-30", Consent: consent,
		Passport: &contract.PassportRecord{Series: "4512", Number: fmt.Sprintf("%06d", rand.IntN(1_000_000)), IssuedOn: "2008-10-15"}}
	if _, err := store.PutNew(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), "inn", tp); err != nil {
		t.Fatal(err)
	}
	if consent {
		// Consent is given through a tenant: the cabinet's, which the identity and account
		// tests act as (its relationship with the taxpayer, the INN routes' object rule).
		if _, err := store.SetFields(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table),
			map[string]types.AttributeValue{"inn": store.S(inn)}, map[string]any{"consent_tenant": "e2e-cabinet"}); err != nil {
			t.Fatal(err)
		}
	}
	return contract.PersonData{INN: inn, SNILS: domain.FormatSNILS(snils), Surname: "Федорова", FirstName: "Анна", Patronymic: "Сергеевна",
		BirthDate: "30.09.1988", PassportSeries: tp.Passport.Series, PassportNumber: tp.Passport.Number}
}

func startIdentityAPI(t *testing.T, queue string) (*apiClient, *apiClient) {
	t.Helper()
	s := api.New(shared.cfg, shared.clients, shared.temporal, zerologNop())
	s.TaskQueue = queue
	srv := newServer(t, s)
	keys := api.Keys(shared.cfg, shared.clients)
	ik, err := keys.Create(context.Background(), api.Principal{ID: "e2e-cabinet", Tenant: "e2e-cabinet", Role: api.RoleIntegrator, Scopes: []string{api.ScopeIdentityRead, api.ScopeIdentityWrite, api.ScopeConsent}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := keys.Create(context.Background(), api.Principal{ID: "e2e-operator", Tenant: "tax-office", Role: api.RoleReviewer, Scopes: []string{api.ScopeIdentityRead, api.ScopeIdentityReview}})
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t, srv + "|" + ik}, &apiClient{t, srv + "|" + ok}
}

func (c *apiClient) identity(id string) workflows.IdentityStatus {
	c.t.Helper()
	code, out := c.do("GET", "/v1/identity-verifications/"+id, nil)
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", id, code, out)
	}
	var st workflows.IdentityStatus
	_ = json.Unmarshal(out, &st)
	return st
}

func (c *apiClient) waitIdentity(id string, want func(workflows.IdentityStatus) bool, what string) workflows.IdentityStatus {
	c.t.Helper()
	return poll(c.t, id+": "+what, func() workflows.IdentityStatus { return c.identity(id) }, want)
}

func status(s string) func(workflows.IdentityStatus) bool {
	return func(st workflows.IdentityStatus) bool { return st.Status == s }
}

func passportPhoto() []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 1280, 900)), nil)
	return buf.Bytes()
}

func (c *apiClient) startIdentity(method string, p contract.PersonData, cert []byte) (int, string) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"method": method, "person": p, "certificate": cert})
	code, out := c.do("POST", "/v1/identity-verifications", body, "Idempotency-Key", uuid.NewString())
	var res struct {
		CaseID string `json:"case_id"`
	}
	_ = json.Unmarshal(out, &res)
	return code, res.CaseID
}

// A verification by documents over HTTP with a real photo uploaded to S3, with consent
// revoked in the middle (the case pauses) and given again (it resumes).
func TestIdentityByDocumentsOverHTTPWithConsentPause(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	cabinet, _ := startIdentityAPI(t, queue)
	p := newPerson(t, true)

	code, id := cabinet.startIdentity(contract.MethodDocuments, p, nil)
	if code != http.StatusCreated {
		t.Fatalf("start: %d", code)
	}
	cabinet.waitIdentity(id, status(workflows.IdentityNeedsDocuments), "a request for documents")

	// Revoke consent until the running verification has been told.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out := cabinet.do("DELETE", "/v1/taxpayers/"+p.INN+"/consent", nil)
		var res struct {
			Notified int `json:"verifications_notified"`
		}
		_ = json.Unmarshal(out, &res)
		if code != http.StatusOK {
			t.Fatalf("revoke: %d %s", code, out)
		}
		if res.Notified == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the running verification was never found by its subject hash")
		}
		time.Sleep(300 * time.Millisecond)
	}
	if code, _ := cabinet.startIdentity(contract.MethodDocuments, p, nil); code != http.StatusConflict {
		t.Fatalf("a new verification without consent: %d, want 409", code)
	}
	if code, out := cabinet.do("POST", "/v1/identity-verifications/"+id+"/documents?doc_id=passport", passportPhoto()); code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, out)
	}
	cabinet.waitIdentity(id, func(st workflows.IdentityStatus) bool { return st.Paused }, "the pause")
	if code, _ := cabinet.do("POST", "/v1/taxpayers/"+p.INN+"/consent", nil); code != http.StatusBadRequest {
		t.Fatalf("consent without its document: %d, want 400", code)
	}
	if code, out := cabinet.do("POST", "/v1/taxpayers/"+p.INN+"/consent", []byte(`{"channel":"cabinet","document_id":"consent-2026-11-23-001"}`)); code != http.StatusOK {
		t.Fatalf("consent: %d %s", code, out)
	}
	st := cabinet.waitIdentity(id, status(workflows.IdentityVerified), "verified")
	if st.Attempts != 1 || st.ConfirmedAt == nil || len(st.Documents) != 1 || !st.Documents[0].Accepted {
		t.Fatalf("%+v", st)
	}
	stored, err := shared.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(shared.cfg.Name(document.Bucket)), Key: aws.String(document.StoredKey(id, "passport"))})
	if err != nil || aws.ToInt64(stored.ContentLength) == 0 {
		t.Fatalf("photo not stored: %v", err)
	}
	tp, _, err := taxpayer.Lookup(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(taxpayer.Table), p.INN)
	if err != nil || !tp.Confirmed || tp.ConfirmedMethod != contract.MethodDocuments || tp.ConfirmedAt == nil {
		t.Fatalf("confirmed mark: %+v %v", tp, err)
	}
	// After the decision a document or a re-submission is refused (409), never answered
	// 202 and dropped; the refused upload is removed.
	if code, out := cabinet.do("POST", "/v1/identity-verifications/"+id+"/documents?doc_id=late", passportPhoto()); code != http.StatusConflict {
		t.Fatalf("a document after the decision: %d %s, want 409", code, out)
	}
	if _, err := shared.clients.S3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(shared.cfg.Name(document.Bucket)), Key: aws.String(document.IncomingKey(id, "late"))}); err == nil {
		t.Fatal("the refused upload was kept")
	}
	body, _ := json.Marshal(map[string]any{"person": p})
	if code, out := cabinet.do("POST", "/v1/identity-verifications/"+id+"/resubmit", body); code != http.StatusConflict {
		t.Fatalf("a re-submission after the decision: %d %s, want 409", code, out)
	}
}

// An e-signature checked against trust material really kept in S3.
func TestIdentityByESignatureOverHTTP(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	cabinet, operator := startIdentityAPI(t, queue)
	now := time.Now()
	// The stack's authority, its root and a current revocation list in S3 (without a list
	// the check cannot complete).
	ca := trustedCA(t)
	p := newPerson(t, true)
	snils, _ := domain.NormalizeSNILS("snils", p.SNILS)
	cert, key, _ := ca.IssueWithKey(int64(rand.IntN(1e9)), p.INN, snils, now.AddDate(0, -1, 0), now.AddDate(1, 0, 0))
	// A bare certificate proves nothing: it is public.
	if code, _ := cabinet.startIdentity(contract.MethodESignature, p, cert); code != http.StatusBadRequest {
		t.Fatalf("a certificate without proof of possession: %d, want 400", code)
	}
	code, out := cabinet.do("POST", "/v1/identity-verifications/challenges", nil)
	var ch struct{ Nonce string }
	if code != http.StatusCreated || json.Unmarshal(out, &ch) != nil {
		t.Fatalf("challenge: %d %s", code, out)
	}
	sig, err := esigntest.Sign(key, []byte(ch.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"method": contract.MethodESignature, "person": p, "certificate": cert, "nonce": ch.Nonce, "signature": sig})
	code, out = cabinet.do("POST", "/v1/identity-verifications", body, "Idempotency-Key", uuid.NewString())
	var started struct {
		CaseID string `json:"case_id"`
	}
	if code != http.StatusCreated || json.Unmarshal(out, &started) != nil {
		t.Fatalf("start: %d %s", code, out)
	}
	id := started.CaseID
	// The same nonce again: replayed, refused.
	if code, _ := cabinet.do("POST", "/v1/identity-verifications", body, "Idempotency-Key", uuid.NewString()); code != http.StatusBadRequest {
		t.Fatalf("a replayed nonce: %d, want 400", code)
	}
	if st := cabinet.waitIdentity(id, status(workflows.IdentityVerified), "verified"); st.Method != contract.MethodESignature {
		t.Fatalf("%+v", st)
	}
	if code, _ := operator.do("POST", "/v1/identity-verifications/"+id+"/review", []byte(`{"approve":true}`)); code != http.StatusConflict {
		t.Fatalf("review of a finished verification: %d, want 409", code)
	}
	if code, _ := cabinet.do("POST", "/v1/identity-verifications/"+id+"/review", []byte(`{"approve":true}`)); code != http.StatusForbidden {
		t.Fatalf("review by an integrator: %d, want 403", code)
	}
	bad := p
	bad.SNILS = "112-233-445 96"
	if code, _ := cabinet.startIdentity(contract.MethodVideo, bad, nil); code != http.StatusBadRequest {
		t.Fatalf("bad SNILS: %d, want 400", code)
	}
}
