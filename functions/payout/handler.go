// Package payout transfers an approved refund to the taxpayer's verified account through
// a treasury connector, exactly once per payout key whatever the retries or crashes, and
// settles the ledger's reservation it pays (functions/ledger): no transfer without a
// reservation, and a reservation is paid under one payout key at most.
//
// A payout key's content (amount, principal, interest, payee) is fixed when the workflow
// makes the key; the same key with other content is KeyReused (a bug for an operator,
// never a reason to pick a new key). A payout that cannot go to the payee it was prepared
// for is RequisitesChanged: the workflow holds it, cancels the key (Op "cancel", which
// fences the key in the treasury so that no late attempt can still transfer under it)
// and prepares a new one once the requisites are settled.
package payout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/ledger"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the local treasury's record of transfers: partition key payout_key.
const Table = "treasury"

// Transfer is one instruction to the treasury.
type Transfer struct {
	PayoutKey string `json:"payout_key"`
	CaseID    string `json:"case_id"`
	Amount    int64  `json:"amount_kopecks"`
	Principal int64  `json:"principal_kopecks"`
	Interest  int64  `json:"interest_kopecks"`
	PayeeRef  string `json:"payee_ref"`
	BIK       string `json:"bik"`
	Account   string `json:"account"`
}

// same tells whether two instructions under one key are the same payout.
func (t Transfer) same(o Transfer) bool {
	return t.CaseID == o.CaseID && t.Amount == o.Amount && t.Principal == o.Principal && t.Interest == o.Interest &&
		t.PayeeRef == o.PayeeRef && t.BIK == o.BIK && t.Account == o.Account
}

// Receipt is the treasury's answer.
type Receipt struct {
	TransferID string    `json:"transfer_id"`
	At         time.Time `json:"at"`
	Amount     int64     `json:"-"`
	Principal  int64     `json:"-"`
	Interest   int64     `json:"-"`
	Account    string    `json:"-"`
	Duplicate  bool      `json:"-"`
}

// Treasury moves money. A real connector (the Federal Treasury's) implements it too.
type Treasury interface {
	// Transfer executes t at most once per PayoutKey: the same key and content again
	// answers the first receipt (Duplicate); other content is KeyReused; a cancelled key
	// is refused.
	Transfer(ctx context.Context, t Transfer) (Receipt, error)
	// Cancel fences a key so that no transfer can happen under it afterwards. If one
	// already happened it answers its receipt and transferred = true instead.
	Cancel(ctx context.Context, payoutKey string) (r Receipt, transferred bool, err error)
	// Limit is the largest single transfer the treasury accepts, in kopecks (0: none). A
	// payout above it is refused before anything is claimed or sent.
	Limit() int64
}

// CancelledError is the treasury's refusal of a transfer under a cancelled key.
type CancelledError struct{ Err *fnerr.Error }

func (e *CancelledError) Error() string { return e.Err.Error() }
func (e *CancelledError) Unwrap() error { return e.Err }

// Record states in the local treasury.
const (
	stateTransferred = "transferred"
	stateCancelled   = "cancelled"
)

// DynamoTreasury is the local treasury: it records transfers in DynamoDB, once per key,
// and refuses a single transfer above MaxTransfer (as a real treasury limit would).
type DynamoTreasury struct {
	DB          store.DB
	Table       string
	MaxTransfer int64
	Now         func() time.Time
}

// Record is one key's record in the local treasury: a transfer, or a cancelled key.
type Record struct {
	Transfer
	State      string    `json:"state,omitempty"` // "" (older records) means transferred
	TransferID string    `json:"transfer_id,omitempty"`
	At         time.Time `json:"at"`
}

// Transferred tells whether the record is money that left.
func (r Record) Transferred() bool { return r.State != stateCancelled }

func (d DynamoTreasury) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d DynamoTreasury) get(ctx context.Context, key string) (Record, error) {
	var prev Record
	if _, err := store.Get(ctx, d.DB, d.Table, map[string]types.AttributeValue{"payout_key": store.S(key)}, &prev); err != nil {
		return prev, err
	}
	return prev, nil
}

func receipt(r Record, dup bool) Receipt {
	return Receipt{TransferID: r.TransferID, At: r.At, Amount: r.Amount, Principal: r.Principal, Interest: r.Interest, Account: r.Account, Duplicate: dup}
}

// Limit is MaxTransfer.
func (d DynamoTreasury) Limit() int64 { return d.MaxTransfer }

// Transfer records the transfer unless the key has a record already.
func (d DynamoTreasury) Transfer(ctx context.Context, t Transfer) (Receipt, error) {
	if d.MaxTransfer > 0 && t.Amount > d.MaxTransfer {
		return Receipt{}, fnerr.Rejected("treasury refused the transfer: %s exceeds the single-transfer limit of %s",
			domain.Kopecks(t.Amount), domain.Kopecks(d.MaxTransfer))
	}
	sum := sha256.Sum256([]byte(t.PayoutKey))
	rec := Record{Transfer: t, State: stateTransferred, TransferID: "tr-" + hex.EncodeToString(sum[:8]), At: d.now()}
	created, err := store.PutNew(ctx, d.DB, d.Table, "payout_key", rec)
	if err != nil {
		return Receipt{}, fmt.Errorf("record transfer: %w", err)
	}
	if created {
		return receipt(rec, false), nil
	}
	prev, err := d.get(ctx, t.PayoutKey)
	if err != nil {
		return Receipt{}, err
	}
	if !prev.Transferred() {
		return Receipt{}, &CancelledError{fnerr.Conflict("payout key %s was cancelled; it can never transfer", t.PayoutKey)}
	}
	if !prev.same(t) {
		return Receipt{}, fnerr.KeyReused("payout key %s already names a different transfer", t.PayoutKey)
	}
	return receipt(prev, true), nil
}

// Cancel writes a tombstone for the key unless a transfer holds it.
func (d DynamoTreasury) Cancel(ctx context.Context, key string) (Receipt, bool, error) {
	created, err := store.PutNew(ctx, d.DB, d.Table, "payout_key", Record{Transfer: Transfer{PayoutKey: key}, State: stateCancelled, At: d.now()})
	if err != nil {
		return Receipt{}, false, fmt.Errorf("cancel payout key: %w", err)
	}
	if created {
		return Receipt{}, false, nil
	}
	prev, err := d.get(ctx, key)
	if err != nil {
		return Receipt{}, false, err
	}
	if !prev.Transferred() {
		return Receipt{}, false, nil
	}
	return receipt(prev, true), true, nil
}

// Handler pays out.
type Handler struct {
	DB        store.DB
	Taxpayers string // registry table
	Treasury  Treasury
	Ledger    ledger.Ledger
}

// Handle runs a payout or its cancellation.
func (h Handler) Handle(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	switch in.Op {
	case "", contract.PayoutPay:
		return h.Pay(ctx, in)
	case contract.PayoutCancel:
		return h.Cancel(ctx, in)
	}
	return contract.PayoutResult{}, fnerr.Invalid("op", "must be pay or cancel")
}

// Pay sends the amount to the verified account the payout was prepared for, and posts
// the reservation it settles.
//
// With in.Step (the case's `paid` step): the step is checked before anything is claimed
// or sent (an invalid step is InvalidInput, and nothing happens); once the money has
// left, contract.TransferPlaceholder is filled with the transfer id and the step written
// in the posting's transaction. The result's Step: Written (Duplicate when a retry found
// it written), or Refused (the record holds something else under its key, or is not at
// the step it follows) — the reservation is posted all the same, since the money left.
// A failure before the transfer writes no step; its retry starts over.
func (h Handler) Pay(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	switch {
	case in.PayoutKey == "":
		return contract.PayoutResult{}, fnerr.Invalid("payout_key", "must not be empty")
	case in.Reservation == "":
		return contract.PayoutResult{}, fnerr.Invalid("reservation", "must name the ledger reservation the payout settles")
	case in.Principal <= 0:
		return contract.PayoutResult{}, fnerr.Invalid("principal_kopecks", "must be greater than 0")
	case in.Interest < 0:
		return contract.PayoutResult{}, fnerr.Invalid("interest_kopecks", "must not be negative")
	case in.Amount != in.Principal+in.Interest:
		return contract.PayoutResult{}, fnerr.Invalid("amount_kopecks", "must be principal plus interest")
	case in.Payee == "":
		return contract.PayoutResult{}, fnerr.Invalid("payee", "must name the verified account the payout was prepared for")
	}
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.PayoutResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	if err := h.checkStep(ctx, in); err != nil {
		return contract.PayoutResult{}, err
	}
	tp, found, err := taxpayer.Lookup(ctx, h.DB, h.Taxpayers, in.INN)
	if err != nil {
		return contract.PayoutResult{}, fmt.Errorf("payout: %w", err)
	}
	if !found {
		return contract.PayoutResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	var held string
	switch {
	case taxpayer.BankState(tp) == contract.BankPending:
		held = "a change of bank requisites is being verified; the payout waits for it"
	case taxpayer.BankState(tp) == contract.BankNone:
		held = "no verified bank requisites on record"
	case taxpayer.PayeeRef(*tp.Bank) != in.Payee:
		held = "the verified account changed after the payout was prepared"
	}
	if held != "" {
		return contract.PayoutResult{}, fnerr.RequisitesChanged("%s", held)
	}
	// A refund goes only to an individual's rouble account [domain.md, "Rules added after
	// review"]: anything else is for an operator (and the taxpayer to change requisites),
	// never a transfer. The reason names the rule, not the account.
	if err := domain.ValidatePayoutAccount("account", tp.Bank.Account, tp.Bank.BIK); err != nil {
		var fe domain.FieldError
		reason := err.Error()
		if errors.As(err, &fe) {
			reason = fe.Reason
		}
		return contract.PayoutResult{}, fnerr.Rejected("the verified account cannot receive a refund: it %s", reason)
	}
	// Above the treasury's single-transfer limit the payout can never succeed: say so
	// before the reservation is claimed or anything is sent, so an operator arranges it.
	if limit := h.Treasury.Limit(); limit > 0 && in.Amount > limit {
		return contract.PayoutResult{}, fnerr.Rejected("the payout of %s exceeds the treasury's single-transfer limit of %s: "+
			"it cannot be made as one transfer; an operator must arrange it", domain.Kopecks(in.Amount), domain.Kopecks(limit))
	}
	if _, err := h.Ledger.ClaimPayout(ctx, in.Reservation, in.PayoutKey, in.Principal); err != nil {
		return contract.PayoutResult{}, err
	}
	r, err := h.Treasury.Transfer(ctx, Transfer{PayoutKey: in.PayoutKey, CaseID: in.CaseID, Amount: in.Amount, Principal: in.Principal,
		Interest: in.Interest, PayeeRef: in.Payee, BIK: tp.Bank.BIK, Account: tp.Bank.Account})
	var cancelled *CancelledError
	if errors.As(err, &cancelled) {
		// A late attempt under a fenced key: it must not keep the reservation's claim.
		if rerr := h.Ledger.ReleasePayout(ctx, in.Reservation, in.PayoutKey); rerr != nil {
			return contract.PayoutResult{}, rerr
		}
	}
	if err != nil {
		return contract.PayoutResult{}, err
	}
	// The money has left: a failure from here on is retried, and the retry finds the
	// transfer (Duplicate) and posts. The step rides in the posting's transaction, and a
	// step the record refuses is left out: it never stands in the way of the posting.
	posted, err := h.Ledger.PostStep(ctx, in.Reservation, in.PayoutKey, filled(in.Step, r.TransferID))
	if err != nil {
		return contract.PayoutResult{}, err
	}
	return contract.PayoutResult{TransferID: r.TransferID, Amount: in.Amount, Principal: in.Principal, Interest: in.Interest,
		AccountLast4: domain.MaskAccount(tp.Bank.Account), At: r.At, Duplicate: r.Duplicate, Step: posted.Step}, nil
}

// sampleTransferID stands for the treasury's transfer id when a step is checked before
// the transfer (the local treasury's ids have this shape).
const sampleTransferID = "tr-0000000000000000"

// checkStep refuses, before anything is claimed or sent, a step that could not ride in
// the posting: no step writer, another case's step, or a step record-transition would
// refuse as invalid.
func (h Handler) checkStep(ctx context.Context, in contract.PayoutInput) error {
	if in.Step == nil {
		return nil
	}
	caseID := in.CaseID
	if caseID == "" {
		caseID = in.Reservation
	}
	_, err := h.Ledger.PrepareStep(ctx, contract.FillTransfer(*in.Step, sampleTransferID), caseID)
	return err
}

// filled is the step with the transfer id in place of contract.TransferPlaceholder (nil
// without a step).
func filled(step *contract.RecordInput, transferID string) *contract.RecordInput {
	if step == nil {
		return nil
	}
	f := contract.FillTransfer(*step, transferID)
	return &f
}

// Cancel fences the payout key. If the money had already left under it, the reservation
// is posted and the receipt answered (Transferred); otherwise the key is released in the
// ledger and, when asked, the reservation voided.
//
// With in.Step (the step the key's pay carried): money that left is posted with the step
// exactly as Pay does (Step: Written, Duplicate or Refused); a key fenced without a
// transfer answers Step not Written, and since no pay can transfer under it afterwards,
// its step is never written.
func (h Handler) Cancel(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	switch {
	case in.PayoutKey == "":
		return contract.PayoutResult{}, fnerr.Invalid("payout_key", "must not be empty")
	case in.Reservation == "":
		return contract.PayoutResult{}, fnerr.Invalid("reservation", "must name the ledger reservation")
	}
	if err := h.checkStep(ctx, in); err != nil {
		return contract.PayoutResult{}, err
	}
	r, transferred, err := h.Treasury.Cancel(ctx, in.PayoutKey)
	if err != nil {
		return contract.PayoutResult{}, err
	}
	if transferred {
		// The money left under the key: post it with the step, exactly as the pay would.
		posted, err := h.Ledger.PostStep(ctx, in.Reservation, in.PayoutKey, filled(in.Step, r.TransferID))
		if err != nil {
			return contract.PayoutResult{}, err
		}
		return contract.PayoutResult{TransferID: r.TransferID, Amount: r.Amount, Principal: r.Principal, Interest: r.Interest,
			AccountLast4: domain.MaskAccount(r.Account), At: r.At, Duplicate: true, Transferred: true, Step: posted.Step}, nil
	}
	if err := h.Ledger.ReleasePayout(ctx, in.Reservation, in.PayoutKey); err != nil {
		return contract.PayoutResult{}, err
	}
	out := contract.PayoutResult{Cancelled: true}
	if in.Step != nil {
		// The key is fenced: no money left under it, and its step is never written.
		out.Step = &contract.StepOutcome{}
	}
	if in.Void {
		v, err := h.Ledger.Void(ctx, in.Reservation, in.VoidReason)
		if err != nil {
			return contract.PayoutResult{}, err
		}
		out.Voided = v.State == contract.ReservationVoided
	}
	return out, nil
}
