package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/transition"
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
	step, err := l.PrepareStep(ctx, *in.Step, in.CaseID)
	if err != nil {
		return contract.LedgerResult{}, err
	}
	for try := 0; try < maxTries; try++ {
		out, retry, err := l.assessOnce(ctx, e, step)
		if !retry {
			return out, err
		}
		backoff(ctx, try)
	}
	return contract.LedgerResult{}, fmt.Errorf("assess %s: contended for %d tries", e.EntryID, maxTries)
}

// Reductions is the guard of a (taxpayer, period, tax)'s reductions, an item of the
// reservations table ("red#<inn>#<period>#<tax>"): the refund each case's decisions
// confirmed, cumulative, and what was written for the period in all. Every assessment
// writes it, conditional on its version, in the transaction of its entry: two decisions
// of one period at once cannot both reduce the tax by what each confirmed.
//
// A period has one tax liability, whatever the number of declarations filed for it: a
// second declaration of the period (the API takes one after a decision) is a new
// reading of the same income, not a second overpayment. So the period's reductions add
// up to the largest refund any of its cases confirmed, never to the sum: an assessment
// writes max(0, this case's confirmed − written), which is at most its increment. A
// case whose refund another declaration of the period already brought into the account
// writes an entry of 0 (its decision stands; the account does not move).
type Reductions struct {
	Key       string           `json:"key"`
	Kind      string           `json:"kind"`
	Confirmed map[string]int64 `json:"confirmed_kopecks"`
	Written   int64            `json:"written_kopecks"`
	Version   int64            `json:"version"`
	UpdatedAt time.Time        `json:"updated_at"`
}

const kindReductions = "reductions"

// ReductionsKey names the guard of a taxpayer's reductions of a period and tax.
func ReductionsKey(inn string, period int, tax string) string {
	return "red#" + inn + "#" + strconv.Itoa(period) + "#" + tax
}

// assessOnce reads the period's guard, decides what to write and writes the entry, the
// guard and the step in one transaction. retry: the guard changed meanwhile (or a
// concurrent transaction): read and decide again.
func (l Ledger) assessOnce(ctx context.Context, e contract.LedgerEntry, step transition.Step) (_ contract.LedgerResult, retry bool, _ error) {
	var g Reductions
	found, err := store.Get(ctx, l.DB, l.Table, map[string]types.AttributeValue{"key": store.S(ReductionsKey(e.INN, e.Period, e.Tax))}, &g)
	if err != nil {
		return contract.LedgerResult{}, false, fmt.Errorf("assess %s: read the period's reductions: %w", e.EntryID, err)
	}
	if !found {
		g = Reductions{Key: ReductionsKey(e.INN, e.Period, e.Tax), Kind: kindReductions}
	}
	next := g
	next.Confirmed = map[string]int64{}
	for k, v := range g.Confirmed {
		next.Confirmed[k] = v
	}
	confirmed := g.Confirmed[e.CaseID] + e.Amount // the workflow sends what its decisions confirmed beyond the last
	written := max(0, confirmed-g.Written)
	next.Confirmed[e.CaseID], next.Written, next.Version, next.UpdatedAt = confirmed, g.Written+written, g.Version+1, l.now()
	entry := storedEntry{LedgerEntry: e, Requested: e.Amount}
	entry.Amount = written

	av, err := store.Marshal(entry)
	if err != nil {
		return contract.LedgerResult{}, false, fmt.Errorf("encode ledger entry: %w", err)
	}
	put := types.TransactWriteItem{Put: &types.Put{TableName: aws.String(l.Entries), Item: av,
		ConditionExpression: aws.String("attribute_not_exists(#k)"), ExpressionAttributeNames: map[string]string{"#k": "entry_id"}}}
	gav, err := store.Marshal(next)
	if err != nil {
		return contract.LedgerResult{}, false, fmt.Errorf("encode the period's reductions: %w", err)
	}
	guard := &types.Put{TableName: aws.String(l.Table), Item: gav}
	if g.Version == 0 {
		guard.ConditionExpression, guard.ExpressionAttributeNames = aws.String("attribute_not_exists(#k)"), map[string]string{"#k": "key"}
	} else {
		guard.ConditionExpression = aws.String("#v = :v")
		guard.ExpressionAttributeNames = map[string]string{"#v": "version"}
		guard.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(g.Version, 10)}}
	}
	items := append([]types.TransactWriteItem{put, {Put: guard}}, step.Puts()...)
	out := contract.LedgerResult{Key: e.EntryID, State: contract.AssessmentWritten, Requested: e.Amount, Amount: written}
	if written < e.Amount {
		out.Capped = true
		out.Reason = fmt.Sprintf("the period's tax was already reduced by %s for the refund another declaration of the period confirmed: %s written",
			domain.Kopecks(g.Written), domain.Kopecks(written))
	}
	_, err = l.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		out.Step = &contract.StepOutcome{Written: true, Reason: step.Reason()}
		return out, false, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return contract.LedgerResult{}, false, fmt.Errorf("assess %s: %w", e.EntryID, err)
	}
	if failed(tce.CancellationReasons, 1) {
		// The entry is there: a retry when it holds this entry (its amount is what was
		// decided then against the guard, so it is the answer).
		var got storedEntry
		found, err := store.Get(ctx, l.DB, l.Entries, map[string]types.AttributeValue{"inn": store.S(e.INN), "entry_id": store.S(e.EntryID)}, &got)
		switch {
		case err != nil:
			return contract.LedgerResult{}, false, fmt.Errorf("assess %s: read back the entry: %w", e.EntryID, err)
		case !found: // refused, then gone: let the activity try again
			return contract.LedgerResult{}, false, fmt.Errorf("assess %s: a condition failed on an entry that is not there", e.EntryID)
		case !sameEntry(got, e):
			return contract.LedgerResult{}, false, fnerr.KeyReused("ledger entry %s holds other content (%s %s)", e.EntryID, got.Kind, domain.Kopecks(got.Amount))
		}
		o, err := l.record(ctx, &step)
		if err != nil {
			return contract.LedgerResult{}, false, err
		}
		out.Amount, out.Capped, out.Reason = got.Amount, got.Amount < e.Amount, ""
		out.Duplicate, out.Step = true, &o
		return out, false, nil
	}
	if failed(tce.CancellationReasons[1:], 1) { // the guard moved: another decision of the period
		return contract.LedgerResult{}, true, nil
	}
	res, mine, xerr := step.Explain(ctx, tce.CancellationReasons, 2)
	var fe *fnerr.Error
	refused := func(o contract.StepOutcome) contract.LedgerResult {
		return contract.LedgerResult{Key: e.EntryID, State: contract.ReservationNone, Requested: e.Amount,
			Reason: "nothing written: the case's record refused the step that would record the decision", Step: &o}
	}
	switch {
	case !mine: // no condition failed: a concurrent transaction, throttling; try again
		return contract.LedgerResult{}, true, nil
	case xerr == nil && res.Duplicate:
		return refused(contract.StepOutcome{RefusedType: fnerr.TypeConflict,
			Refused: fmt.Sprintf("step %s is in the record, but ledger entry %s was never written: the step was written by another path", step.Key, e.EntryID)}), false, nil
	case errors.As(xerr, &fe):
		return refused(contract.StepOutcome{RefusedType: fe.Type, Refused: fe.Message}), false, nil
	}
	return contract.LedgerResult{}, false, fmt.Errorf("assess %s: %w", e.EntryID, xerr)
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

// storedEntry is a reduction as the ledger table holds it: the entry, whose amount is
// what the assessment decided against the period's guard, and the amount the workflow
// asked for, which names the content of the entry id (a retry asks it again).
type storedEntry struct {
	contract.LedgerEntry
	Requested int64 `json:"requested_kopecks,omitempty"`
}

// sameEntry tells whether the entry found is the one asked for: the same content,
// including the amount asked (the written amount may be less: the guard capped it). An
// entry with no amount asked recorded was written as asked.
func sameEntry(got storedEntry, want contract.LedgerEntry) bool {
	asked := got.Requested
	if asked == 0 {
		asked = got.Amount
	}
	return got.INN == want.INN && got.EntryID == want.EntryID && got.Kind == want.Kind && got.Tax == want.Tax && got.Period == want.Period &&
		asked == want.Amount && got.Amount <= asked && got.Date.Equal(want.Date) && got.CaseID == want.CaseID
}
