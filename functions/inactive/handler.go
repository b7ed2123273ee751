// Package inactive finds accounts without activity for a configured number of months
// (SweepPage.InactiveMonths, default 12 [000:40]): the first
// sweep that finds one sends a notice; if it is still inactive a grace period after the
// notice, it is flagged for deletion (never deleted here: deletion is a separate,
// deliberate step).
package inactive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// DefaultMonths is the inactivity period when the page names none [000:40].
const DefaultMonths = 12

// Handler sweeps the registry a page at a time.
type Handler struct {
	DB        store.DB
	Taxpayers string
	Outbox    string
}

// Sweep handles one page of the registry.
func (h Handler) Sweep(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	day, err := time.Parse(time.DateOnly, in.Date)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("date", "must be YYYY-MM-DD")
	}
	if in.GraceDays <= 0 {
		return contract.SweepResult{}, fnerr.Invalid("grace_days", "must be greater than 0")
	}
	switch {
	case in.InactiveMonths == 0:
		in.InactiveMonths = DefaultMonths
	case in.InactiveMonths < 0 || in.InactiveMonths > 120:
		return contract.SweepResult{}, fnerr.Invalid("inactive_months", "must be 1-120")
	}
	if in.Limit <= 0 || in.Limit > 1000 {
		in.Limit = 500
	}
	start, err := store.DecodeCursor(in.Cursor)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("cursor", err.Error())
	}
	page, err := h.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(h.Taxpayers), ExclusiveStartKey: start, Limit: aws.Int32(int32(in.Limit))})
	if err != nil {
		return contract.SweepResult{}, fmt.Errorf("scan registry: %w", err)
	}
	var tps []contract.Taxpayer
	if err := store.UnmarshalList(page.Items, &tps); err != nil {
		return contract.SweepResult{}, err
	}
	res := contract.SweepResult{Processed: len(tps), Cursor: store.EncodeCursor(page.LastEvaluatedKey)}
	out := notify.Handler{DB: h.DB, Table: h.Outbox}
	cutoff := day.AddDate(0, -in.InactiveMonths, 0)
	for _, tp := range tps {
		last, err := time.Parse(time.DateOnly, tp.LastActivity)
		if err != nil {
			continue // no activity on record: nothing to judge by
		}
		key := map[string]types.AttributeValue{"inn": store.S(tp.INN)}
		switch {
		case !last.Before(cutoff):
			if tp.InactiveNoticeAt != nil && tp.DeletionFlaggedAt == nil {
				// active again: the notice no longer stands
				if _, err := store.SetFields(ctx, h.DB, h.Taxpayers, key, map[string]any{"inactive_notice_at": nil}); err != nil {
					return res, err
				}
			}
		case tp.InactiveNoticeAt == nil:
			r, err := out.Send(ctx, contract.Notification{NotificationID: "inactive#" + ref(tp.INN) + "#" + tp.LastActivity, CaseID: "inactive-" + ref(tp.INN),
				INN: tp.INN, Recipient: "taxpayer", Template: "account.inactive_notice", At: day, Channels: tp.Channels,
				Params: map[string]string{"grace_days": fmt.Sprint(in.GraceDays)}})
			if err != nil {
				return res, err
			}
			if !r.Duplicate {
				res.Sent++
			}
			if _, err := store.SetFields(ctx, h.DB, h.Taxpayers, key, map[string]any{"inactive_notice_at": day}); err != nil {
				return res, err
			}
		case tp.DeletionFlaggedAt == nil && !day.Before(tp.InactiveNoticeAt.AddDate(0, 0, in.GraceDays)):
			if _, err := store.SetFields(ctx, h.DB, h.Taxpayers, key, map[string]any{"deletion_flagged_at": day}); err != nil {
				return res, err
			}
			if _, err := out.Send(ctx, contract.Notification{NotificationID: "flagged#" + ref(tp.INN) + "#" + tp.LastActivity, CaseID: "inactive-" + ref(tp.INN),
				Recipient: "operator", Template: "account.flagged_for_deletion", At: day}); err != nil {
				return res, err
			}
			res.Flagged++
		}
	}
	return res, nil
}

// ref names a taxpayer in ids without the INN itself: a hash, stable across runs.
func ref(inn string) string {
	sum := sha256.Sum256([]byte("taxflow-inactive:" + inn))
	return hex.EncodeToString(sum[:8])
}
