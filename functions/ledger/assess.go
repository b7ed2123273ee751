package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Assess writes the entry a case's decision makes in the charges and payments ledger
// (the table functions/overpayment reads) together with the case's step that records
// the decision, in one TransactWriteItems: the desk review's decision on a 3-НДФЛ and
// the reduction of the tax charged by the refund it confirms (Tax Code art. 78, 88) are
// one fact, so the record and the account never disagree, and the refund the decision
// starts finds the overpayment.
//
// The entry's content is fixed by the workflow (in the activity's input); its EntryID is
// its idempotency key. The answer:
//   - written now: state "written", Step.Written;
//   - a retry (the entry is there with this content): Duplicate, and the step is made
//     sure of by a record of its own (Written, Duplicate when it was there);
//   - the entry id holds other content: KeyReused (a bug to surface);
//   - the record refuses the step (KeyReused or Conflict in Step.RefusedType): nothing
//     is written, the entry neither; state "none". The step found in the record without
//     the entry is refused as Conflict: it was written by another path, which this one
//     must not confirm.
func (l Ledger) Assess(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	e, err := checkAssessment(in)
	if err != nil {
		return contract.LedgerResult{}, err
	}
	step, err := l.PrepareStep(*in.Step, in.CaseID)
	if err != nil {
		return contract.LedgerResult{}, err
	}
	av, err := store.Marshal(e)
	if err != nil {
		return contract.LedgerResult{}, fmt.Errorf("encode ledger entry: %w", err)
	}
	put := types.TransactWriteItem{Put: &types.Put{TableName: aws.String(l.Entries), Item: av,
		ConditionExpression: aws.String("attribute_not_exists(#k)"), ExpressionAttributeNames: map[string]string{"#k": "entry_id"}}}
	out := contract.LedgerResult{Key: e.EntryID, State: contract.AssessmentWritten, Requested: e.Amount, Amount: e.Amount}
	_, err = l.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append([]types.TransactWriteItem{put}, step.Puts()...)})
	if err == nil {
		out.Step = &contract.StepOutcome{Written: true, Reason: step.Reason()}
		return out, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return contract.LedgerResult{}, fmt.Errorf("assess %s: %w", e.EntryID, err)
	}
	if failed(tce.CancellationReasons, 1) {
		// The entry is there: a retry when it holds this content.
		var got contract.LedgerEntry
		found, err := store.Get(ctx, l.DB, l.Entries, map[string]types.AttributeValue{"inn": store.S(e.INN), "entry_id": store.S(e.EntryID)}, &got)
		switch {
		case err != nil:
			return contract.LedgerResult{}, fmt.Errorf("assess %s: read back the entry: %w", e.EntryID, err)
		case !found: // refused, then gone: let the activity try again
			return contract.LedgerResult{}, fmt.Errorf("assess %s: a condition failed on an entry that is not there", e.EntryID)
		case !sameEntry(got, e):
			return contract.LedgerResult{}, fnerr.KeyReused("ledger entry %s holds other content (%s %s)", e.EntryID, got.Kind, domain.Kopecks(got.Amount))
		}
		o, err := l.record(ctx, &step)
		if err != nil {
			return contract.LedgerResult{}, err
		}
		out.Duplicate, out.Step = true, &o
		return out, nil
	}
	res, mine, xerr := step.Explain(ctx, tce.CancellationReasons, 1)
	var fe *fnerr.Error
	refused := func(o contract.StepOutcome) contract.LedgerResult {
		return contract.LedgerResult{Key: e.EntryID, State: contract.ReservationNone, Requested: e.Amount,
			Reason: "nothing written: the case's record refused the step that would record the decision", Step: &o}
	}
	switch {
	case !mine: // no condition failed: a concurrent transaction, throttling; try again
		return contract.LedgerResult{}, fmt.Errorf("assess %s: transaction cancelled (%v)", e.EntryID, err)
	case xerr == nil && res.Duplicate:
		return refused(contract.StepOutcome{RefusedType: fnerr.TypeConflict,
			Refused: fmt.Sprintf("step %s is in the record, but ledger entry %s was never written: the step was written by another path", step.Key, e.EntryID)}), nil
	case errors.As(xerr, &fe):
		return refused(contract.StepOutcome{RefusedType: fe.Type, Refused: fe.Message}), nil
	}
	return contract.LedgerResult{}, fmt.Errorf("assess %s: %w", e.EntryID, xerr)
}

// checkAssessment validates an assess input: a reduction of the case's own, under an id
// of its period and tax, with the step that records it.
func checkAssessment(in contract.LedgerInput) (contract.LedgerEntry, error) {
	if in.Entry == nil {
		return contract.LedgerEntry{}, fnerr.Invalid("entry", "an assessment names the ledger entry it writes")
	}
	if in.Step == nil {
		return contract.LedgerEntry{}, fnerr.Invalid("step", "an assessment is written with the case's step that records the decision")
	}
	e := *in.Entry
	if err := domain.ValidateINN("entry.inn", e.INN, true); err != nil {
		return e, fnerr.Invalid("entry.inn", err.(domain.FieldError).Reason)
	}
	prefix := strconv.Itoa(e.Period) + "#" + e.Tax + "#"
	switch {
	case in.CaseID == "" || e.CaseID != in.CaseID:
		return e, fnerr.Invalid("entry.case_id", "must be the case that writes it")
	case e.Kind != contract.LedgerReduction:
		return e, fnerr.Invalid("entry.kind", "a decision writes a reduction of the tax charged")
	case e.Amount <= 0:
		return e, fnerr.Invalid("entry.amount_kopecks", "must be greater than 0")
	case e.Period < 2000 || e.Period > 2100:
		return e, fnerr.Invalid("entry.period", "must be a year such as 2025")
	case e.Tax == "" || strings.Contains(e.Tax, "#"):
		return e, fnerr.Invalid("entry.tax", "must name the tax")
	case !strings.HasPrefix(e.EntryID, prefix) || len(e.EntryID) == len(prefix) || len(e.EntryID) > 512:
		return e, fnerr.Invalid("entry.entry_id", "must be "+prefix+"<id>")
	case e.Date.IsZero():
		return e, fnerr.Invalid("entry.date", "must be when the overpayment arises (the filing of the declaration)")
	}
	e.Date = e.Date.UTC()
	return e, nil
}

func sameEntry(a, b contract.LedgerEntry) bool {
	return a.INN == b.INN && a.EntryID == b.EntryID && a.Kind == b.Kind && a.Tax == b.Tax && a.Period == b.Period &&
		a.Amount == b.Amount && a.Date.Equal(b.Date) && a.CaseID == b.CaseID
}
