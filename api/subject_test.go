package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/subject"
	"github.com/taxflow/taxflow/workflows"
)

const subjectINN = "500100732259"

func keyVersion(v int) string {
	return fmt.Sprintf("v%d:%s", v, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(v)}, 32)))
}

// testSubjects is a keyring whose current version is current and whose previous
// versions are the ones below it, newest first (the state after current-1 rotations).
func testSubjects(current int) subject.Keyring {
	var prev []string
	for v := current - 1; v >= 1; v-- {
		prev = append(prev, keyVersion(v))
	}
	k, err := subject.Parse(keyVersion(current), strings.Join(prev, ","))
	if err != nil {
		panic(err)
	}
	return k
}

// accountsTemporal is a Temporal client that knows which account workflows exist and
// records the signal-with-starts it is sent.
type accountsTemporal struct {
	client.Client
	existing  map[string]bool
	describes []string
	describe  error // when set, every describe fails with it
	started   []client.StartWorkflowOptions
}

func (f *accountsTemporal) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.describes = append(f.describes, id)
	if f.describe != nil {
		return nil, f.describe
	}
	if !f.existing[id] {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{}, nil
}

func (f *accountsTemporal) SignalWithStartWorkflow(_ context.Context, id, _ string, _ any, opts client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	f.started = append(f.started, opts)
	f.existing[id] = true
	return nil, nil
}

// event sends one failed login for inn through the account-event handler.
func (f *accountsTemporal) event(t *testing.T, s *Server, inn string) (id, subject string) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/accounts/"+inn+"/events", strings.NewReader(`{"event_id":"e1","type":"login_failed"}`))
	req.SetPathValue("inn", inn)
	rec := httptest.NewRecorder()
	s.accountEvent(rec, req)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("account event: %d %s", rec.Code, rec.Body)
	}
	last := f.started[len(f.started)-1]
	got, _ := last.TypedSearchAttributes.GetKeyword(workflows.SearchSubject)
	return last.ID, got
}

// A rotation of the subject key neither loses an account nor starts a second one: the
// account keeps the id (and subject) it was created under; a taxpayer with no account
// yet gets one under the new version.
func TestAccountIDStableAcrossSubjectKeyRotation(t *testing.T) {
	tc := &accountsTemporal{existing: map[string]bool{}}
	s := &Server{Temporal: tc, Log: zerolog.Nop(), Subjects: testSubjects(1), AccountPolicy: workflows.DefaultAccountPolicy()}
	before, subj := tc.event(t, s, subjectINN)
	if !strings.HasPrefix(subj, "s1.") || before != workflows.AccountID(subj) {
		t.Fatalf("before the rotation: id %s, subject %s", before, subj)
	}
	if len(tc.describes) != 0 {
		t.Fatalf("one key version needs no lookup, made %v", tc.describes)
	}

	s.Subjects = testSubjects(2) // v2 current, v1 kept for lookups
	after, subj2 := tc.event(t, s, subjectINN)
	if after != before || subj2 != subj {
		t.Fatalf("after the rotation the account moved: %s (%s), was %s (%s)", after, subj2, before, subj)
	}
	id, _, err := s.AccountID(context.Background(), subjectINN)
	if err != nil || id != before {
		t.Fatalf("AccountID %s, %v: want %s", id, err, before)
	}

	other := domain.CompleteINN12("7707083894")
	newID, newSubj := tc.event(t, s, other)
	if !strings.HasPrefix(newSubj, "s2.") || newID != workflows.AccountID(newSubj) {
		t.Fatalf("a new account after the rotation: %s (%s), want the current version", newID, newSubj)
	}
	if n := len(tc.existing); n != 2 {
		t.Fatalf("%d account workflows for 2 taxpayers", n)
	}

	// A third version: the v1 account is still found (through v3, v2, then v1).
	s.Subjects = testSubjects(3)
	if again, _ := tc.event(t, s, subjectINN); again != before {
		t.Fatalf("after a second rotation: %s, want %s", again, before)
	}
}

// A lookup that cannot tell (Temporal unavailable) answers 503 and starts nothing:
// guessing the current version could start a second account.
func TestAccountLookupFailureStartsNothing(t *testing.T) {
	tc := &accountsTemporal{existing: map[string]bool{}, describe: serviceerror.NewUnavailable("down")}
	s := &Server{Temporal: tc, Log: zerolog.Nop(), Subjects: testSubjects(2), AccountPolicy: workflows.DefaultAccountPolicy()}
	req := httptest.NewRequest("POST", "/v1/accounts/"+subjectINN+"/events", strings.NewReader(`{"event_id":"e1","type":"login_failed"}`))
	req.SetPathValue("inn", subjectINN)
	rec := httptest.NewRecorder()
	s.accountEvent(rec, req)
	if rec.Code != http.StatusServiceUnavailable || len(tc.started) != 0 {
		t.Fatalf("got %d, %d starts", rec.Code, len(tc.started))
	}
	if strings.Contains(rec.Body.String(), subjectINN) {
		t.Fatal("the answer repeats the INN")
	}
}

// The search for a taxpayer's cases asks for every known version.
func TestSubjectQueryCoversEveryVersion(t *testing.T) {
	s := &Server{Subjects: testSubjects(2)}
	q := s.subjectQuery(subjectINN)
	for _, v := range s.Subjects.Values(subjectINN) {
		if !strings.Contains(q, "'"+v+"'") {
			t.Errorf("query %q lacks %s", q, v)
		}
	}
	if !strings.HasPrefix(q, "TaxflowSubject IN (") || strings.Contains(q, subjectINN) {
		t.Fatalf("query %q", q)
	}
	if s.Subject(subjectINN) != s.Subjects.Values(subjectINN)[0] || !strings.HasPrefix(s.Subject(subjectINN), "s2.") {
		t.Fatalf("new cases get %q", s.Subject(subjectINN))
	}
}

// The API's subjects come from TAXFLOW_SUBJECT_KEY alone: a new payload key changes
// neither a subject nor an account id.
func TestPayloadKeyRotationChangesNoSubject(t *testing.T) {
	build := func(payloadKey string) *Server {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"AWS_REGION": "eu-central-1", "TAXFLOW_PAYLOAD_KEY": payloadKey, "TAXFLOW_SUBJECT_KEY": keyVersion(1)}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		return New(cfg, &awsclient.Clients{}, nil, zerolog.Nop())
	}
	a := build(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
	b := build(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32)))
	if a.Subject(subjectINN) != b.Subject(subjectINN) {
		t.Fatal("a payload key rotation changed the subject")
	}
	ida, _, _ := a.AccountID(context.Background(), subjectINN)
	idb, _, _ := b.AccountID(context.Background(), subjectINN)
	if ida != idb {
		t.Fatalf("a payload key rotation moved the account: %s, %s", ida, idb)
	}
}
