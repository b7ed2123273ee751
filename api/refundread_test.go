package api

import (
	"errors"
	"testing"

	"go.temporal.io/api/serviceerror"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

func TestBehindRecordAnswersTheRecordOnlyWhenItIsAhead(t *testing.T) {
	run := func() workflows.RefundStatus {
		return workflows.RefundStatus{CaseID: "refund-x", Status: workflows.RefundReceived, Label: "received label", Version: 1,
			Claimed: 500, Documents: []workflows.Document{{DocID: "statement"}}}
	}
	paid := contract.CaseRecord{CaseID: "refund-x", Status: workflows.RefundPaid, Label: "paid label", Version: 6,
		Amounts: map[string]int64{"approved": 500, "paid": 520, "interest": 20}}
	for _, c := range []struct {
		name   string
		rec    refundRecord
		behind bool
	}{
		{"record ahead", refundRecord{rec: paid, found: true}, true},
		{"record at the run's version, same status", refundRecord{rec: func() contract.CaseRecord {
			r := paid
			r.Version, r.Status = 1, workflows.RefundReceived
			return r
		}(), found: true}, false},
		{"record at the run's version, another status (the run's step refused)", refundRecord{rec: func() contract.CaseRecord { r := paid; r.Version = 1; return r }(), found: true}, true},
		{"record behind the run (a step in flight)", refundRecord{rec: func() contract.CaseRecord { r := paid; r.Version = 0; return r }(), found: true}, false},
		{"no record yet", refundRecord{}, false},
		{"the store failed", refundRecord{rec: paid, found: true, err: errors.New("down")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := run()
			if got := behindRecord(&st, c.rec); got != c.behind {
				t.Fatalf("behind = %v, want %v", got, c.behind)
			}
			if !c.behind {
				if st.Status != workflows.RefundReceived || st.Version != 1 || st.Paid != 0 {
					t.Fatalf("the run's answer changed: %+v", st)
				}
				return
			}
			if st.Status != workflows.RefundPaid || st.Label != "paid label" || st.Version != c.rec.rec.Version || st.Paid != 520 || st.Interest != 20 ||
				st.Approved != 500 || st.Reservation != contract.ReservationPosted {
				t.Fatalf("not the record's answer: %+v", st)
			}
			if st.Claimed != 500 || len(st.Documents) != 1 || st.CaseID != "refund-x" {
				t.Fatalf("the run's own facts are lost: %+v", st)
			}
		})
	}
}

func TestRecordOnlyAnswersOnlyWhenTheRunCannot(t *testing.T) {
	rec := refundRecord{rec: contract.CaseRecord{Status: workflows.RefundInReview, Label: "in review", Version: 3,
		Amounts: map[string]int64{"claimed": 700}}, found: true}
	st, err := recordOnly("refund-x", serviceerror.NewWorkflowNotReady("workflow not ready"), rec)
	if err != nil || st.Status != workflows.RefundInReview || st.Version != 3 || st.Claimed != 700 || st.CaseID != "refund-x" || st.RequestSHA256 != "" {
		t.Fatalf("a run that cannot answer: %+v %v", st, err)
	}
	for name, c := range map[string]struct {
		err error
		rec refundRecord
	}{
		"an outage":                   {serviceerror.NewUnavailable("down"), rec},
		"no such case":                {serviceerror.NewNotFound("gone"), rec},
		"not ready, no record":        {serviceerror.NewWorkflowNotReady("not ready"), refundRecord{}},
		"not ready, the store failed": {serviceerror.NewWorkflowNotReady("not ready"), refundRecord{rec: rec.rec, found: true, err: errors.New("down")}},
	} {
		if _, got := recordOnly("refund-x", c.err, c.rec); got != c.err {
			t.Fatalf("%s: %v, want the query's error", name, got)
		}
	}
}
