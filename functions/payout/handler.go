// Package payout transfers an approved refund to the taxpayer's verified account through
// a treasury connector, exactly once per payout key whatever the retries or crashes.
package payout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	BIK       string `json:"bik"`
	Account   string `json:"account"`
}

// Receipt is the treasury's answer.
type Receipt struct {
	TransferID string    `json:"transfer_id"`
	At         time.Time `json:"at"`
	Duplicate  bool      `json:"-"`
}

// Treasury moves money. A real connector (the Federal Treasury's) implements it too;
// it must be idempotent by PayoutKey.
type Treasury interface {
	Transfer(ctx context.Context, t Transfer) (Receipt, error)
}

// DynamoTreasury is the local treasury: it records transfers in DynamoDB, once per key,
// and refuses a single transfer above MaxTransfer (as a real treasury limit would).
type DynamoTreasury struct {
	DB          store.DB
	Table       string
	MaxTransfer int64
	Now         func() time.Time
}

type record struct {
	Transfer
	TransferID string    `json:"transfer_id"`
	At         time.Time `json:"at"`
}

// Transfer records the transfer unless one with the same key exists.
func (d DynamoTreasury) Transfer(ctx context.Context, t Transfer) (Receipt, error) {
	if d.MaxTransfer > 0 && t.Amount > d.MaxTransfer {
		return Receipt{}, fnerr.Rejected("treasury refused the transfer: %s exceeds the single-transfer limit of %s",
			domain.Kopecks(t.Amount), domain.Kopecks(d.MaxTransfer))
	}
	sum := sha256.Sum256([]byte(t.PayoutKey))
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	rec := record{Transfer: t, TransferID: "tr-" + hex.EncodeToString(sum[:8]), At: now().UTC()}
	created, err := store.PutNew(ctx, d.DB, d.Table, "payout_key", rec)
	if err != nil {
		return Receipt{}, fmt.Errorf("record transfer: %w", err)
	}
	if !created {
		var prev record
		if _, err := store.Get(ctx, d.DB, d.Table, map[string]types.AttributeValue{"payout_key": store.S(t.PayoutKey)}, &prev); err != nil {
			return Receipt{}, err
		}
		if prev.Amount != t.Amount || prev.Account != t.Account {
			return Receipt{}, fnerr.Conflict("payout key already used for a different transfer")
		}
		return Receipt{TransferID: prev.TransferID, At: prev.At, Duplicate: true}, nil
	}
	return Receipt{TransferID: rec.TransferID, At: rec.At}, nil
}

// Handler pays out.
type Handler struct {
	DB        store.DB
	Taxpayers string // registry table
	Treasury  Treasury
}

// Pay sends the amount to the taxpayer's verified account.
func (h Handler) Pay(ctx context.Context, in contract.PayoutInput) (contract.PayoutResult, error) {
	switch {
	case in.PayoutKey == "":
		return contract.PayoutResult{}, fnerr.Invalid("payout_key", "must not be empty")
	case in.Amount <= 0:
		return contract.PayoutResult{}, fnerr.Invalid("amount_kopecks", "must be greater than 0")
	}
	if err := domain.ValidateINN("inn", in.INN, true); err != nil {
		return contract.PayoutResult{}, fnerr.Invalid("inn", err.(domain.FieldError).Reason)
	}
	tp, found, err := taxpayer.Lookup(ctx, h.DB, h.Taxpayers, in.INN)
	if err != nil {
		return contract.PayoutResult{}, fmt.Errorf("payout: %w", err)
	}
	if !found {
		return contract.PayoutResult{}, fnerr.NotFound("no taxpayer with this INN in the registry")
	}
	switch taxpayer.BankState(tp) {
	case contract.BankPending:
		return contract.PayoutResult{}, fnerr.Conflict("a change of bank requisites is being verified; the payout waits for it")
	case contract.BankNone:
		return contract.PayoutResult{}, fnerr.Conflict("no verified bank requisites on record")
	}
	r, err := h.Treasury.Transfer(ctx, Transfer{PayoutKey: in.PayoutKey, CaseID: in.CaseID, Amount: in.Amount,
		BIK: tp.Bank.BIK, Account: tp.Bank.Account})
	if err != nil {
		return contract.PayoutResult{}, err
	}
	return contract.PayoutResult{TransferID: r.TransferID, Amount: in.Amount, AccountLast4: domain.MaskAccount(tp.Bank.Account),
		At: r.At, Duplicate: r.Duplicate}, nil
}
