package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	ledgerfn "github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/calendar"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
)

// outbox reads every notification of a case.
func outbox(t *testing.T, h *harness) []contract.Notification {
	t.Helper()
	var out []contract.Notification
	for _, item := range h.db.Items("outbox") {
		var n contract.Notification
		if err := store.Unmarshal(item, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// decreedYearDay is a claim day whose 30-day term ends within a year of the production
// calendar already decreed: these tests count steps, and a term that runs into an
// undecreed year adds one (the deadline_provisional journal entry), so they must not
// depend on the day they run (they failed from December 2026 on).
var decreedYearDay = time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)

// The happy path — one document, automatic approval, payout — takes six activities: four
// activity tasks and the two first reads as local activities (change refund-folded-steps;
// 17 before issue 12). Still one step of the record per transition: received a record of
// its own, approved in the reservation's transaction, paid in the payout's posting; one
// reservation; and journal, projection and outbox in step: every transition journaled
// once, in seq order, with its notification.
func TestRefundHappyPathStepsAndRecord(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.env.SetStartTime(decreedYearDay) // a term in an undecreed year would add a journal step
	h.upload("d1", pdfBytes)
	var started []string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started = append(started, info.ActivityType.Name)
	})
	h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		started = append(started, "local:"+info.ActivityType.Name)
	})
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid {
		t.Fatalf("got %+v", st)
	}
	// The received step, the two reads and the document's storing start in the first
	// workflow task (in any order), then the reservation carrying approved, the payout
	// carrying paid.
	want := "RecordTransition StoreDocument local:CheckTaxpayer local:ComputeOverpayment Reserve Payout"
	if len(started) >= 4 {
		slices.Sort(started[:4])
	}
	if got := strings.Join(started, " "); got != want {
		t.Fatalf("activities:\n got %s\nwant %s", got, want)
	}

	lines := journalLines(t, h)
	wantJournal := []string{"1 status_changed received", "2 document_accepted received", "2 status_changed approved",
		"3 status_changed paid"}
	if !equal(lines, wantJournal) {
		t.Fatalf("journal %v, want %v", lines, wantJournal)
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", testCase)
	if rec.Version != 3 || rec.Status != RefundPaid || rec.Amounts["paid"] != 400_000 {
		t.Fatalf("projection %+v", rec)
	}
	templates := map[string]int{}
	for _, n := range outbox(t, h) {
		templates[n.Template]++
		if n.State != "pending" || n.INN != testINN || n.CaseID != testCase {
			t.Errorf("notification %+v", n)
		}
	}
	if len(templates) != 3 {
		t.Errorf("notifications %v: want one per transition", templates)
	}
	for _, to := range []string{RefundReceived, RefundApproved, RefundPaid} {
		if templates["refund."+to] != 1 {
			t.Errorf("notifications %v: want one refund.%s", templates, to)
		}
	}

	// The outbox relay delivers each once; a second run finds nothing to do.
	for run, want := range []contract.SweepResult{{Processed: 3, Sent: 3}, {}} {
		env := sweepEnv(h.db)
		env.ExecuteWorkflow(Sweep, SweepWorkflowInput{Job: JobOutbox, Date: "2026-11-22"})
		var res contract.SweepResult
		if err := env.GetWorkflowResult(&res); err != nil || res != want {
			t.Fatalf("outbox run %d: %+v %v, want %+v", run+1, res, err, want)
		}
	}
	if n := len(h.db.Items("deliveries")); n != 3 {
		t.Fatalf("%d deliveries, want 3", n)
	}
	for _, n := range outbox(t, h) {
		if n.State != "sent" {
			t.Fatalf("not marked sent: %+v", n)
		}
	}
}

// A deadline escalation is one step: its journal entry, the escalated projection and
// the supervisor's notice together.
func TestDeadlineEscalationIsOneStep(t *testing.T) {
	h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
	h.env.SetStartTime(decreedYearDay)
	h.upload("d1", pdfBytes)
	h.decide(31*24*time.Hour, RefundDecision{Approve: true, Reviewer: "inspector-7"}, false)
	st := h.run(input(3_000_000, "d1"))
	if !st.Escalated || st.Status != RefundPaid {
		t.Fatalf("got %+v", st)
	}
	journal, _ := audit.Journal(context.Background(), h.db, "audit", testCase)
	var escalation contract.AuditEntry
	for _, e := range journal {
		if e.Action == "deadline_passed" {
			escalation = e
		}
	}
	var notice contract.Notification
	for _, n := range outbox(t, h) {
		if n.Template == "refund.deadline_passed" {
			notice = n
		}
	}
	step := contract.RecordKey(testCase, escalation.Seq)
	if escalation.Seq == 0 || notice.NotificationID != step+"/1" || escalation.EntryID != step+"/1" {
		t.Fatalf("escalation entry %+v and notice %+v are not one step", escalation, notice)
	}
}

// Since change record-step-task every step is an activity task, however the workflow
// tasks fall (the test suite reports no history length; 7 stands for one task). A run
// recorded on the path of record-step-local (its marker, none of record-step-task) keeps
// writing the first step of each workflow task as a local activity, so that it replays.
func TestStepsAreActivityTasksSinceRecordStepTask(t *testing.T) {
	for name, c := range map[string]struct {
		localPath bool
		want      string
	}{
		"record-step-task":  {false, "RecordTransition CheckTaxpayer ComputeOverpayment StoreDocument Reserve RecordTransition Payout RecordTransition"},
		"record-step-local": {true, "local:RecordTransition CheckTaxpayer ComputeOverpayment StoreDocument Reserve RecordTransition Payout RecordTransition"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(500_000, 0)...)
			oldRefundPath(h) // the runs of both paths were recorded before refund-folded-steps
			if c.localPath {
				h.env.OnGetVersion(changeRecordStepTask, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			h.env.SetStartTime(decreedYearDay)
			h.env.SetCurrentHistoryLength(7)
			h.upload("d1", pdfBytes)
			var started []string
			h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				started = append(started, info.ActivityType.Name)
			})
			h.env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
				started = append(started, "local:"+info.ActivityType.Name)
			})
			if st := h.run(input(400_000, "d1")); st.Status != RefundPaid {
				t.Fatalf("got %+v", st)
			}
			got := strings.Replace(strings.Join(started, " "), "ComputeOverpayment CheckTaxpayer", "CheckTaxpayer ComputeOverpayment", 1)
			if got != c.want {
				t.Fatalf("activities:\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// A claim whose term runs into a year the production calendar has not decreed yet (every
// claim of December 2026) notes that in the journal — in the first step, with the
// transition to received, not in a step of its own (change record-step-local).
func TestProvisionalTermRidesWithTheFirstStep(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	years := calendar.Shared().Years() // claimed in December of the last decreed year
	h.env.SetStartTime(time.Date(years[len(years)-1], 12, 4, 9, 0, 0, 0, time.UTC))
	h.upload("d1", pdfBytes)
	steps := 0
	h.env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { steps++ })
	h.env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { steps++ })
	st := h.run(input(400_000, "d1"))
	if st.Status != RefundPaid || len(st.DeadlineProvisional) == 0 {
		t.Fatalf("got %+v", st)
	}
	lines := journalLines(t, h)
	want := []string{"1 status_changed received", "1 deadline_provisional received", "2 document_accepted received",
		"2 status_changed approved", "3 status_changed paid"}
	if !equal(lines, want) || steps != 6 {
		t.Fatalf("journal %v (want %v), %d activities (want 6)", lines, want, steps)
	}
}

// oldRefundPath makes the run one recorded before change refund-folded-steps (no marker):
// its reads are activity tasks, every step a record of its own, a failed payout's key kept.
func oldRefundPath(h *harness) {
	h.env.OnGetVersion(changeRefundFoldedSteps, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
}

// journalLines is the case's journal, an entry a line: "<seq> <action> <to>".
func journalLines(t *testing.T, h *harness) []string {
	t.Helper()
	journal, err := audit.Journal(context.Background(), h.db, "audit", testCase)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range journal {
		lines = append(lines, fmt.Sprintf("%d %s %s", e.Seq, e.Action, e.To))
	}
	return lines
}

// A run from before change record-step-local (no marker: GetVersion answers the default)
// keeps its old path: every record an activity task, and the provisional-term note a step
// of its own after received — what the runs recorded before the change did.
func TestProvisionalTermOnTheOldPathIsAStepOfItsOwn(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	oldRefundPath(h)
	h.env.OnGetVersion(changeRecordStepTask, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.env.OnGetVersion(changeRecordStepLocal, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	years := calendar.Shared().Years()
	h.env.SetStartTime(time.Date(years[len(years)-1], 12, 4, 9, 0, 0, 0, time.UTC))
	h.upload("d1", pdfBytes)
	tasks, locals := 0, 0
	h.env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { tasks++ })
	h.env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) { locals++ })
	if st := h.run(input(400_000, "d1")); st.Status != RefundPaid {
		t.Fatalf("got %+v", st)
	}
	want := []string{"1 status_changed received", "2 deadline_provisional received", "3 document_accepted received",
		"3 status_changed approved", "4 status_changed paid"}
	if lines := journalLines(t, h); !equal(lines, want) || tasks != 9 || locals != 0 {
		t.Fatalf("journal %v (want %v), %d activity tasks (want 9), %d local", lines, want, tasks, locals)
	}
}

// A step that fails for good — its key taken with other content by another run (KeyReused,
// not retried, never replaced) — fails the case: nothing is paid, the reservation is
// voided, and the workflow ends with the error for an operator (no loop, no second key).
// So on both paths: activity tasks, and the local steps of record-step-local runs.
// Since refund-folded-steps step 2 rides in the reservation: the ledger refuses the step
// and reserves nothing, so there is nothing to release.
func TestStepKeyReusedFailsTheCaseWithoutPaying(t *testing.T) {
	for _, c := range []struct {
		localPath, folded bool
		reservation       string
	}{{false, false, contract.ReservationVoided}, {true, false, contract.ReservationVoided}, {false, true, ""}} {
		t.Run(fmt.Sprintf("local=%v/folded=%v", c.localPath, c.folded), func(t *testing.T) {
			localPath := c.localPath
			h := newHarness(t, eligible(), ledger(500_000, 0)...)
			if !c.folded {
				oldRefundPath(h)
			}
			if localPath {
				h.env.OnGetVersion(changeRecordStepTask, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			h.env.SetStartTime(decreedYearDay)
			h.upload("d1", pdfBytes)
			// step 2 (approved) already written by another run of another workflow
			key := contract.RecordKey(testCase, 2)
			mustPut(t, h.db, "audit", "entry_id", map[string]string{"case_id": testCase, "entry_id": key + "/1", "action": "status_changed",
				"record_key": key, "record_digest": "other"})
			h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
			err := h.env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), "KeyReused") {
				t.Fatalf("workflow error %v, want KeyReused", err)
			}
			var st RefundStatus
			v, qerr := h.env.QueryWorkflow(RefundQueryStatus)
			if qerr != nil || v.Get(&st) != nil {
				t.Fatalf("query: %v", qerr)
			}
			if h.payouts != 0 || st.Reservation != c.reservation || st.Status != RefundReceived {
				t.Fatalf("payouts %d, reservation %s (want %q), status %s", h.payouts, st.Reservation, c.reservation, st.Status)
			}
			if res := h.reservation(); res.State != c.reservation {
				t.Fatalf("ledger reservation %+v, want %q", res, c.reservation)
			}
		})
	}
}

// A run whose step was refused because the record holds another step under its key (a
// reset run that decided otherwise than the run it was reset from) no longer knows what
// the record says: it writes no step after it, so nothing is recorded on top of a step it
// did not decide (here: the reset run, which thinks the case is received, would record
// its reservation's release as a step of a case the record shows awaiting_info). The
// case fails for an operator, its reservation released, the record as it was.
func TestNoStepAfterTheRecordHoldsAnotherStep(t *testing.T) {
	for _, folded := range []bool{false, true} {
		t.Run(fmt.Sprintf("folded=%v", folded), func(t *testing.T) { noStepAfterAnotherStep(t, folded) })
	}
}

func noStepAfterAnotherStep(t *testing.T, folded bool) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	want := "" // refund-folded-steps: the reservation carries the refused step, nothing is reserved
	if !folded {
		oldRefundPath(h)
		want = contract.ReservationVoided
	}
	h.env.SetStartTime(decreedYearDay)
	h.upload("d1", pdfBytes)
	// The run reset from wrote the same first step, then awaiting_info (its upload came
	// later): written here right after this run's first step.
	record := transition.Handler{DB: h.db, Journal: "audit", Cases: "cases", Outbox: "outbox"}
	h.afterRecord = func(in contract.RecordInput, err error) {
		if in.Seq != 1 || err != nil {
			return
		}
		step2 := contract.RecordInput{CaseID: testCase, Seq: 2,
			Entries: []contract.AuditEntry{{At: decreedYearDay, Actor: "system", Action: "status_changed", From: RefundReceived, To: RefundAwaitingInfo}},
			Case:    &contract.CaseRecord{Process: "refund", Status: RefundAwaitingInfo, Label: RefundLabels[RefundAwaitingInfo], UpdatedAt: decreedYearDay}}
		if _, err := record.Record(context.Background(), step2); err != nil {
			t.Error(err)
		}
	}
	h.env.ExecuteWorkflow(Refund, input(400_000, "d1"))
	if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "KeyReused") {
		t.Fatalf("workflow error %v, want KeyReused", err)
	}
	rec, _, _ := cases.Get(context.Background(), h.db, "cases", testCase)
	lines := journalLines(t, h)
	if rec.Version != 2 || rec.Status != RefundAwaitingInfo || len(lines) != 2 || lines[1] != "2 status_changed awaiting_info" {
		t.Fatalf("projection v%d %s, journal %v: a step was written on top of one the run did not decide", rec.Version, rec.Status, lines)
	}
	if h.payouts != 0 || h.reservation().State != want {
		t.Fatalf("payouts %d, reservation %+v", h.payouts, h.reservation())
	}
}

// A folded case cancelled before it reserved (awaiting its documents) voids a reservation
// held under its key, such as the one of a run it was reset from (change
// refund-void-on-failure); a run whose cleanup began before the change (no marker) goes on
// without the void it never scheduled, and the reservation stays for the expiry sweep.
func TestRefundCancelledBeforeReservingVoidsByKeyOnlyAfterTheChange(t *testing.T) {
	for _, c := range []struct {
		name   string
		old    bool
		voids  int
		result string
	}{
		{"after the change", false, 1, contract.ReservationVoided},
		{"before the change", true, 0, contract.ReservationReserved},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, eligible(), ledger(5_000_000, 0)...)
			h.env.SetStartTime(decreedYearDay)
			if c.old {
				h.env.OnGetVersion(changeRefundVoidOnFailure, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			// What an earlier run of the same case held (the run this one was reset from).
			held, err := ledgerfn.Handler{Ledger: testLedger(h.db)}.Handle(context.Background(), contract.LedgerInput{Op: contract.LedgerReserve,
				Key: testCase, CaseID: testCase, INN: testINN, Period: 2025, Amount: 300_000, ExpiresAt: decreedYearDay.Add(90 * 24 * time.Hour)})
			if err != nil || held.State != contract.ReservationReserved {
				t.Fatalf("the earlier run's reservation: %+v, %v", held, err)
			}
			voids := 0
			h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				if info.ActivityType.Name == "VoidReservation" {
					voids++
				}
			})
			h.env.RegisterDelayedCallback(func() { h.env.CancelWorkflow() }, time.Hour)
			h.env.ExecuteWorkflow(Refund, input(300_000)) // no document: it waits in awaiting_info
			if err := h.env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "canceled") {
				t.Fatalf("want the case cancelled, got %v", err)
			}
			if st := h.query(); st.Status != RefundCancelled || voids != c.voids {
				t.Fatalf("status %s after %d voids, want cancelled after %d", st.Status, voids, c.voids)
			}
			res, _, found, err := testLedger(h.db).Get(context.Background(), testCase)
			if err != nil || !found || res.State != c.result {
				t.Fatalf("reservation %+v (found %v, %v), want %s", res, found, err, c.result)
			}
		})
	}
}

// A case's first step carries its owner (the record-transition function writes the owner
// row with it); no later step does.
func TestFirstStepCarriesTheOwner(t *testing.T) {
	h := newHarness(t, eligible(), ledger(500_000, 0)...)
	h.upload("d1", pdfBytes)
	owner := &contract.CaseOwner{Tenant: "alpha", CreatedBy: "alpha/integrator", KeyID: "k"}
	var carried []int64
	h.afterRecord = func(in contract.RecordInput, _ error) {
		if in.Owner != nil {
			if *in.Owner != *owner {
				t.Errorf("step %d carries %+v", in.Seq, *in.Owner)
			}
			carried = append(carried, in.Seq)
		}
	}
	in := input(400_000, "d1")
	in.Owner = owner
	if st := h.run(in); st.Status != RefundPaid {
		t.Fatalf("got %+v", st)
	}
	if !slices.Equal(carried, []int64{1}) {
		t.Fatalf("steps carrying the owner: %v, want the first only", carried)
	}
}
