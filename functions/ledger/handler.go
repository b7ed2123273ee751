// Package ledger holds refunds to the ledger's invariant: for each taxpayer and tax
// period, reserved + paid ≤ refundable, at every moment, enforced by conditional
// DynamoDB transactions rather than by the good manners of the workflows that call it.
//
// It is the two-phase transfer (as TigerBeetle does it): approval reserves an amount,
// the payout posts it (reserved → paid), and a rejection, a withdrawal, a cancellation
// or a payout that finally fails voids it (reserved → released). A reservation that
// outlives its case is voided by the expire sweep.
//
// # Items
//
// One table ("reservations", partition key "key") holds two kinds of item:
//
//   - the balance of a (taxpayer, period), key "bal#<inn>#<period>": refundable, reserved,
//     paid (kopecks) and a version;
//   - a reservation, key "res#<case id>": the amount requested and reserved, its state
//     (reserved → posted | voided), the payout key in flight, a version.
//
// Every change writes the reservation and its balance in one TransactWriteItems, each
// Put conditional on the version it was computed from (or on the item not existing yet).
// Two writers that computed from the same state cannot both succeed: the loser re-reads
// and decides again, so the check "reserved + paid + amount ≤ refundable" is always made
// against the state the write replaces.
//
// # What "refundable" is
//
// Refundable is the overpayment of the period as functions/overpayment computes it from
// the charges and payments ledger (per tax, payments minus charges; debts offset first),
// over all taxes of the period: a claim names a period, not a tax, so the balance is per
// (taxpayer, period). The charges and payments ledger does not record the refunds we pay,
// so refundable is gross of them: what we have reserved and paid is this table's paid and
// reserved, never subtracted twice.
//
// The ledger changes (a payment arrives, a charge is added), so every Reserve recomputes
// refundable and stores it with the balance (the version orders it). A larger refundable
// makes more available. A smaller one never takes back what is already reserved or paid
// (each was granted when the rule allowed it); it only refuses new reservations until
// reserved + paid fits again, and it is not stored while it would break the invariant,
// so the stored balance always satisfies reserved + paid ≤ refundable. Post and Void do
// not recompute: they move an amount from reserved to paid, or release it, and so never
// raise reserved + paid.
//
// A claim larger than what is available is capped to what is available (the refund is at
// most the confirmed overpayment, domain.md §3); when nothing is available it is refused
// and nothing is stored. Both answers carry the figures and the reason for the journal.
//
// # Steps
//
// A case's step of record can ride in the ledger's transaction instead of a
// record-transition call of its own: the `approved` step in the reservation (Reserve
// with LedgerInput.Step), the `paid` step in the posting (PostStep, called by the
// payout). The step's items are functions/transition's (transition.Step: same items,
// conditions and digest as record-transition), appended to the ledger's in one
// TransactWriteItems, so that the record and the money never disagree. A transaction
// cancelled by the step's items alone is the record's refusal, explained once (never
// fought as contention); what follows from it differs: a reservation is not made
// without its step (nothing moved yet), a posting is made without it (the money left).
package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/overpayment"
	"github.com/taxflow/taxflow/functions/transition"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table holds balances and reservations: partition key "key".
const Table = "reservations"

// Item kinds.
const (
	kindBalance     = "balance"
	kindReservation = "reservation"
)

// Balance is a (taxpayer, period)'s refundable overpayment and what is committed against it.
type Balance struct {
	Key        string    `json:"key"`
	Kind       string    `json:"kind"`
	INN        string    `json:"inn"`
	Period     int       `json:"period"`
	Refundable int64     `json:"refundable_kopecks"`
	Reserved   int64     `json:"reserved_kopecks"`
	Paid       int64     `json:"paid_kopecks"`
	Version    int64     `json:"version"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Available is what may still be reserved.
func (b Balance) Available() int64 { return b.Refundable - b.Reserved - b.Paid }

// Reservation is one case's hold on a balance.
type Reservation struct {
	Key        string    `json:"key"`
	Kind       string    `json:"kind"`
	CaseID     string    `json:"case_id"`
	BalanceKey string    `json:"balance_key"`
	Requested  int64     `json:"requested_kopecks"`
	Amount     int64     `json:"amount_kopecks"`
	State      string    `json:"state"`
	PayoutKey  string    `json:"payout_key,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Version    int64     `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// BalanceKey names the balance of a taxpayer's period.
func BalanceKey(inn string, period int) string { return "bal#" + inn + "#" + strconv.Itoa(period) }

// ReservationKey names a case's reservation.
func ReservationKey(key string) string { return "res#" + key }

// Ledger is the store side of the invariant; the payout function uses it too.
type Ledger struct {
	DB      store.DB
	Table   string // reservations
	Entries string // the charges and payments ledger (functions/overpayment)
	Now     func() time.Time
	// Steps writes a case's step in the reservation's or the posting's transaction (see
	// "Steps" in the package doc). nil: a reservation with a step is refused as invalid.
	Steps *transition.Handler
}

// maxTries bounds the optimistic retries of one operation under contention; past it the
// operation fails as transient and the caller (Temporal) retries it later.
const maxTries = 40

func (l Ledger) now() time.Time {
	if l.Now != nil {
		return l.Now().UTC()
	}
	return time.Now().UTC()
}

// Handler serves the ledger function.
type Handler struct {
	Ledger Ledger
}

// Handle runs one operation.
func (h Handler) Handle(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	if in.Step != nil && in.Op != contract.LedgerReserve && in.Op != contract.LedgerAssess {
		return contract.LedgerResult{}, fnerr.Invalid("step", "only a reservation or an assessment carries a case's step")
	}
	if in.Entry != nil && in.Op != contract.LedgerAssess {
		return contract.LedgerResult{}, fnerr.Invalid("entry", "only an assessment writes a ledger entry")
	}
	switch in.Op {
	case contract.LedgerReserve:
		return h.Ledger.Reserve(ctx, in)
	case contract.LedgerAssess:
		return h.Ledger.Assess(ctx, in)
	case contract.LedgerVoid:
		return h.Ledger.Void(ctx, in.Key, in.Reason)
	case contract.LedgerGet:
		if in.Key == "" {
			return contract.LedgerResult{}, fnerr.Invalid("key", "must name the reservation")
		}
		res, bal, found, err := h.Ledger.Get(ctx, in.Key)
		if err != nil || !found {
			return contract.LedgerResult{Key: in.Key, State: contract.ReservationNone}, err
		}
		return result(res, bal), nil
	case contract.LedgerExpire:
		return h.Ledger.Expire(ctx, in)
	}
	return contract.LedgerResult{}, fnerr.Invalid("op", "must be one of reserve, void, get, expire, assess")
}

func result(r Reservation, b Balance) contract.LedgerResult {
	return contract.LedgerResult{Key: strings.TrimPrefix(r.Key, "res#"), State: r.State, Requested: r.Requested, Amount: r.Amount,
		Capped: r.Amount < r.Requested, Reason: r.Reason, Refundable: b.Refundable, Reserved: b.Reserved, Paid: b.Paid, PayoutKey: r.PayoutKey}
}

// Get reads a reservation and its balance.
func (l Ledger) Get(ctx context.Context, key string) (Reservation, Balance, bool, error) {
	var r Reservation
	found, err := store.Get(ctx, l.DB, l.Table, map[string]types.AttributeValue{"key": store.S(ReservationKey(key))}, &r)
	if err != nil || !found {
		return r, Balance{}, false, err
	}
	var b Balance
	if _, err := store.Get(ctx, l.DB, l.Table, map[string]types.AttributeValue{"key": store.S(r.BalanceKey)}, &b); err != nil {
		return r, b, false, err
	}
	return r, b, true, nil
}

// reservation reads a reservation alone, for the changes that do not touch its balance
// (claiming or releasing a payout key): one read fewer than Get.
func (l Ledger) reservation(ctx context.Context, key string) (Reservation, bool, error) {
	var r Reservation
	found, err := store.Get(ctx, l.DB, l.Table, map[string]types.AttributeValue{"key": store.S(ReservationKey(key))}, &r)
	return r, found, err
}

func (l Ledger) balance(ctx context.Context, key string) (Balance, bool, error) {
	var b Balance
	found, err := store.Get(ctx, l.DB, l.Table, map[string]types.AttributeValue{"key": store.S(key)}, &b)
	return b, found, err
}

// Refundable computes the period's refundable overpayment from the charges and payments ledger.
func (l Ledger) Refundable(ctx context.Context, inn string, period int) (int64, error) {
	var entries []contract.LedgerEntry
	if err := store.QueryAll(ctx, l.DB, l.Entries, "inn", inn, &entries); err != nil {
		return 0, fmt.Errorf("read the charges and payments ledger: %w", err)
	}
	return overpayment.Balance(entries, period).Refundable, nil
}

// Reserve holds up to in.Amount for the case in.Key against the balance of (in.INN,
// in.Period): all of it when available, what is available when less is (capped), or
// nothing when nothing is (refused, and nothing is stored). The same key again answers
// what was reserved; the same key with another amount or period is KeyReused.
//
// With in.Step (the case's `approved` step), the result's Step says what became of it:
//   - the whole amount reserved now: the step is written in the reservation's
//     transaction (Written, Reason);
//   - capped or refused: no step is written (not Written, no Refused; its seq is free);
//   - the same key again (a retry) with the whole amount reserved: the step is made sure
//     of by a record of its own (Written, Duplicate when it was there); capped: not Written;
//   - the step's items refuse it (the record holds other content under its key, or is not
//     at the step it follows): nothing is reserved and nothing written; the answer is
//     state "none" with Step.Refused (KeyReused or Conflict in RefusedType). The step's
//     content found under its key without a reservation is refused as Conflict too: the
//     step says "reserved in full in this transaction", and a record that already says so
//     without a reservation was written by another path, which this one must not confirm.
func (l Ledger) Reserve(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	switch {
	case in.Key == "":
		return contract.LedgerResult{}, fnerr.Invalid("key", "must name the case")
	case in.Amount <= 0:
		return contract.LedgerResult{}, fnerr.Invalid("amount_kopecks", "must be greater than 0")
	case in.Period < 2000 || in.Period > 2100:
		return contract.LedgerResult{}, fnerr.Invalid("period", "must be a year such as 2025")
	}
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.LedgerResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	var step *transition.Step
	if in.Step != nil {
		s, err := l.PrepareStep(ctx, *in.Step, or(in.CaseID, in.Key))
		if err != nil {
			return contract.LedgerResult{}, err
		}
		step = &s
	}
	balKey := BalanceKey(in.INN, in.Period)
	refundable, err := l.Refundable(ctx, in.INN, in.Period)
	if err != nil {
		return contract.LedgerResult{}, err
	}
	// The first attempt does not look for an earlier reservation of this key when it has
	// something to write: the write is conditional on there being none, so a repeated call
	// fails it and the next attempt reads what is there (one read fewer on the path every
	// claim takes). An answer without a write (a refusal) is given only after looking.
	first := true
	recordStep := false // a retry found the whole amount reserved: make sure of its step
	notWritten := func() *contract.StepOutcome {
		if step == nil {
			return nil
		}
		return &contract.StepOutcome{}
	}
	var decide func(read bool) (contract.LedgerResult, []versioned, *transition.Step, error)
	decide = func(read bool) (contract.LedgerResult, []versioned, *transition.Step, error) {
		if read {
			res, bal, found, err := l.Get(ctx, in.Key)
			if err != nil {
				return contract.LedgerResult{}, nil, nil, err
			}
			if found {
				if res.Requested != in.Amount || res.BalanceKey != balKey {
					return contract.LedgerResult{}, nil, nil, fnerr.KeyReused("reservation %s already holds another claim (%s requested)", in.Key, domain.Kopecks(res.Requested))
				}
				out := result(res, bal)
				out.Duplicate = true
				out.Step = notWritten()
				recordStep = step != nil && res.Amount == res.Requested
				return out, nil, nil, nil
			}
		}
		bal, exists, err := l.balance(ctx, balKey)
		if err != nil {
			return contract.LedgerResult{}, nil, nil, err
		}
		if !exists {
			bal = Balance{Key: balKey, Kind: kindBalance, INN: in.INN, Period: in.Period}
		}
		committed := bal.Reserved + bal.Paid
		available := refundable - committed
		if available <= 0 {
			if !read {
				return decide(true)
			}
			reason := fmt.Sprintf("nothing left to refund for %d: %s of the refundable %s is already reserved or paid", in.Period,
				domain.Kopecks(committed), domain.Kopecks(refundable))
			if refundable <= 0 {
				reason = fmt.Sprintf("no overpayment to refund for %d once debts are offset", in.Period)
			}
			return contract.LedgerResult{Key: in.Key, State: contract.ReservationRefused, Requested: in.Amount, Reason: reason,
				Refundable: refundable, Reserved: bal.Reserved, Paid: bal.Paid, Step: notWritten()}, nil, nil, nil
		}
		grant := min(in.Amount, available)
		now := l.now()
		r := Reservation{Key: ReservationKey(in.Key), Kind: kindReservation, CaseID: or(in.CaseID, in.Key), BalanceKey: balKey,
			Requested: in.Amount, Amount: grant, State: contract.ReservationReserved, Version: 1, CreatedAt: now, UpdatedAt: now, ExpiresAt: in.ExpiresAt.UTC()}
		if grant < in.Amount {
			r.Reason = fmt.Sprintf("capped to %s: the claim of %s exceeds what is left of the refundable %s for %d (%s already reserved or paid)",
				domain.Kopecks(grant), domain.Kopecks(in.Amount), domain.Kopecks(refundable), in.Period, domain.Kopecks(committed))
		}
		next := bal
		next.Refundable, next.Reserved, next.Version, next.UpdatedAt = refundable, bal.Reserved+grant, bal.Version+1, now
		out := result(r, next)
		writes := []versioned{{r, 0}, {next, bal.Version}}
		if step == nil || grant < in.Amount {
			// A capped reservation is not what the `approved` step describes: no step.
			out.Step = notWritten()
			return out, writes, nil, nil
		}
		out.Step = &contract.StepOutcome{Written: true, Reason: step.Reason()}
		return out, writes, step, nil
	}
	attempt := func() (contract.LedgerResult, []versioned, *transition.Step, error) {
		read := !first
		first = false
		recordStep = false
		return decide(read)
	}
	out, err := optimisticTx(ctx, l, "reserve "+in.Key, attempt)
	var refused *stepRefused
	if errors.As(err, &refused) {
		// A concurrent attempt of this reservation may have made it, with the step that
		// refused this one, should the store report only the step's failure: look first.
		if _, found, rerr := l.reservation(ctx, in.Key); rerr != nil {
			return contract.LedgerResult{}, rerr
		} else if found {
			out, err = optimisticTx(ctx, l, "reserve "+in.Key, attempt) // reads it: the retry's answer
		}
	}
	if errors.As(err, &refused) {
		// The record refused the step: no reservation is made, so the case's record and the
		// ledger still agree (neither says "approved").
		outcome := refused.outcome()
		if refused.duplicate {
			outcome = contract.StepOutcome{RefusedType: fnerr.TypeConflict,
				Refused: fmt.Sprintf("step %s is in the record, but reservation %s was never made: the step was written by another path", step.Key, in.Key)}
		}
		return contract.LedgerResult{Key: in.Key, State: contract.ReservationNone, Requested: in.Amount,
			Reason: "nothing reserved: the case's record refused the step that would record the reservation", Step: &outcome}, nil
	}
	if err != nil {
		return contract.LedgerResult{}, err
	}
	if recordStep {
		o, err := l.record(ctx, step)
		if err != nil {
			return contract.LedgerResult{}, err
		}
		out.Step = &o
	}
	return out, nil
}

// PrepareStep checks a step that is to ride in one of the ledger's transactions for
// case caseID, and prepares its items.
func (l Ledger) PrepareStep(ctx context.Context, in contract.RecordInput, caseID string) (transition.Step, error) {
	if l.Steps == nil {
		return transition.Step{}, fnerr.Invalid("step", "this ledger writes no case steps (it has no step writer)")
	}
	if in.CaseID != caseID {
		return transition.Step{}, fnerr.Invalid("step.case_id", "must be the case of the reservation")
	}
	s, err := l.Steps.Prepare(ctx, in)
	var fe *fnerr.Error
	if errors.As(err, &fe) && fe.Type == fnerr.TypeInvalidInput {
		return transition.Step{}, &fnerr.Error{Type: fe.Type, Message: "step." + fe.Message}
	}
	if err != nil {
		return transition.Step{}, err
	}
	if n := s.Len() + 2; n > maxTxItems {
		return transition.Step{}, fnerr.Invalid("step", fmt.Sprintf("with the ledger's 2 items the transaction would hold %d items, more than %d", n, maxTxItems))
	}
	return s, nil
}

// maxTxItems is DynamoDB's limit of items in one transaction.
const maxTxItems = 100

// record makes sure a step is in the case's record with a write of its own (a retry
// that found the ledger's effect made): Written (Duplicate when it was there), or
// Refused with the record's business error. Other errors are retryable.
func (l Ledger) record(ctx context.Context, step *transition.Step) (contract.StepOutcome, error) {
	res, err := l.Steps.Record(ctx, step.In)
	var fe *fnerr.Error
	if errors.As(err, &fe) {
		return contract.StepOutcome{RefusedType: fe.Type, Refused: fe.Message}, nil
	}
	if err != nil {
		return contract.StepOutcome{}, err
	}
	return contract.StepOutcome{Written: true, Duplicate: res.Duplicate, Reason: step.Reason()}, nil
}

// Void releases a case's reservation. Voiding a voided one answers it again; a key that
// never reserved anything answers state "none". A reservation with a payout in flight is
// not voided here (Conflict): the payout is cancelled first, which knows whether money left.
func (l Ledger) Void(ctx context.Context, key, reason string) (contract.LedgerResult, error) {
	if key == "" {
		return contract.LedgerResult{}, fnerr.Invalid("key", "must name the case")
	}
	return optimistic(ctx, l, "void "+key, func() (contract.LedgerResult, []versioned, error) {
		res, bal, found, err := l.Get(ctx, key)
		if err != nil {
			return contract.LedgerResult{}, nil, err
		}
		if !found {
			return contract.LedgerResult{Key: key, State: contract.ReservationNone}, nil, nil
		}
		switch {
		case res.State == contract.ReservationVoided:
			out := result(res, bal)
			out.Duplicate = true
			return out, nil, nil
		case res.State == contract.ReservationPosted:
			return contract.LedgerResult{}, nil, fnerr.Conflict("reservation %s has been paid out; it cannot be voided", key)
		case res.PayoutKey != "":
			return contract.LedgerResult{}, nil, fnerr.Conflict("a payout (%s) is in flight for reservation %s: cancel it first", res.PayoutKey, key)
		}
		if bal.Reserved < res.Amount {
			return contract.LedgerResult{}, nil, l.tornOr(ctx, key, res, fmt.Errorf("the balance of period %d holds %d reserved, less than reservation %s's %d", bal.Period, bal.Reserved, key, res.Amount))
		}
		now := l.now()
		nr, nb := res, bal
		nr.State, nr.Reason, nr.Version, nr.UpdatedAt = contract.ReservationVoided, clip(reason, 300), res.Version+1, now
		nb.Reserved, nb.Version, nb.UpdatedAt = bal.Reserved-res.Amount, bal.Version+1, now
		return result(nr, nb), []versioned{{nr, res.Version}, {nb, bal.Version}}, nil
	})
}

// ClaimPayout makes payoutKey the one payout that may settle the reservation, for
// exactly its amount. The same key again is harmless; another key while one is in
// flight is refused (the first must be cancelled), and so is a payout of a voided
// reservation or of one paid under another key.
func (l Ledger) ClaimPayout(ctx context.Context, key, payoutKey string, principal int64) (Reservation, error) {
	return optimistic(ctx, l, "claim payout "+payoutKey, func() (Reservation, []versioned, error) {
		res, found, err := l.reservation(ctx, key)
		if err != nil {
			return res, nil, err
		}
		if !found {
			return res, nil, fnerr.Conflict("no reservation for %s: nothing may be paid without one", key)
		}
		if res.Amount != principal {
			return res, nil, fnerr.KeyReused("reservation %s holds %s, the payout asks for %s", key, domain.Kopecks(res.Amount), domain.Kopecks(principal))
		}
		switch {
		case res.State == contract.ReservationVoided:
			return res, nil, fnerr.Conflict("reservation %s was voided; nothing may be paid", key)
		case res.State == contract.ReservationPosted && res.PayoutKey == payoutKey:
			return res, nil, nil
		case res.State == contract.ReservationPosted:
			return res, nil, fnerr.Conflict("reservation %s was paid under another payout key", key)
		case res.PayoutKey == payoutKey:
			return res, nil, nil
		case res.PayoutKey != "":
			return res, nil, fnerr.Conflict("another payout (%s) is in flight for %s: cancel it first", res.PayoutKey, key)
		}
		next := res
		next.PayoutKey, next.Version, next.UpdatedAt = payoutKey, res.Version+1, l.now()
		return next, []versioned{{next, res.Version}}, nil
	})
}

// ReleasePayout clears a payout key that the treasury has cancelled without a transfer,
// so that another may be claimed or the reservation voided.
func (l Ledger) ReleasePayout(ctx context.Context, key, payoutKey string) error {
	_, err := optimistic(ctx, l, "release payout "+payoutKey, func() (struct{}, []versioned, error) {
		res, found, err := l.reservation(ctx, key)
		if err != nil {
			return struct{}{}, nil, err
		}
		if !found || res.PayoutKey != payoutKey || res.State == contract.ReservationVoided {
			return struct{}{}, nil, nil
		}
		if res.State == contract.ReservationPosted {
			return struct{}{}, nil, fnerr.Conflict("reservation %s was paid under %s; the key cannot be released", key, payoutKey)
		}
		next := res
		next.PayoutKey, next.Version, next.UpdatedAt = "", res.Version+1, l.now()
		return struct{}{}, []versioned{{next, res.Version}}, nil
	})
	return err
}

// Post settles the reservation as paid under payoutKey: reserved → paid, once.
func (l Ledger) Post(ctx context.Context, key, payoutKey string) (contract.LedgerResult, error) {
	return l.PostStep(ctx, key, payoutKey, nil)
}

// PostStep posts as Post does and, with step (the case's `paid` step, its transfer id
// filled in), writes the step in the posting's transaction. The money has left when this
// is called, so the step never stands in the posting's way: a step the record refuses
// (KeyReused, Conflict), or that cannot be written at all (invalid, no step writer), is
// left out and the reservation posted all the same, the result's Step saying Refused. A
// reservation already posted under payoutKey (a retry) makes sure of the step with a
// record of its own (Written, Duplicate when it was there, or Refused). The step's
// content found under its key while the reservation was not posted yet is answered as
// Written and Duplicate: it records this transfer (its id is in the content).
func (l Ledger) PostStep(ctx context.Context, key, payoutKey string, step *contract.RecordInput) (contract.LedgerResult, error) {
	var st *transition.Step
	var outcome *contract.StepOutcome // what became of the step when it is left out
	if step != nil {
		s, err := l.PrepareStep(ctx, *step, step.CaseID)
		var fe *fnerr.Error
		switch {
		case errors.As(err, &fe):
			outcome = &contract.StepOutcome{RefusedType: fe.Type, Refused: fe.Message}
		case err != nil:
			return contract.LedgerResult{}, err
		default:
			st = &s
		}
	}
	recordStep := false
	post := func() (contract.LedgerResult, []versioned, *transition.Step, error) {
		recordStep = false
		res, bal, found, err := l.Get(ctx, key)
		if err != nil {
			return contract.LedgerResult{}, nil, nil, err
		}
		if !found {
			return contract.LedgerResult{}, nil, nil, fnerr.Conflict("no reservation for %s to post", key)
		}
		switch {
		case res.State == contract.ReservationPosted && res.PayoutKey == payoutKey:
			out := result(res, bal)
			out.Duplicate = true
			out.Step = outcome
			recordStep = st != nil
			return out, nil, nil, nil
		case res.State != contract.ReservationReserved || res.PayoutKey != payoutKey:
			// Money left under a key the reservation does not name: a bug to surface.
			return contract.LedgerResult{}, nil, nil, fnerr.Conflict("reservation %s (%s, payout %q) cannot be posted under %s", key, res.State, res.PayoutKey, payoutKey)
		case bal.Reserved < res.Amount:
			return contract.LedgerResult{}, nil, nil, l.tornOr(ctx, key, res, fmt.Errorf("the balance of period %d holds %d reserved, less than reservation %s's %d", bal.Period, bal.Reserved, key, res.Amount))
		}
		now := l.now()
		nr, nb := res, bal
		nr.State, nr.Version, nr.UpdatedAt = contract.ReservationPosted, res.Version+1, now
		nb.Reserved, nb.Paid, nb.Version, nb.UpdatedAt = bal.Reserved-res.Amount, bal.Paid+res.Amount, bal.Version+1, now
		out := result(nr, nb)
		writes := []versioned{{nr, res.Version}, {nb, bal.Version}}
		if st == nil {
			out.Step = outcome
			return out, writes, nil, nil
		}
		out.Step = &contract.StepOutcome{Written: true, Reason: st.Reason()}
		return out, writes, st, nil
	}
	out, err := optimisticTx(ctx, l, "post "+key, post)
	var refused *stepRefused
	if errors.As(err, &refused) {
		// The record refused the step; the money has left all the same: post without it.
		o := refused.outcome()
		if refused.duplicate {
			o = contract.StepOutcome{Written: true, Duplicate: true, Reason: st.Reason()}
		}
		outcome, st = &o, nil
		out, err = optimisticTx(ctx, l, "post "+key, post)
	}
	if err != nil {
		return contract.LedgerResult{}, err
	}
	if recordStep {
		o, err := l.record(ctx, st)
		if err != nil {
			return contract.LedgerResult{}, err
		}
		out.Step = &o
	}
	return out, nil
}

// Expire voids, one page at a time, reservations still held past their expiry with no
// payout in flight: their case ended without settling them (a terminated workflow, for
// one). Those with a payout in flight are counted for an operator, never voided here:
// only the payout's cancellation can tell whether money left.
func (l Ledger) Expire(ctx context.Context, in contract.LedgerInput) (contract.LedgerResult, error) {
	now := in.Now
	if now.IsZero() {
		now = l.now()
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 500
	}
	scan := &dynamodb.ScanInput{TableName: aws.String(l.Table), Limit: aws.Int32(int32(limit)),
		FilterExpression:          aws.String("#kind = :r AND #state = :s"),
		ExpressionAttributeNames:  map[string]string{"#kind": "kind", "#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": store.S(kindReservation), ":s": store.S(contract.ReservationReserved)},
		ConsistentRead:            aws.Bool(true)}
	if in.Cursor != "" {
		scan.ExclusiveStartKey = map[string]types.AttributeValue{"key": store.S(in.Cursor)}
	}
	page, err := l.DB.Scan(ctx, scan)
	if err != nil {
		return contract.LedgerResult{}, fmt.Errorf("scan reservations: %w", err)
	}
	var items []Reservation
	if err := store.UnmarshalList(page.Items, &items); err != nil {
		return contract.LedgerResult{}, fmt.Errorf("decode reservations: %w", err)
	}
	out := contract.LedgerResult{State: "swept"}
	for _, r := range items {
		// The filter is applied again here: a store that ignores it must not widen the sweep.
		if r.Kind != kindReservation || r.State != contract.ReservationReserved || r.ExpiresAt.IsZero() || r.ExpiresAt.After(now) {
			continue
		}
		out.Scanned++
		if r.PayoutKey != "" {
			out.InFlight++
			continue
		}
		res, err := l.Void(ctx, strings.TrimPrefix(r.Key, "res#"), "expired: the case ended without settling the reservation")
		var fe *fnerr.Error
		if errors.As(err, &fe) {
			out.InFlight++ // a payout was claimed meanwhile
			continue
		}
		if err != nil {
			return out, err
		}
		if res.State == contract.ReservationVoided && !res.Duplicate {
			out.Voided++
		}
	}
	if k, ok := page.LastEvaluatedKey["key"].(*types.AttributeValueMemberS); ok {
		out.Cursor = k.Value
	}
	return out, nil
}

// versioned is one Put of a transaction: the item, and the version it was computed from
// (0: the item must not exist yet).
type versioned struct {
	item    any
	version int64
}

// stepRefused is a transaction cancelled by the step's items alone, as the step explains
// it: a duplicate (the step is in the record with this content) or the record's
// business refusal.
type stepRefused struct {
	duplicate bool
	err       *fnerr.Error
}

func (e *stepRefused) Error() string {
	if e.duplicate {
		return "the step is in the record already"
	}
	return "the record refused the step: " + e.err.Error()
}

func (e *stepRefused) outcome() contract.StepOutcome {
	if e.err == nil {
		return contract.StepOutcome{}
	}
	return contract.StepOutcome{RefusedType: e.err.Type, Refused: e.err.Message}
}

// write makes the ledger's items, and the step's when there is one, in one transaction.
// A transaction cancelled by the step's items alone (the ledger's own conditions held)
// is the step's to explain: a *stepRefused, or a retryable error; never contention,
// which a new read of the ledger would not change.
func (l Ledger) write(ctx context.Context, step *transition.Step, items ...versioned) error {
	tx := make([]types.TransactWriteItem, 0, len(items))
	for _, it := range items {
		av, err := store.Marshal(it.item)
		if err != nil {
			return fmt.Errorf("encode ledger item: %w", err)
		}
		put := &types.Put{TableName: aws.String(l.Table), Item: av}
		if it.version == 0 {
			put.ConditionExpression = aws.String("attribute_not_exists(#k)")
			put.ExpressionAttributeNames = map[string]string{"#k": "key"}
		} else {
			put.ConditionExpression = aws.String("#v = :v")
			put.ExpressionAttributeNames = map[string]string{"#v": "version"}
			put.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.FormatInt(it.version, 10)}}
		}
		tx = append(tx, types.TransactWriteItem{Put: put})
	}
	if step != nil {
		tx = append(tx, step.Puts()...)
	}
	_, err := l.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if step != nil && errors.As(err, &tce) && !failed(tce.CancellationReasons, len(items)) {
		res, mine, xerr := step.Explain(ctx, tce.CancellationReasons, len(items))
		var fe *fnerr.Error
		switch {
		case !mine: // no step condition failed either: contention, throttling (isContention decides)
		case xerr == nil && res.Duplicate:
			return &stepRefused{duplicate: true}
		case errors.As(xerr, &fe):
			return &stepRefused{err: fe}
		case xerr != nil:
			return fmt.Errorf("write ledger: %w", xerr)
		}
	}
	return fmt.Errorf("write ledger: %w", err)
}

// failed tells whether any of the first n items of a cancelled transaction failed.
func failed(reasons []types.CancellationReason, n int) bool {
	for i := 0; i < n && i < len(reasons); i++ {
		if c := aws.ToString(reasons[i].Code); c != "" && c != "None" {
			return true
		}
	}
	return false
}

// errTorn: Get reads a reservation, then its balance, and a writer in between (a
// concurrent post or void of the same reservation) makes the two disagree. It is
// contention: read again.
var errTorn = errors.New("the reservation changed while its balance was read")

// tornOr answers errTorn when the reservation res was read from has changed since (the
// balance read after it saw that change), else err: a balance that truly holds less
// than the reservation is a broken invariant to surface.
func (l Ledger) tornOr(ctx context.Context, key string, res Reservation, err error) error {
	now, found, rerr := l.reservation(ctx, key)
	if rerr != nil {
		return rerr
	}
	if found && now.Version != res.Version {
		return errTorn
	}
	return err
}

// optimistic runs one read-decide-write operation of the ledger until its conditional
// write wins. step reads the records and answers: without writes, the answer stands as it
// is (a duplicate, a refusal, nothing to do); with writes, the answer holds once they are
// made together. A write that lost to another writer reads again, at most maxTries times.
func optimistic[T any](ctx context.Context, l Ledger, what string, step func() (T, []versioned, error)) (T, error) {
	return optimisticTx(ctx, l, what, func() (T, []versioned, *transition.Step, error) {
		out, writes, err := step()
		return out, writes, nil, err
	})
}

// optimisticTx is optimistic whose writes may carry a case's step (only with writes).
// A step the record refuses ends it with a *stepRefused (wrapped).
func optimisticTx[T any](ctx context.Context, l Ledger, what string, step func() (T, []versioned, *transition.Step, error)) (T, error) {
	var zero T
	for try := 0; try < maxTries; try++ {
		out, writes, rec, err := step()
		if errors.Is(err, errTorn) {
			backoff(ctx, try)
			continue
		}
		if err != nil {
			return zero, err
		}
		if len(writes) == 0 {
			return out, nil
		}
		err = l.write(ctx, rec, writes...)
		if isContention(err) {
			backoff(ctx, try)
			continue
		}
		if err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		return out, nil
	}
	return zero, fmt.Errorf("%s: contended for %d tries", what, maxTries)
}

// isContention tells whether a transaction lost to another writer: a version condition
// failed, or DynamoDB refused two transactions on one item at once.
func isContention(err error) bool {
	var canceled *types.TransactionCanceledException
	if errors.As(err, &canceled) {
		for _, r := range canceled.CancellationReasons {
			if c := aws.ToString(r.Code); c != "" && c != "None" && c != "ConditionalCheckFailed" && c != "TransactionConflict" {
				return false
			}
		}
		return true
	}
	var conflict *types.TransactionConflictException
	return errors.As(err, &conflict) || store.IsConditionFailed(err)
}

// backoff waits a little, more after each lost try, with jitter so that contenders part.
func backoff(ctx context.Context, try int) {
	d := time.Duration(1+rand.IntN(5*(try+1))) * time.Millisecond
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// clip shortens free text to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
