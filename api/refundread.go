package api

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/api/serviceerror"

	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/workflows"
)

// refundRecord is what a refund read takes from the case projection: the record the
// case's steps committed, read beside the workflow's query.
type refundRecord struct {
	rec   contract.CaseRecord
	found bool
	err   error
}

// readRefundRecord starts reading the case's projection; the answer comes on the channel.
// Without a projection table (unit tests of other parts) nothing is read.
func (s *Server) readRefundRecord(ctx context.Context, id string) <-chan refundRecord {
	out := make(chan refundRecord, 1)
	if s.DB == nil || s.Cases == "" {
		out <- refundRecord{}
		return out
	}
	go func() {
		rec, found, err := cases.Get(ctx, s.DB, s.Cases, id)
		out <- refundRecord{rec, found, err}
	}()
	return out
}

// behindRecord corrects a run's answer that is behind what the case has recorded. The
// record is the truth: a run an operator reset starts over at its first step while the
// projection keeps the steps already committed (a paid refund stays paid, its money
// gone), and a reset run that then fails (a step decided otherwise: KeyReused) stays
// behind for good. Its answer would say "received" about a case the treasury paid. A
// record ahead of the run gives the status, its label and the amounts; the rest (the
// documents, the history) is the run's, as far as it got.
//
// The run's status changes only once its step is written, while its version counts a
// step as soon as it is decided: at the same version, a status other than the record's
// is a step the run decided and the record holds otherwise (or holds and the run has
// not heard yet). Either way the record says what happened.
func behindRecord(st *workflows.RefundStatus, r refundRecord) bool {
	if r.err != nil || !r.found || r.rec.Version < st.Version || (r.rec.Version == st.Version && r.rec.Status == st.Status) {
		return false
	}
	st.Status, st.Label, st.Version = r.rec.Status, r.rec.Label, r.rec.Version
	if label, ok := workflows.RefundLabels[st.Status]; ok && st.Label == "" {
		st.Label = label
	}
	st.Escalated = st.Escalated || r.rec.Escalated
	if v, ok := r.rec.Amounts["approved"]; ok {
		st.Approved = v
	}
	if v, ok := r.rec.Amounts["paid"]; ok {
		st.Paid = v
	}
	if v, ok := r.rec.Amounts["interest"]; ok {
		st.Interest = v
	}
	if st.Status == workflows.RefundPaid {
		st.Reservation = contract.ReservationPosted
	}
	return true
}

// queryErr is a failed status query, with the case's record read beside it.
type queryErr struct {
	err    error
	record <-chan refundRecord
}

func (e queryErr) Error() string { return e.err.Error() }
func (e queryErr) Unwrap() error { return e.err }

// readRefund is refundStatus for a reader of the case (the API's read, a closed case's
// status): when the run cannot answer at all, the record answers (recordOnly).
func (s *Server) readRefund(ctx context.Context, id string) (workflows.RefundStatus, error) {
	st, err := s.refundStatus(ctx, id)
	var q queryErr
	if !errors.As(err, &q) {
		return st, err
	}
	if st, err = recordOnly(id, q.err, <-q.record); err != nil {
		return st, err
	}
	s.Log.Warn().Str("case_id", id).Int64("version", st.Version).Msg("the case's run cannot answer a query (closed before its first task): answered from the record")
	if err := s.fromJournal(ctx, id, &st); err != nil {
		return st, fmt.Errorf("read the journal of a case whose run cannot answer: %w", err)
	}
	return st, nil
}

// recordOnly answers a read the case's run cannot answer: a run that never completed a
// workflow task (reset, then terminated before a worker took it) refuses every query
// for good. The case's record still says where the case is; the fields only the run
// knows (the request's hash, the documents, the history) stay empty. Any other error is
// the query's.
func recordOnly(id string, err error, r refundRecord) (workflows.RefundStatus, error) {
	var notReady *serviceerror.WorkflowNotReady
	var precondition *serviceerror.FailedPrecondition
	if (!errors.As(err, &notReady) && !errors.As(err, &precondition)) || r.err != nil || !r.found {
		return workflows.RefundStatus{}, err
	}
	st := workflows.RefundStatus{CaseID: id, Deadline: r.rec.Deadline, Claimed: r.rec.Amounts["claimed"], Documents: []workflows.Document{}}
	behindRecord(&st, r)
	return st, nil
}

// fromJournal completes an answer taken from the record with what the record's journal
// holds and the run lost: the history of status changes and, for a paid case, the
// transfer's id (the payout step's reason, "transfer <id>", filled in by the payout
// function). It is read only for a run behind its record, which is rare.
func (s *Server) fromJournal(ctx context.Context, id string, st *workflows.RefundStatus) error {
	if s.DB == nil || s.AuditTable == "" {
		return nil
	}
	entries, err := audit.Journal(ctx, s.DB, s.AuditTable, id)
	if err != nil {
		return err
	}
	history := []workflows.Transition{}
	for _, e := range entries {
		if e.Action != "status_changed" {
			continue
		}
		history = append(history, workflows.Transition{From: e.From, To: e.To, At: e.At, Actor: e.Actor, Reason: e.Reason})
		if e.To == workflows.RefundPaid {
			if transfer, ok := strings.CutPrefix(e.Reason, "transfer "); ok && transfer != contract.TransferPlaceholder {
				st.TransferID = transfer
			}
		}
	}
	st.History = history
	return nil
}
