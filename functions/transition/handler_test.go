package transition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/audit"
	"github.com/taxflow/taxflow/functions/cases"
	"github.com/taxflow/taxflow/functions/delivery"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/store/storetest"
)

const caseID = "refund-1"

var at = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func newHandler() (lambda.Handler, *storetest.DB) {
	db := storetest.New(map[string]storetest.Key{
		"t-audit": {PK: "case_id", SK: "entry_id"}, "t-cases": {PK: "case_id"}, "t-outbox": {PK: "notification_id"}})
	return lambda.NewHandler(fn.Handler(Handler{DB: db, Journal: "t-audit", Cases: "t-cases", Outbox: "t-outbox"}.Record)), db
}

// step is a status transition from → to at seq, with its projection and a notification.
func step(seq int64, from, to string) contract.RecordInput {
	return contract.RecordInput{CaseID: caseID, Seq: seq,
		Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "status_changed", From: from, To: to}},
		Case:    &contract.CaseRecord{Process: "refund", Status: to, Label: to, Version: seq, UpdatedAt: at, Amounts: map[string]int64{"claimed": 100}},
		Notifications: []contract.Notification{{Recipient: "taxpayer", INN: "500100732259", Template: "refund." + to, At: at,
			Params: map[string]string{"label": to}}},
	}
}

func invoke(t *testing.T, h lambda.Handler, in contract.RecordInput) (contract.RecordResult, error) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(context.Background(), b)
	if err != nil {
		return contract.RecordResult{}, err
	}
	var res contract.RecordResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func errType(err error) string {
	var ie messages.InvokeResponse_Error
	if errors.As(err, &ie) {
		return ie.Type
	}
	return ""
}

func TestRecordWritesTheStepInOneTransaction(t *testing.T) {
	h, db := newHandler()
	for seq, to := range []string{"received", "in_review", "approved"} {
		from := ""
		if seq > 0 {
			from = []string{"received", "in_review"}[seq-1]
		}
		res, err := invoke(t, h, step(int64(seq+1), from, to))
		if err != nil || res.Duplicate || res.Key != contract.RecordKey(caseID, int64(seq+1)) {
			t.Fatalf("step %d: %+v %v", seq+1, res, err)
		}
	}
	journal, err := audit.Journal(context.Background(), db, "t-audit", caseID)
	if err != nil || len(journal) != 3 {
		t.Fatalf("journal %+v %v", journal, err)
	}
	for i, e := range journal {
		if e.Seq != int64(i+1) || e.EntryID != contract.RecordKey(caseID, int64(i+1))+"/1" || e.CaseID != caseID {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	rec, found, err := cases.Get(context.Background(), db, "t-cases", caseID)
	if err != nil || !found || rec.Version != 3 || rec.Status != "approved" {
		t.Fatalf("projection %+v found %v err %v", rec, found, err)
	}
	outbox := db.Items("t-outbox")
	if len(outbox) != 3 {
		t.Fatalf("outbox holds %d notifications", len(outbox))
	}
	for _, it := range outbox {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil || n.State != "pending" || !strings.HasPrefix(n.NotificationID, caseID+"/") {
			t.Errorf("notification %+v %v", n, err)
		}
	}
	if db.Writes != 9 {
		t.Fatalf("%d item writes, want 9", db.Writes)
	}
}

func TestRecordRetryOfTheSameStepIsANoOp(t *testing.T) {
	h, db := newHandler()
	in := step(1, "", "received")
	if _, err := invoke(t, h, in); err != nil {
		t.Fatal(err)
	}
	// The retry carries other times (a reset runs the workflow clock again): the same step.
	again := step(1, "", "received")
	again.Entries[0].At, again.Case.UpdatedAt, again.Notifications[0].At = at.Add(time.Hour), at.Add(time.Hour), at.Add(time.Hour)
	res, err := invoke(t, h, again)
	if err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if db.Writes != 3 {
		t.Fatalf("the retry wrote: %d item writes", db.Writes)
	}
	// A retry of an earlier step after a later one is still recognised by its journal entry.
	if _, err := invoke(t, h, step(2, "received", "in_review")); err != nil {
		t.Fatal(err)
	}
	if res, err := invoke(t, h, step(1, "", "received")); err != nil || !res.Duplicate {
		t.Fatalf("late retry of step 1: %+v %v", res, err)
	}
}

func TestRecordSameKeyOtherContentIsKeyReused(t *testing.T) {
	h, db := newHandler()
	if _, err := invoke(t, h, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*contract.RecordInput){
		"other status":       func(in *contract.RecordInput) { in.Entries[0].To, in.Case.Status = "rejected", "rejected" },
		"other notification": func(in *contract.RecordInput) { in.Notifications[0].Template = "refund.other" },
		"other amount":       func(in *contract.RecordInput) { in.Case.Amounts["claimed"] = 101 },
		"one more entry": func(in *contract.RecordInput) {
			in.Entries = append(in.Entries, contract.AuditEntry{At: at, Actor: "system", Action: "document_accepted"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := step(1, "", "received")
			mutate(&in)
			_, err := invoke(t, h, in)
			if errType(err) != fnerr.TypeKeyReused || !fnerr.IsBusiness(errType(err)) {
				t.Fatalf("want KeyReused, got %v", err)
			}
		})
	}
	if db.Writes != 3 {
		t.Fatalf("a refused step wrote: %d item writes", db.Writes)
	}
}

func TestRecordStaleOrSkippedVersionIsConflict(t *testing.T) {
	h, db := newHandler()
	for seq, to := range []string{"received", "in_review", "approved"} {
		if _, err := invoke(t, h, step(int64(seq+1), "", to)); err != nil {
			t.Fatal(err)
		}
	}
	for name, in := range map[string]contract.RecordInput{
		// step 5 follows version 4, which is not there
		"skipped": step(5, "paid", "closed"),
		// a projection written over version 1 while the case is at version 3
		"stale": {CaseID: caseID, Seq: 2, Case: &contract.CaseRecord{Status: "in_review", UpdatedAt: at, Escalated: true}},
	} {
		if _, err := invoke(t, h, in); errType(err) != fnerr.TypeConflict {
			t.Fatalf("%s: want Conflict, got %v", name, err)
		}
	}
	// A later step of a case without a projection (a sequence that was not carried over).
	if _, err := invoke(t, h, contract.RecordInput{CaseID: "account-2", Seq: 8, Case: &contract.CaseRecord{Status: "active", UpdatedAt: at}}); errType(err) != fnerr.TypeConflict {
		t.Fatalf("step 8 of a new case: want Conflict, got %v", err)
	}
	// The first step of a case whose projection exists (a case id used twice).
	h2, db2 := newHandler()
	if _, err := store.PutNew(context.Background(), db2, "t-cases", "case_id", contract.CaseRecord{CaseID: caseID, Status: "paid", Version: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, h2, step(1, "", "received")); errType(err) != fnerr.TypeConflict {
		t.Fatalf("first step over an existing projection: %v", err)
	}
	if db.Writes != 9 || db2.Writes != 1 {
		t.Fatalf("refused steps wrote: %d, %d", db.Writes, db2.Writes)
	}
}

func TestRecordStepsWithoutStatusChange(t *testing.T) {
	h, db := newHandler()
	if _, err := invoke(t, h, step(1, "", "received")); err != nil {
		t.Fatal(err)
	}
	// several journal entries and no notification; then a projection only; then a
	// notification only (with the projection, as the workflows send it)
	two := contract.RecordInput{CaseID: caseID, Seq: 2, Entries: []contract.AuditEntry{
		{At: at, Actor: "system", Action: "document_accepted"}, {At: at, Actor: "system", Action: "payout_held", Reason: "requisites"}},
		Case: &contract.CaseRecord{Status: "received", UpdatedAt: at}}
	three := contract.RecordInput{CaseID: caseID, Seq: 3, Case: &contract.CaseRecord{Status: "received", UpdatedAt: at, Escalated: true}}
	four := contract.RecordInput{CaseID: caseID, Seq: 4, Case: &contract.CaseRecord{Status: "received", UpdatedAt: at, Escalated: true},
		Notifications: []contract.Notification{{Recipient: "supervisor", Template: "refund.deadline_passed", At: at}}}
	for _, in := range []contract.RecordInput{two, three, four} {
		if res, err := invoke(t, h, in); err != nil || res.Duplicate {
			t.Fatalf("seq %d: %+v %v", in.Seq, res, err)
		}
	}
	journal, _ := audit.Journal(context.Background(), db, "t-audit", caseID)
	if len(journal) != 3 || journal[1].Action != "document_accepted" || journal[2].EntryID != caseID+"/2/2" {
		t.Fatalf("journal %+v", journal)
	}
	rec, _, _ := cases.Get(context.Background(), db, "t-cases", caseID)
	if rec.Version != 4 || !rec.Escalated {
		t.Fatalf("projection %+v", rec)
	}
	if len(db.Items("t-outbox")) != 2 {
		t.Fatalf("outbox holds %d", len(db.Items("t-outbox")))
	}
	// A journal-only step (no projection: the self-check) is recognised on retry too.
	self := contract.RecordInput{CaseID: "selfcheck-1", Seq: 1, Entries: []contract.AuditEntry{{At: at, Actor: "system", Action: "selfcheck_passed"}}}
	for i, want := range []bool{false, true} {
		if res, err := invoke(t, h, self); err != nil || res.Duplicate != want {
			t.Fatalf("self-check write %d: %+v %v", i+1, res, err)
		}
	}
}

func TestRecordValidation(t *testing.T) {
	long := strings.Repeat("x", maxField+1)
	for name, c := range map[string]struct {
		mutate func(*contract.RecordInput)
		field  string
	}{
		"no case":             {func(in *contract.RecordInput) { in.CaseID = " " }, "case_id"},
		"slash in case":       {func(in *contract.RecordInput) { in.CaseID = "a/b" }, "case_id"},
		"seq 0":               {func(in *contract.RecordInput) { in.Seq = 0 }, "seq"},
		"nothing to write":    {func(in *contract.RecordInput) { in.Entries, in.Case, in.Notifications = nil, nil, nil }, "entries"},
		"no actor":            {func(in *contract.RecordInput) { in.Entries[0].Actor = "" }, "entries[0].actor"},
		"no time":             {func(in *contract.RecordInput) { in.Entries[0].At = time.Time{} }, "entries[0].at"},
		"reason too long":     {func(in *contract.RecordInput) { in.Entries[0].Reason = long }, "entries[0].reason"},
		"no status":           {func(in *contract.RecordInput) { in.Case.Status = "" }, "case.status"},
		"version not seq":     {func(in *contract.RecordInput) { in.Case.Version = 9 }, "case.version"},
		"bad recipient":       {func(in *contract.RecordInput) { in.Notifications[0].Recipient = "anyone" }, "notifications[0].recipient"},
		"taxpayer without id": {func(in *contract.RecordInput) { in.Notifications[0].INN = "" }, "notifications[0].inn"},
		"over 100 items": {func(in *contract.RecordInput) {
			for i := 0; i < 99; i++ {
				in.Entries = append(in.Entries, in.Entries[0])
			}
		}, "entries"},
	} {
		t.Run(name, func(t *testing.T) {
			h, db := newHandler()
			in := step(1, "", "received")
			c.mutate(&in)
			_, err := invoke(t, h, in)
			var ie messages.InvokeResponse_Error
			if !errors.As(err, &ie) || ie.Type != fnerr.TypeInvalidInput || !strings.HasPrefix(ie.Message, c.field+":") {
				t.Fatalf("want InvalidInput on %s, got %v", c.field, err)
			}
			if db.Writes != 0 {
				t.Fatal("an invalid step wrote")
			}
		})
	}
}

func TestRecordStoreDownIsRetryable(t *testing.T) {
	h, db := newHandler()
	db.Err = errors.New("connection refused")
	_, err := invoke(t, h, step(1, "", "received"))
	if errType(err) != fnerr.TypeInternal || fnerr.IsBusiness(errType(err)) {
		t.Fatalf("want a retryable internal error, got %v", err)
	}
}

func TestDigestIgnoresTimesNotContent(t *testing.T) {
	a, _ := Digest(step(1, "", "received"))
	later := step(1, "", "received")
	later.Entries[0].At = at.Add(time.Minute)
	b, _ := Digest(later)
	other := step(1, "", "received")
	other.Notifications[0].Params["label"] = "x"
	c, _ := Digest(other)
	if a != b || a == c {
		t.Fatalf("digests %s %s %s", a, b, c)
	}
}

// byAttempt is step seq as decided by a workflow task attempt that started at minute m
// of the workflow clock, written by a local activity.
func byAttempt(seq int64, from, to string, chain string, m int) contract.RecordInput {
	in := step(seq, from, to)
	in.Writer = &contract.RecordWriter{Chain: chain, At: at.Add(time.Duration(m) * time.Minute)}
	return in
}

// A local activity writes its step before its workflow task is committed. The attempt
// that failed (timed out, its worker killed) wrote step 2 as "approved" with two entries
// and two notifications; the next attempt, which saw a withdrawal come in meanwhile,
// decides step 2 as "withdrawn" with one of each. The later attempt replaces the earlier
// one's step whole: nothing of the attempt that never counted is left, and the earlier
// attempt, should it still be running, can no longer write over the later one.
func TestRecordLaterAttemptReplacesTheStepOfOneThatNeverCounted(t *testing.T) {
	h, db := newHandler()
	if _, err := invoke(t, h, byAttempt(1, "", "received", "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	zombie := byAttempt(2, "received", "approved", "run-1", 1)
	zombie.Entries = append(zombie.Entries, contract.AuditEntry{At: at, Actor: "system", Action: "reserved"})
	zombie.Notifications = append(zombie.Notifications, contract.Notification{Recipient: "supervisor", Template: "refund.approved", At: at})
	if _, err := invoke(t, h, zombie); err != nil {
		t.Fatal(err)
	}
	later := byAttempt(2, "received", "withdrawn", "run-1", 2)
	res, err := invoke(t, h, later)
	if err != nil || !res.Replaced || res.Duplicate {
		t.Fatalf("later attempt: %+v %v", res, err)
	}
	journal, err := audit.Journal(context.Background(), db, "t-audit", caseID)
	if err != nil || len(journal) != 2 || journal[1].To != "withdrawn" || journal[1].EntryID != caseID+"/2/1" {
		t.Fatalf("journal after the replacement: %+v %v", journal, err)
	}
	rec, _, err := cases.Get(context.Background(), db, "t-cases", caseID)
	if err != nil || rec.Status != "withdrawn" || rec.Version != 2 {
		t.Fatalf("projection %+v %v", rec, err)
	}
	var templates []string
	for _, it := range db.Items("t-outbox") {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil {
			t.Fatal(err)
		}
		templates = append(templates, n.NotificationID+"="+n.Template)
	}
	slices.Sort(templates)
	// the replacing step's notification has an id of its own (the earlier one's may have
	// been handed over: see TestRecordReplacementNeverSwallowsANotification)
	if want := []string{caseID + "/1/1=refund.received", caseID + "/2/1/" + fmt.Sprint(at.Add(2*time.Minute).UnixNano()) + "=refund.withdrawn"}; !slices.Equal(templates, want) {
		t.Fatalf("outbox after the replacement: %v, want %v", templates, want)
	}
	// The later attempt's own retry is a duplicate; the earlier attempt, still running,
	// is refused and writes nothing.
	if res, err := invoke(t, h, later); err != nil || !res.Duplicate {
		t.Fatalf("retry of the later attempt: %+v %v", res, err)
	}
	writes := db.Writes
	if _, err := invoke(t, h, zombie); errType(err) != fnerr.TypeKeyReused {
		t.Fatalf("the earlier attempt writing again: %v", err)
	}
	if db.Writes != writes {
		t.Fatal("the earlier attempt wrote over the later one")
	}
	// The next step follows the replaced one.
	if _, err := invoke(t, h, byAttempt(3, "withdrawn", "closed", "run-1", 3)); err != nil {
		t.Fatal(err)
	}
}

// Only an earlier attempt of the same workflow is replaced: another workflow's step, a
// step written by an activity task (no writer), a later attempt's step, a step the
// projection has moved past, and a step without a projection stay KeyReused, unchanged.
func TestRecordOnlyAnEarlierAttemptOfTheSameWorkflowIsReplaced(t *testing.T) {
	for name, c := range map[string]struct {
		first, second contract.RecordInput
		then          *contract.RecordInput
	}{
		"another workflow": {first: byAttempt(1, "", "received", "run-1", 0), second: byAttempt(1, "", "rejected", "run-2", 5)},
		"a reset run": {first: byAttempt(1, "", "received", "run-1", 0), second: func() contract.RecordInput {
			in := byAttempt(1, "", "rejected", "run-2", 5)
			in.Writer.Previous = "run-0"
			return in
		}()},
		"an activity task":    {first: step(1, "", "received"), second: byAttempt(1, "", "rejected", "run-1", 5)},
		"a later attempt":     {first: byAttempt(1, "", "received", "run-1", 5), second: byAttempt(1, "", "rejected", "run-1", 1)},
		"the same attempt":    {first: byAttempt(1, "", "received", "run-1", 5), second: byAttempt(1, "", "rejected", "run-1", 5)},
		"a step moved past":   {first: byAttempt(1, "", "received", "run-1", 0), then: ptr(byAttempt(2, "received", "in_review", "run-1", 0)), second: byAttempt(1, "", "rejected", "run-1", 5)},
		"no projection given": {first: byAttempt(1, "", "received", "run-1", 0), second: func() contract.RecordInput { in := byAttempt(1, "", "rejected", "run-1", 5); in.Case = nil; return in }()},
	} {
		t.Run(name, func(t *testing.T) {
			h, db := newHandler()
			if _, err := invoke(t, h, c.first); err != nil {
				t.Fatal(err)
			}
			if c.then != nil {
				if _, err := invoke(t, h, *c.then); err != nil {
					t.Fatal(err)
				}
			}
			writes := db.Writes
			if _, err := invoke(t, h, c.second); errType(err) != fnerr.TypeKeyReused {
				t.Fatalf("got %v, want KeyReused", err)
			}
			journal, _ := audit.Journal(context.Background(), db, "t-audit", caseID)
			if db.Writes != writes || journal[0].To != "received" {
				t.Fatalf("the refused step changed the record: %+v", journal)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRecordWriterMustNameTheAttempt(t *testing.T) {
	h, _ := newHandler()
	for field, w := range map[string]*contract.RecordWriter{
		"writer.chain": {Chain: " ", At: at}, "writer.at": {Chain: "run-1"},
	} {
		in := step(1, "", "received")
		in.Writer = w
		if _, err := invoke(t, h, in); errType(err) != fnerr.TypeInvalidInput || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestRecordWriterRoundTrip(t *testing.T) {
	w := contract.RecordWriter{Chain: "0b7e-run", At: at.Add(123 * time.Nanosecond)}
	got, ok := contract.ParseRecordWriter(w.String())
	if !ok || got != w {
		t.Fatalf("%q → %+v %v", w.String(), got, ok)
	}
	for _, bad := range []string{"", "x", "run|12", "|00000000000000000001", "run|0000000000000000000x"} {
		if _, ok := contract.ParseRecordWriter(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A step that the previous run's last attempt wrote and did not keep (it continued as new
// instead) is replaced by the run that continues it.
func TestRecordTheContinuingRunReplacesThePreviousRunsStep(t *testing.T) {
	h, _ := newHandler()
	if _, err := invoke(t, h, byAttempt(1, "", "received", "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	next := byAttempt(1, "", "rejected", "run-2", 5)
	next.Writer.Previous = "run-1"
	if res, err := invoke(t, h, next); err != nil || !res.Replaced {
		t.Fatalf("the continuing run: %+v %v", res, err)
	}
}

// The relay may hand the failed attempt's notification over before the next attempt
// replaces the step. A notification handed over is never written over or deleted — the
// channel de-duplicates by id, so the new one would never arrive: when the new step says
// something else, its notification gets an id of its own and is delivered; when it says
// the same, the one sent stands and nothing is sent again. A sent notification the new
// step has no more of stays, as sent.
func TestRecordReplacementNeverSwallowsANotification(t *testing.T) {
	h, db := newHandler()
	sweep := func() []string { return deliver(t, db) }
	if _, err := invoke(t, h, byAttempt(1, "", "received", "run-1", 0)); err != nil {
		t.Fatal(err)
	}
	failed := byAttempt(2, "received", "approved", "run-1", 1)
	failed.Notifications = append(failed.Notifications, contract.Notification{Recipient: "supervisor", Template: "refund.reserved", At: at})
	if _, err := invoke(t, h, failed); err != nil {
		t.Fatal(err)
	}
	sweep() // both of the failed attempt's notifications are handed over
	later := byAttempt(2, "received", "withdrawn", "run-1", 2)
	if res, err := invoke(t, h, later); err != nil || !res.Replaced {
		t.Fatalf("later attempt: %+v %v", res, err)
	}
	want := []string{caseID + "/2/1/" + fmt.Sprint(at.Add(2*time.Minute).UnixNano()) + "=refund.withdrawn"}
	if got := sweep(); !slices.Equal(got, want) {
		t.Fatalf("delivered after the replacement %v, want %v", got, want)
	}
	if n := len(db.Items("t-outbox")); n != 4 {
		t.Fatalf("outbox holds %d notifications, want 4 (step 1, the two sent of the failed attempt, the new one)", n)
	}
	if res, err := invoke(t, h, later); err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}

	// The same notification from the next attempt: the one sent stands, nothing more.
	h, db = newHandler()
	first := byAttempt(1, "", "received", "run-1", 0)
	if _, err := invoke(t, h, first); err != nil {
		t.Fatal(err)
	}
	sweep()
	again := byAttempt(1, "", "received", "run-1", 3)
	again.Entries[0].Reason = "decided again with a document that came meanwhile"
	if res, err := invoke(t, h, again); err != nil || !res.Replaced {
		t.Fatalf("later attempt: %+v %v", res, err)
	}
	if got := sweep(); len(got) != 0 {
		t.Fatalf("delivered again: %v", got)
	}
}

// Attempts that fail one after another: the first one's notification is handed over, the
// second replaces the step with other content (its notification pending under its own id)
// and fails too; the third decides as the first did. The one handed over stands for it,
// the second's pending one is deleted, and nothing is delivered again — or, when the
// third decides something else again, exactly its notification is delivered.
func TestRecordAttemptsFailingInARowDeliverWhatTheLastDecided(t *testing.T) {
	for name, c := range map[string]struct {
		third     string
		duplicate bool
		want      []string // delivered after the third attempt
	}{
		"as the first":   {third: "approved"},
		"something else": {third: "rejected", want: []string{caseID + "/2/1/" + fmt.Sprint(at.Add(3*time.Minute).UnixNano()) + "=refund.rejected"}},
		// the same decision as the second's: a duplicate of it, whose notification is delivered
		"as the second": {third: "withdrawn", duplicate: true, want: []string{caseID + "/2/1/" + fmt.Sprint(at.Add(2*time.Minute).UnixNano()) + "=refund.withdrawn"}},
	} {
		t.Run(name, func(t *testing.T) {
			h, db := newHandler()
			if _, err := invoke(t, h, byAttempt(1, "", "received", "run-1", 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := invoke(t, h, byAttempt(2, "received", "approved", "run-1", 1)); err != nil {
				t.Fatal(err)
			}
			deliver(t, db)
			if res, err := invoke(t, h, byAttempt(2, "received", "withdrawn", "run-1", 2)); err != nil || !res.Replaced {
				t.Fatalf("second attempt: %+v %v", res, err)
			}
			third := byAttempt(2, "received", c.third, "run-1", 3)
			if res, err := invoke(t, h, third); err != nil || res.Replaced == c.duplicate || res.Duplicate != c.duplicate {
				t.Fatalf("third attempt: %+v %v", res, err)
			}
			if got := deliver(t, db); !slices.Equal(got, c.want) {
				t.Fatalf("delivered %v, want %v", got, c.want)
			}
			if res, err := invoke(t, h, third); err != nil || !res.Duplicate {
				t.Fatalf("retry of the third: %+v %v", res, err)
			}
			journal, _ := audit.Journal(context.Background(), db, "t-audit", caseID)
			if len(journal) != 2 || journal[1].To != c.third {
				t.Fatalf("journal %+v", journal)
			}
		})
	}
}

// deliver hands every pending notification over, as the relay does, and says which.
func deliver(t *testing.T, db *storetest.DB) []string {
	t.Helper()
	var sent []string
	for _, it := range db.Items("t-outbox") {
		var n contract.Notification
		if err := store.Unmarshal(it, &n); err != nil {
			t.Fatal(err)
		}
		if n.State == "pending" {
			sent = append(sent, n.NotificationID+"="+n.Template)
			if _, err := store.SetFields(context.Background(), db, "t-outbox", map[string]types.AttributeValue{"notification_id": store.S(n.NotificationID)},
				map[string]any{"state": "sent"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Sort(sent)
	return sent
}

// The relay claims a notification before it hands it over and marks it sent after: a
// step replaced in between treats the claimed one as handed over — kept, never deleted,
// standing for the new step's if that says the same, else the new one delivered under an
// id of its own.
func TestRecordReplacementKeepsANotificationClaimedButNotYetMarked(t *testing.T) {
	for name, c := range map[string]struct {
		later string
		want  []string // pending after the replacement: what the relay delivers next
	}{
		"says the same":  {later: "approved"},
		"says otherwise": {later: "withdrawn", want: []string{caseID + "/2/1/" + fmt.Sprint(at.Add(2*time.Minute).UnixNano()) + "=refund.withdrawn"}},
	} {
		t.Run(name, func(t *testing.T) {
			h, db := newHandler()
			if _, err := invoke(t, h, byAttempt(1, "", "received", "run-1", 0)); err != nil {
				t.Fatal(err)
			}
			deliver(t, db)
			failed := byAttempt(2, "received", "approved", "run-1", 1)
			failed.Entries[0].Reason = "first decision"
			if _, err := invoke(t, h, failed); err != nil {
				t.Fatal(err)
			}
			// the relay's claim, before it hands the notification over
			if _, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String("t-outbox"),
				Key:              map[string]types.AttributeValue{"notification_id": store.S(caseID + "/2/1")},
				UpdateExpression: aws.String("SET #h = :h"), ConditionExpression: aws.String("#s = :s"),
				ExpressionAttributeNames:  map[string]string{"#h": delivery.AttrHandedAt, "#s": "state"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":h": store.S(at.String()), ":s": store.S("pending")}}); err != nil {
				t.Fatal(err)
			}
			if res, err := invoke(t, h, byAttempt(2, "received", c.later, "run-1", 2)); err != nil || !res.Replaced {
				t.Fatalf("later attempt: %+v %v", res, err)
			}
			var pending []string
			claimed := false
			for _, it := range db.Items("t-outbox") {
				var n contract.Notification
				if err := store.Unmarshal(it, &n); err != nil {
					t.Fatal(err)
				}
				if _, ok := it[delivery.AttrHandedAt]; ok && n.NotificationID == caseID+"/2/1" && n.Template == "refund.approved" {
					claimed = true
				} else if n.State == "pending" {
					pending = append(pending, n.NotificationID+"="+n.Template)
				}
			}
			if !claimed || !slices.Equal(pending, c.want) {
				t.Fatalf("claimed one kept: %v; pending %v, want %v", claimed, pending, c.want)
			}
		})
	}
}
