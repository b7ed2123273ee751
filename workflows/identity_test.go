package workflows

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/taxflow/taxflow/functions/bankcheck"
	"github.com/taxflow/taxflow/functions/casedocs"
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/esigncheck"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/bankid"
	"github.com/taxflow/taxflow/internal/bankid/bankidtest"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/esign"
	"github.com/taxflow/taxflow/internal/esign/esigntest"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const (
	idCase  = "identity-0c6f6f9e-0000-4000-8000-000000000002"
	idSNILS = "11223344595"
)

type idHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	db      *storetest.DB
	s3      *storetest.S3
	ca      *esigntest.CA
	bank    *bankidtest.Bank
	nonces  *storetest.DB // the API's challenges (api_idempotency)
	updates int
	deletes []string // cases whose documents were destroyed
}

func registered() contract.Taxpayer {
	return contract.Taxpayer{INN: testINN, AccountState: "active", INNLinked: true, SNILS: idSNILS, SNILSLinked: true,
		Surname: "СЕМЁНОВ", FirstName: "ИВАН", Patronymic: "ПЕТРОВИЧ", BirthDate: "1985-04-12", Consent: true,
		Passport: &contract.PassportRecord{Series: "4509", Number: "123456", IssuedOn: "2010-05-20"}}
}

func person() contract.PersonData {
	return contract.PersonData{INN: testINN, SNILS: "112-233-445 95", Surname: "Семенов", FirstName: "Иван", Patronymic: "Петрович",
		BirthDate: "12.04.1985", PassportSeries: "4509", PassportNumber: "123456"}
}

func newIDHarness(t *testing.T, tp contract.Taxpayer) *idHarness {
	h := &idHarness{t: t}
	h.db, h.s3 = newStores()
	if tp.INN != "" {
		mustPut(t, h.db, "taxpayers", "inn", tp)
	}
	ca, err := esigntest.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.ca = ca
	h.s3.Put(esigncheck.RootsKey, ca.RootPEM())
	crl, _ := ca.CRL(time.Now(), 66)
	h.s3.Put(esigncheck.CRLKey, crl)
	var s testsuite.WorkflowTestSuite
	h.env = newTestEnv(&s)
	h.env.RegisterWorkflow(IdentityVerification)
	h.bank, err = bankidtest.NewBank(bankidtest.DemoBankID, bankid.ES256)
	if err != nil {
		t.Fatal(err)
	}
	h.s3.Put(bankcheck.KeySetKey, bankidtest.KeySet(h.bank))
	h.nonces = storetest.New(map[string]storetest.Key{"api_idempotency": {PK: "key"}})
	handlers := realHandlers(h.db, h.s3)
	handlers[contract.FnBankCheck] = fn.Handler((&bankcheck.Handler{S3: h.s3, Bucket: "documents", DB: h.nonces, Nonces: "api_idempotency"}).Check)
	handlers[contract.FnCaseDocumentsDelete] = fnHandler(func(ctx context.Context, in contract.CaseDocumentsDeleteInput) (contract.CaseDocumentsDeleteResult, error) {
		h.deletes = append(h.deletes, in.CaseID)
		return casedocs.Handler{S3: h.s3, Bucket: "documents"}.Delete(ctx, in)
	})
	registerActivities(h.env, handlers)
	return h
}

func jpegOf(w, hgt int) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, hgt)), nil)
	return buf.Bytes()
}

func (h *idHarness) upload(doc string, b []byte) {
	h.s3.Put(document.IncomingKey(idCase, doc), b)
}

func idInput(method string, docs ...string) IdentityWorkflowInput {
	in := IdentityWorkflowInput{CaseID: idCase, RequestID: "req-1", Method: method, Submission: IdentitySubmission{Person: person()},
		Policy: DefaultIdentityPolicy()}
	for _, d := range docs {
		in.Submission.Documents = append(in.Submission.Documents, DocumentRef{DocID: d})
	}
	return in
}

func (h *idHarness) run(in IdentityWorkflowInput) IdentityStatus {
	h.t.Helper()
	h.env.ExecuteWorkflow(IdentityVerification, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var st IdentityStatus
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("workflow error: %v", err)
	}
	return st
}

func (h *idHarness) query() IdentityStatus {
	v, err := h.env.QueryWorkflow(IdentityQueryStatus)
	if err != nil {
		h.t.Fatal(err)
	}
	var st IdentityStatus
	_ = v.Get(&st)
	return st
}

// An accepted review must answer without error, with the status it decided (verified or
// rejected); every review must be answered.
func (h *idHarness) review(after time.Duration, rv IdentityReview, wantErr bool) {
	h.updates++
	id := fmt.Sprintf("review-%d", h.updates)
	answered := false
	h.t.Cleanup(func() {
		if !answered {
			h.t.Errorf("review %s never answered", id)
		}
	})
	want := IdentityVerified
	if !rv.Approve {
		want = IdentityRejected
	}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(IdentityUpdateReview, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {
				if wantErr {
					h.t.Error("review accepted, want it refused")
				}
			},
			OnReject: func(err error) {
				answered = true
				if !wantErr {
					h.t.Errorf("review refused: %v", err)
				}
			},
			OnComplete: func(v any, err error) {
				answered = true
				st, _ := v.(IdentityStatus)
				if err != nil || st.Status != want {
					h.t.Errorf("review %s answered %q, %v; want %s and no error", id, st.Status, err, want)
				}
			},
		}, rv)
	}, after)
}

func (h *idHarness) confirmed() contract.Taxpayer {
	var tp contract.Taxpayer
	for _, item := range h.db.Items("taxpayers") {
		_ = store.Unmarshal(item, &tp)
	}
	return tp
}

func idStatuses(st IdentityStatus) string {
	var out []string
	for _, tr := range st.History {
		out = append(out, tr.To)
	}
	return strings.Join(out, ">")
}

func TestIdentityByDocuments(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("passport", jpegOf(1200, 800))
	st := h.run(idInput(contract.MethodDocuments, "passport"))
	if st.Status != IdentityVerified || st.Label != "Идентификация пройдена" || st.Attempts != 1 || st.ConfirmedAt == nil {
		t.Fatalf("got %+v", st)
	}
	tp := h.confirmed()
	if !tp.Confirmed || tp.ConfirmedMethod != "documents" || tp.ConfirmedAt == nil {
		t.Fatalf("confirmed mark not set: %+v", tp)
	}
}

func TestIdentityByESignature(t *testing.T) {
	now := time.Now()
	for name, c := range map[string]struct {
		serial     int64
		inn        string
		from, to   time.Time
		wantStatus string
		wantReason string
	}{
		"valid":       {10, testINN, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0), IdentityVerified, ""},
		"expired":     {11, testINN, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1), IdentityRejected, "expired"},
		"revoked":     {66, testINN, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0), IdentityRejected, "revoked"},
		"another INN": {12, "7707083893", now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0), IdentityRejected, "another person"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newIDHarness(t, registered())
			cert, key, err := h.ca.IssueWithKey(c.serial, c.inn, idSNILS, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			in := idInput(contract.MethodESignature)
			in.Submission.Certificate, in.Submission.ESignProof = cert, h.prove(cert, key, "n-"+name, idCase)
			in.Policy.MaxAttempts = 1
			st := h.run(in)
			if st.Status != c.wantStatus {
				t.Fatalf("got %s %v", st.Status, st.Reasons)
			}
			if c.wantReason != "" && (len(st.Reasons) == 0 || !strings.Contains(st.Reasons[0], c.wantReason) || !strings.Contains(st.Reasons[0], "update your electronic signature")) {
				t.Fatalf("reasons %v, want %q and the advice to update the signature", st.Reasons, c.wantReason)
			}
		})
	}
}

// prove runs the API's verifier: a challenge issued to tenant alpha, signed with key,
// spent for the case. The proof is what the API puts in the submission.
func (h *idHarness) prove(cert []byte, key *ecdsa.PrivateKey, nonce, caseID string) *contract.ESignProof {
	h.t.Helper()
	if _, err := store.PutNew(context.Background(), h.db, "api_idempotency", "key", esign.Challenge{Key: "nonce#" + nonce, Tenant: "alpha",
		ExpiresAt: time.Now().Add(time.Hour).Unix()}); err != nil {
		h.t.Fatal(err)
	}
	sig, err := esigntest.Sign(key, []byte(nonce))
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := esign.Verifier{DB: h.db, Nonces: "api_idempotency", Taxpayers: "taxpayers"}.Prove(context.Background(),
		esign.Claim{Tenant: "alpha", CaseID: caseID, Certificate: cert, Nonce: nonce, Signature: sig})
	if err != nil {
		h.t.Fatal(err)
	}
	return p.Proof()
}

// An e-signature submission reaches the check only with the proof the API's verifier
// produced for this case: without one it is refused without a check; with a made-up one
// (signed by the right key, but never issued and spent for the case) or another case's
// the esign check refuses it. Each rejects the case: no re-submission mends a missing proof.
func TestIdentityESignatureWithoutAVerifiedProofIsRefused(t *testing.T) {
	for name, proof := range map[string]func(h *idHarness, cert []byte, key *ecdsa.PrivateKey) *contract.ESignProof{
		"no proof": func(*idHarness, []byte, *ecdsa.PrivateKey) *contract.ESignProof { return nil },
		"made-up proof": func(h *idHarness, _ []byte, key *ecdsa.PrivateKey) *contract.ESignProof {
			sig, _ := esigntest.Sign(key, []byte("never-issued"))
			return &contract.ESignProof{Nonce: "never-issued", Signature: sig, Tenant: "alpha", CaseID: idCase}
		},
		"another case's proof, relabelled": func(h *idHarness, cert []byte, key *ecdsa.PrivateKey) *contract.ESignProof {
			p := h.prove(cert, key, "n-other", "identity-0c6f6f9e-0000-4000-8000-000000000099")
			p.CaseID = idCase
			return p
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newIDHarness(t, registered())
			now := time.Now()
			cert, key, err := h.ca.IssueWithKey(10, testINN, idSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			in := idInput(contract.MethodESignature)
			in.Submission.Certificate, in.Submission.ESignProof = cert, proof(h, cert, key)
			st := h.run(in)
			if st.Status != IdentityRejected || len(st.Reasons) == 0 || !strings.Contains(st.Reasons[0], "proof") {
				t.Fatalf("got %s %v", st.Status, st.Reasons)
			}
			if h.confirmed().Confirmed {
				t.Fatal("the taxpayer was confirmed")
			}
		})
	}
}

// Start with your own certificate (a mismatch), then re-submit the victim's without a
// proof: the re-submission is refused (the validator: nothing is recorded), and the case
// takes only a certificate with the proof the verifier produced for it.
func TestIdentityResubmittedCertificateNeedsItsProof(t *testing.T) {
	h := newIDHarness(t, registered())
	now := time.Now()
	own, ownKey, _ := h.ca.IssueWithKey(12, "7707083893", idSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	victim, key, _ := h.ca.IssueWithKey(13, testINN, idSNILS, now.AddDate(-1, 0, 0), now.AddDate(1, 0, 0))
	in := idInput(contract.MethodESignature)
	in.Submission.Certificate, in.Submission.ESignProof = own, h.prove(own, ownKey, "n-own", idCase)
	h.sendIdentity(10*time.Minute, IdentityUpdateResubmit, IdentitySubmission{Certificate: victim}, msgOutcome{wrong: "proof of possession"})
	foreign := h.prove(victim, key, "n-foreign", "identity-0c6f6f9e-0000-4000-8000-000000000099")
	h.sendIdentity(20*time.Minute, IdentityUpdateResubmit, IdentitySubmission{Certificate: victim, ESignProof: foreign}, msgOutcome{wrong: "proof of possession"})
	h.sendIdentity(30*time.Minute, IdentityUpdateResubmit, IdentitySubmission{Certificate: victim, ESignProof: h.prove(victim, key, "n-victim", idCase)},
		msgOutcome{status: IdentityNeedsDocuments})
	st := h.run(in)
	if st.Status != IdentityVerified || st.Attempts != 2 {
		t.Fatalf("got %s after %d attempts: %v", idStatuses(st), st.Attempts, st.Reasons)
	}
}

// TestIdentityByBankFlagOfCasesInFlight: a case started before assertions (its input has
// none) keeps the registry flag it started with.
func TestIdentityByBankFlagOfCasesInFlight(t *testing.T) {
	tp := registered()
	tp.BankIdentified = true
	h := newIDHarness(t, tp)
	if st := h.run(idInput(contract.MethodBank)); st.Status != IdentityVerified {
		t.Fatalf("got %+v", st)
	}
	h = newIDHarness(t, registered())
	in := idInput(contract.MethodBank)
	in.Policy.MaxAttempts = 1
	if st := h.run(in); st.Status != IdentityRejected || !strings.Contains(st.Reasons[0], "no partner bank") {
		t.Fatalf("got %+v", st)
	}
}

func TestIdentityByVideoGoesToOperator(t *testing.T) {
	h := newIDHarness(t, registered())
	h.review(time.Hour, IdentityReview{Approve: true, Operator: "op-3"}, false)
	st := h.run(idInput(contract.MethodVideo))
	if idStatuses(st) != "received>checking>manual_review>verified" || st.ReviewedBy != "op-3" || h.confirmed().ConfirmedMethod != "video" {
		t.Fatalf("got %s by %s", idStatuses(st), st.ReviewedBy)
	}
}

func TestIdentityMismatchThenResubmissionSucceeds(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person.PassportNumber = "654321"
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if st.Status != IdentityNeedsDocuments || len(st.Reasons) == 0 || !strings.Contains(st.Reasons[0], "passport series or number") {
			t.Errorf("after the mismatch: %s %v", st.Status, st.Reasons)
		}
		h.upload("p2", jpegOf(1200, 800))
		h.env.SignalWorkflow(IdentitySignalResubmit, IdentitySubmission{Person: person(), Documents: []DocumentRef{{DocID: "p2"}}})
	}, 2*24*time.Hour)
	st := h.run(in)
	if idStatuses(st) != "received>checking>needs_documents>checking>verified" || st.Attempts != 2 {
		t.Fatalf("got %s after %d attempts", idStatuses(st), st.Attempts)
	}
	var mismatch int
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		_ = store.Unmarshal(item, &n)
		if n.Template == "identity.mismatch" && strings.Contains(n.Params["reasons"], "passport") {
			mismatch++
		}
	}
	if mismatch != 1 {
		t.Fatalf("the taxpayer was told the reason %d times", mismatch)
	}
}

func TestIdentityUnreadableImageIsAReason(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("small", jpegOf(300, 200))
	in := idInput(contract.MethodDocuments, "small")
	in.Policy.MaxAttempts = 1
	st := h.run(in)
	if st.Status != IdentityRejected || !strings.Contains(st.Reasons[0], "too small to read") {
		t.Fatalf("got %s %v", st.Status, st.Reasons)
	}
}

func TestIdentityAttemptsExhausted(t *testing.T) {
	h := newIDHarness(t, registered())
	bad := person()
	bad.BirthDate = "13.04.1985"
	h.upload("p1", jpegOf(1200, 800))
	for i, at := range []time.Duration{24 * time.Hour, 48 * time.Hour} {
		doc := fmt.Sprintf("p%d", i+2)
		h.env.RegisterDelayedCallback(func() {
			h.upload(doc, jpegOf(1200, 800))
			h.env.SignalWorkflow(IdentitySignalResubmit, IdentitySubmission{Person: bad, Documents: []DocumentRef{{DocID: doc}}})
		}, at)
	}
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person = bad
	st := h.run(in)
	if st.Status != IdentityRejected || st.Attempts != 3 || !strings.Contains(st.Reasons[0], "attempts exhausted") {
		t.Fatalf("got %s after %d: %v", st.Status, st.Attempts, st.Reasons)
	}
	if h.confirmed().Confirmed {
		t.Fatal("confirmed after a rejection")
	}
}

func TestIdentityResubmissionTimeoutExpires(t *testing.T) {
	h := newIDHarness(t, registered())
	in := idInput(contract.MethodDocuments) // no documents at all
	st := h.run(in)
	if idStatuses(st) != "received>needs_documents>expired" || st.Attempts != 0 {
		t.Fatalf("got %s", idStatuses(st))
	}
}

func TestIdentityInconclusiveRejectedByOperator(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person.Surname = "Семеног"                                    // one letter off: an operator looks
	h.review(time.Hour, IdentityReview{Approve: false, Operator: "op-3"}, true) // no reason: refused
	h.review(2*time.Hour, IdentityReview{Approve: false, Operator: "op-3", Reason: "the photo does not match"}, false)
	st := h.run(in)
	if idStatuses(st) != "received>checking>manual_review>rejected" || st.Reasons[0] != "the photo does not match" || st.Escalated {
		t.Fatalf("got %s %v escalated %v", idStatuses(st), st.Reasons, st.Escalated)
	}
}

func TestIdentityReviewSLAEscalates(t *testing.T) {
	h := newIDHarness(t, registered())
	h.review(10*24*time.Hour, IdentityReview{Approve: true, Operator: "op-9"}, false)
	st := h.run(idInput(contract.MethodVideo))
	if st.Status != IdentityVerified || !st.Escalated || st.ReviewDue == nil {
		t.Fatalf("got %+v", st)
	}
}

func TestIdentityConsentRevokedMidwayAndRestored(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person.PassportNumber = "000000"
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: false})
		h.upload("p2", jpegOf(1200, 800))
		h.env.SignalWorkflow(IdentitySignalResubmit, IdentitySubmission{Person: person(), Documents: []DocumentRef{{DocID: "p2"}}})
	}, 24*time.Hour)
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if !st.Paused || st.Status != IdentityNeedsDocuments {
			t.Errorf("with consent revoked: paused %v status %s", st.Paused, st.Status)
		}
		h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: true})
	}, 5*24*time.Hour)
	st := h.run(in)
	if st.Status != IdentityVerified || st.Paused {
		t.Fatalf("got %s paused %v", st.Status, st.Paused)
	}
	journal := h.db.Items("audit")
	var paused, resumed bool
	for _, item := range journal {
		var e contract.AuditEntry
		_ = store.Unmarshal(item, &e)
		paused = paused || e.Action == "paused"
		resumed = resumed || e.Action == "resumed"
	}
	if !paused || !resumed {
		t.Fatal("the pause is not in the journal")
	}
}

func TestIdentityRefusedWithoutConsent(t *testing.T) {
	tp := registered()
	tp.Consent = false
	h := newIDHarness(t, tp)
	st := h.run(idInput(contract.MethodBank))
	if st.Status != IdentityRejected || !strings.Contains(st.Reasons[0], "consent") {
		t.Fatalf("got %+v", st)
	}
}

func TestIdentityCancelled(t *testing.T) {
	h := newIDHarness(t, registered())
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(IdentityVerification, idInput(contract.MethodVideo))
	if err := h.env.GetWorkflowError(); err == nil || h.confirmed().Confirmed {
		t.Fatalf("err %v", err)
	}
}

func TestIdentityDocumentsArriveAfterStart(t *testing.T) {
	h := newIDHarness(t, registered())
	h.env.RegisterDelayedCallback(func() {
		h.upload("scan", jpegOf(1200, 800))
		h.env.SignalWorkflow(IdentitySignalDocument, DocumentRef{DocID: "scan"})
	}, time.Hour)
	st := h.run(idInput(contract.MethodDocuments))
	if idStatuses(st) != "received>needs_documents>checking>verified" || st.Attempts != 1 {
		t.Fatalf("got %s after %d attempts", idStatuses(st), st.Attempts)
	}
}

// The registry match failing transiently for good exhausts its retries; nothing is confirmed.
func TestIdentityRetriesExhausted(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	handlers := realHandlers(h.db, h.s3)
	handlers[contract.FnIdentityMatch] = fnHandler(func(context.Context, contract.IdentityMatchInput) (contract.IdentityMatchResult, error) {
		return contract.IdentityMatchResult{}, errors.New("registry timeout")
	})
	var s testsuite.WorkflowTestSuite
	h.env = newTestEnv(&s)
	registerActivities(h.env, handlers)
	h.env.ExecuteWorkflow(IdentityVerification, idInput(contract.MethodDocuments, "p1"))
	if appErr := activityCause(t, h.env.GetWorkflowError()); appErr.Type() != "InternalError" || h.confirmed().Confirmed {
		t.Fatalf("got %v, confirmed %v", appErr, h.confirmed().Confirmed)
	}
}

// Withdrawn consent stops processing, and personal data are destroyed within 30 days of
// the withdrawal (152-FZ art. 21 p.5): consent not given again within 29 days closes the
// case and deletes its stored documents and waiting uploads.
func TestIdentityConsentWithdrawnNotRestoredClosesAndDestroys152FZArt21p5(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person.PassportNumber = "000000" // a mismatch: the case waits for a re-submission
	start := time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)
	h.env.SetStartTime(start)
	withdrawn := 12 * time.Hour
	h.env.RegisterDelayedCallback(func() {
		h.upload("late", jpegOf(1200, 800)) // an upload never signalled: it goes too
		h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: false})
	}, withdrawn)
	h.env.RegisterDelayedCallback(func() {
		st := h.query()
		if !st.Paused || st.Status != IdentityNeedsDocuments || st.DestroyBy == nil || !st.DestroyBy.Equal(start.Add(withdrawn+DefaultConsentWait)) {
			t.Errorf("paused: %v %s destroy by %v", st.Paused, st.Status, st.DestroyBy)
		}
		if len(h.deletes) != 0 || h.s3.Objects[document.StoredKey(idCase, "p1")] == nil {
			t.Error("documents destroyed before the term")
		}
	}, withdrawn+DefaultConsentWait-time.Minute)
	st := h.run(in)
	last := st.History[len(st.History)-1]
	if st.Status != IdentityClosed || last.To != IdentityClosed || !strings.Contains(last.Reason, "consent withdrawn") ||
		!strings.Contains(last.Reason, "152-FZ art. 21 p.5") || st.Paused {
		t.Fatalf("got %s, last %+v", idStatuses(st), last)
	}
	// the timer fired at the end of the wait, inside the 30 days the law allows
	if at := h.env.Now(); !at.Equal(start.Add(withdrawn+DefaultConsentWait)) || !at.Before(start.Add(withdrawn+30*24*time.Hour)) {
		t.Fatalf("closed at %s", at)
	}
	if len(h.deletes) != 1 || h.deletes[0] != idCase {
		t.Fatalf("deletions %v", h.deletes)
	}
	for k := range h.s3.Objects {
		if strings.Contains(k, idCase) {
			t.Fatalf("%s survived", k)
		}
	}
	if h.confirmed().Confirmed {
		t.Fatal("confirmed")
	}
}

// Consent withdrawn while the case waits for an operator: the operator may not decide
// meanwhile; given again in time, the review goes on.
func TestIdentityConsentWithdrawnDuringReviewBlocksTheOperator(t *testing.T) {
	h := newIDHarness(t, registered())
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: false}) }, time.Hour)
	h.review(2*time.Hour, IdentityReview{Approve: true, Operator: "op-1"}, true)
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: true}) }, 3*24*time.Hour)
	h.review(4*24*time.Hour, IdentityReview{Approve: true, Operator: "op-1"}, false)
	st := h.run(idInput(contract.MethodVideo))
	if st.Status != IdentityVerified || st.Paused || len(h.deletes) != 0 {
		t.Fatalf("got %s paused %v deletes %v", idStatuses(st), st.Paused, h.deletes)
	}
}

// msgOutcome is what a test expects of one update: accepted with a result status, refused
// as a late message in a status, or refused otherwise (a wrong message) with a text.
type msgOutcome struct {
	status string // accepted: the status the update answers with
	late   string // refused as late (AsLate): the case's status
	wrong  string // refused, not as late: a part of the message
}

// checkOutcome asserts an update's result AND its error against the expectation.
func checkOutcome(t *testing.T, what string, gotStatus string, err error, want msgOutcome) {
	t.Helper()
	late, isLate := AsLate(err)
	switch {
	case want.status != "":
		if err != nil || gotStatus != want.status {
			t.Errorf("%s: got %q, %v; want %q and no error", what, gotStatus, err, want.status)
		}
	case want.late != "":
		// a conflict that is not about the status carries it too; wrong then names the refusal
		if !isLate || late.Status != want.late || !strings.Contains(err.Error(), want.wrong) {
			t.Errorf("%s: got %q, %v; want refused as late in %q", what, gotStatus, err, want.late)
		}
	default:
		if err == nil || isLate || !strings.Contains(err.Error(), want.wrong) {
			t.Errorf("%s: got %q, %v; want refused (not late) with %q", what, gotStatus, err, want.wrong)
		}
	}
}

// sendIdentity sends an update at a time and checks its outcome; the test fails if the
// update is never answered.
func (h *idHarness) sendIdentity(at time.Duration, name string, arg any, want msgOutcome) {
	h.updates++
	id := fmt.Sprintf("u%d", h.updates)
	answered := false
	h.t.Cleanup(func() {
		if !answered {
			h.t.Errorf("update %s never answered", name)
		}
	})
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{OnAccept: func() {},
			OnReject: func(err error) { answered = true; checkOutcome(h.t, name, "", err, want) },
			OnComplete: func(v any, err error) {
				answered = true
				st, _ := v.(IdentityStatus)
				checkOutcome(h.t, name, st.Status, err, want)
			}}, arg)
	}, at)
}

// Every message in every waiting state: right, wrong and late. Each update's result and
// error are asserted; a late one is refused with the status the case is in.
func TestIdentityMessagesInEveryWaitingState(t *testing.T) {
	review := IdentityReview{Approve: true, Operator: "op-1"}
	states := map[string]func(h *idHarness) IdentityWorkflowInput{
		// documents without an upload: the case waits for one
		IdentityNeedsDocuments: func(h *idHarness) IdentityWorkflowInput { return idInput(contract.MethodDocuments) },
		// a surname one letter off: inconclusive, an operator reviews
		IdentityManualReview: func(h *idHarness) IdentityWorkflowInput {
			h.upload("p1", jpegOf(1200, 800))
			in := idInput(contract.MethodDocuments, "p1")
			in.Submission.Person.Surname = "Семеног"
			return in
		},
		// consent withdrawn while the case waits for a re-submission: it pauses and then
		// closes; a re-submission meanwhile is refused, not taken and then dropped
		"withdrawn": func(h *idHarness) IdentityWorkflowInput {
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(IdentitySignalConsent, IdentityConsent{Granted: false})
			}, 10*time.Minute)
			return idInput(contract.MethodDocuments)
		},
		// verified: the confirmed mark takes an hour to set; messages meanwhile are late
		"ended": func(h *idHarness) IdentityWorkflowInput {
			h.env.OnActivity("ConfirmIdentity", mock.Anything, mock.Anything).After(time.Hour).Return(contract.IdentityConfirmResult{}, nil)
			h.upload("p1", jpegOf(1200, 800))
			return idInput(contract.MethodDocuments, "p1")
		},
	}
	for _, c := range []struct {
		state, name string
		arg         any
		want        msgOutcome
	}{
		{IdentityNeedsDocuments, IdentityUpdateDocument, DocumentRef{DocID: "scan"}, msgOutcome{status: IdentityNeedsDocuments}},
		{IdentityNeedsDocuments, IdentityUpdateDocument, DocumentRef{}, msgOutcome{wrong: "doc_id"}},
		{IdentityNeedsDocuments, IdentityUpdateResubmit, IdentitySubmission{Documents: []DocumentRef{{DocID: "scan"}}}, msgOutcome{status: IdentityNeedsDocuments}},
		{IdentityNeedsDocuments, IdentityUpdateResubmit, IdentitySubmission{}, msgOutcome{wrong: "send corrected person data"}},
		{IdentityNeedsDocuments, IdentityUpdateReview, review, msgOutcome{late: IdentityNeedsDocuments}},
		{IdentityManualReview, IdentityUpdateReview, review, msgOutcome{status: IdentityVerified}},
		{IdentityManualReview, IdentityUpdateReview, IdentityReview{Approve: false, Operator: "op-1"}, msgOutcome{wrong: "reason"}},
		{IdentityManualReview, IdentityUpdateDocument, DocumentRef{DocID: "scan"}, msgOutcome{late: IdentityManualReview}},
		{IdentityManualReview, IdentityUpdateResubmit, IdentitySubmission{Person: person()}, msgOutcome{late: IdentityManualReview}},
		{"withdrawn", IdentityUpdateResubmit, IdentitySubmission{Person: person()}, msgOutcome{late: IdentityNeedsDocuments}},
		{"ended", IdentityUpdateDocument, DocumentRef{DocID: "scan"}, msgOutcome{late: IdentityVerified}},
		{"ended", IdentityUpdateResubmit, IdentitySubmission{Person: person()}, msgOutcome{late: IdentityVerified}},
		{"ended", IdentityUpdateReview, review, msgOutcome{late: IdentityVerified}},
	} {
		t.Run(c.state+"/"+c.name+"/"+fmt.Sprint(c.want), func(t *testing.T) {
			h := newIDHarness(t, registered())
			in := states[c.state](h)
			h.env.RegisterDelayedCallback(func() {
				if st := h.query(); c.state != "ended" && c.state != "withdrawn" && st.Status != c.state {
					t.Errorf("the case is %s, not %s", st.Status, c.state)
				}
				h.upload("scan", jpegOf(1200, 800))
			}, 20*time.Minute)
			h.sendIdentity(30*time.Minute, c.name, c.arg, c.want)
			h.env.ExecuteWorkflow(IdentityVerification, in)
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("the case did not end")
			}
		})
	}
}

// A document signalled (the API before the update) after the decision is taken on the
// main coroutine and counted as late, not left on the channel or silently taken.
func TestIdentityDocumentSignalAfterTheDecisionIsCountedLate(t *testing.T) {
	h := newIDHarness(t, registered())
	h.env.OnActivity("ConfirmIdentity", mock.Anything, mock.Anything).After(time.Hour).Return(contract.IdentityConfirmResult{}, nil)
	h.upload("p1", jpegOf(1200, 800))
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(IdentitySignalDocument, DocumentRef{DocID: "late"}) }, 30*time.Minute)
	st := h.run(idInput(contract.MethodDocuments, "p1"))
	if st.Status != IdentityVerified || st.LateSignals != 1 || len(st.Documents) != 1 {
		t.Fatalf("got %s, %d late signals, %d documents", st.Status, st.LateSignals, len(st.Documents))
	}
}

// An operator's review accepted before the case fails is answered (with the status), not
// left waiting for a status the failed case never reaches.
func TestIdentityReviewAnsweredWhenTheCaseFails(t *testing.T) {
	h := newIDHarness(t, registered())
	h.env.OnActivity("ConfirmIdentity", mock.Anything, mock.Anything).
		Return(contract.IdentityConfirmResult{}, temporal.NewNonRetryableApplicationError("registry refused", "InternalError", nil))
	h.sendIdentity(time.Hour, IdentityUpdateReview, IdentityReview{Approve: true, Operator: "op-1"}, msgOutcome{late: IdentityManualReview})
	h.env.ExecuteWorkflow(IdentityVerification, idInput(contract.MethodVideo))
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() == nil {
		t.Fatalf("want the case failed, got %v", h.env.GetWorkflowError())
	}
}

// An escalated operator review not decided within ReviewExpireWait expires the case.
func TestIdentityEscalatedReviewExpires(t *testing.T) {
	h := newIDHarness(t, registered())
	st := h.run(idInput(contract.MethodVideo))
	if idStatuses(st) != "received>checking>manual_review>expired" || !st.Escalated || st.ExpiresAt == nil || !h.env.Now().Equal(*st.ExpiresAt) {
		t.Fatalf("got %s, escalated %v, expires %v, now %s", idStatuses(st), st.Escalated, st.ExpiresAt, h.env.Now())
	}
	if last := st.History[len(st.History)-1]; !strings.Contains(last.Reason, "no operator decision") {
		t.Fatalf("the journal says %q", last.Reason)
	}
}

// A document sent while the automatic check runs could only count if the check failed;
// when it ends verified or with an operator, nothing reads it. So it is refused as late
// (naming checking) rather than taken and silently dropped; and an old document signal
// that comes during the operator's review is counted late, not kept unread.
func TestIdentityDocumentDuringTheCheckIsNotSilentlyDropped(t *testing.T) {
	h := newIDHarness(t, registered())
	h.upload("p1", jpegOf(1200, 800))
	h.upload("scan", jpegOf(1200, 800))
	h.env.OnActivity("MatchIdentity", mock.Anything, mock.Anything).After(time.Hour).
		Return(contract.IdentityMatchResult{Outcome: contract.MatchInconclusive, Reasons: []string{"the photo is unclear"}}, nil)
	h.sendIdentity(30*time.Minute, IdentityUpdateDocument, DocumentRef{DocID: "scan"}, msgOutcome{late: IdentityChecking})
	h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(IdentitySignalDocument, DocumentRef{DocID: "scan"}) }, 2*time.Hour)
	h.review(3*time.Hour, IdentityReview{Approve: true, Operator: "op-1"}, false)
	st := h.run(idInput(contract.MethodDocuments, "p1"))
	if idStatuses(st) != "received>checking>manual_review>verified" || len(st.Documents) != 1 || st.LateSignals != 1 {
		t.Fatalf("got %s, %d documents, %d late signals", idStatuses(st), len(st.Documents), st.LateSignals)
	}
}

// An operator's review accepted in the same instant the case is cancelled is answered as
// late with the case's status (its handler waits on a disconnected context), not with a
// cancellation error.
func TestIdentityReviewAnsweredWhenTheCaseIsCancelled(t *testing.T) {
	h := newIDHarness(t, registered())
	h.sendIdentity(time.Hour, IdentityUpdateReview, IdentityReview{Approve: true, Operator: "op-1"}, msgOutcome{late: IdentityManualReview})
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(IdentityVerification, idInput(contract.MethodVideo))
	if !h.env.IsWorkflowCompleted() || h.env.GetWorkflowError() == nil || h.confirmed().Confirmed {
		t.Fatalf("want the case cancelled, got %v", h.env.GetWorkflowError())
	}
}

// A re-submission counts from when the API accepted it (the time it stamps in the
// message), not from the workflow task that takes it: a reset case that takes the message
// again computes the same re-submission deadline, and writes the same step.
func TestIdentityResubmissionCountsFromItsMessage(t *testing.T) {
	h := newIDHarness(t, registered())
	bad := person()
	bad.BirthDate = "13.04.1985"
	h.upload("p1", jpegOf(1200, 800))
	var accepted time.Time
	h.env.RegisterDelayedCallback(func() {
		accepted = h.env.Now().Add(-3 * time.Hour) // accepted three hours before the case takes it
		h.upload("p2", jpegOf(1200, 800))
		h.env.SignalWorkflow(IdentitySignalResubmit, IdentitySubmission{At: accepted, Person: bad, Documents: []DocumentRef{{DocID: "p2"}}})
	}, 24*time.Hour)
	var by *time.Time
	var status string
	h.env.RegisterDelayedCallback(func() { st := h.query(); by, status = st.ResubmitBy, st.Status }, 25*time.Hour)
	in := idInput(contract.MethodDocuments, "p1")
	in.Submission.Person = bad
	in.Policy.MaxAttempts = 3
	h.run(in)
	if want := accepted.Add(in.Policy.ResubmitWait); status != IdentityNeedsDocuments || by == nil || !by.Equal(want) {
		t.Fatalf("after the re-submission: %s, re-submit by %v; want %v (from the message's time)", status, by, want)
	}
}
