// Package reminders sends deadline reminders for tax obligations [000:248, 002:349,
// 004:32]: one page of the obligations due on date+lead, one notification for each one
// not yet paid through the outbox, on the channels the taxpayer chose. The notification
// id is the obligation and the lead time, so however often a day is swept (retries,
// re-runs, overlaps, backfills) each reminder is sent once.
package reminders

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/functions/taxpayer"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/domain"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table and index of obligations.
const (
	Table = "obligations"
	Index = "by_due"
)

// Handler sweeps one page.
type Handler struct {
	DB          store.DB
	Obligations string
	Taxpayers   string
	Outbox      string
}

// parallel is how many notifications a page writes at once.
const parallel = 16

// Sweep sends the reminders of one page.
func (h Handler) Sweep(ctx context.Context, in contract.SweepPage) (contract.SweepResult, error) {
	day, err := time.Parse(time.DateOnly, in.Date)
	switch {
	case err != nil:
		return contract.SweepResult{}, fnerr.Invalid("date", "must be YYYY-MM-DD")
	case in.LeadDays < 0 || in.LeadDays > 366:
		return contract.SweepResult{}, fnerr.Invalid("lead_days", "must be 0-366")
	case in.Limit <= 0 || in.Limit > 1000:
		in.Limit = 500
	}
	start, err := store.DecodeCursor(in.Cursor)
	if err != nil {
		return contract.SweepResult{}, fnerr.Invalid("cursor", err.Error())
	}
	due := day.AddDate(0, 0, in.LeadDays)
	page, err := h.DB.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(h.Obligations), IndexName: aws.String(Index),
		KeyConditionExpression: aws.String("due_month = :m AND due_date = :d"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":m": store.S(due.Format("2006-01")), ":d": store.S(due.Format(time.DateOnly))},
		ExclusiveStartKey: start, Limit: aws.Int32(int32(in.Limit)),
	})
	if err != nil {
		return contract.SweepResult{}, fmt.Errorf("read obligations: %w", err)
	}
	var obligations []contract.Obligation
	if err := store.UnmarshalList(page.Items, &obligations); err != nil {
		return contract.SweepResult{}, err
	}
	res := contract.SweepResult{Processed: len(obligations), Cursor: store.EncodeCursor(page.LastEvaluatedKey)}
	// A tax already paid needs no reminder: counted as processed, nothing sent.
	unpaid := obligations[:0]
	for _, o := range obligations {
		if !o.Paid {
			unpaid = append(unpaid, o)
		}
	}
	obligations = unpaid
	channels, err := h.channels(ctx, obligations)
	if err != nil {
		return contract.SweepResult{}, err
	}
	out := notify.Handler{DB: h.DB, Table: h.Outbox}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, o := range obligations {
		wg.Add(1)
		sem <- struct{}{}
		go func(o contract.Obligation) {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := out.Send(ctx, contract.Notification{
				NotificationID: fmt.Sprintf("reminder#%s#%d", o.ObligationID, in.LeadDays),
				CaseID:         o.ObligationID, INN: o.INN, Recipient: "taxpayer",
				Template: fmt.Sprintf("reminder.%dd", in.LeadDays), At: day,
				Params:   map[string]string{"tax": o.Tax, "amount": domain.Kopecks(o.Amount).String(), "due_date": o.DueDate},
				Channels: channels[o.INN],
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			case r.Duplicate:
				res.Duplicates++
			default:
				res.Sent++
			}
		}(o)
	}
	wg.Wait()
	if firstErr != nil {
		return contract.SweepResult{}, fmt.Errorf("send reminders: %w", firstErr)
	}
	return res, nil
}

// channels reads each distinct taxpayer's chosen channels once per page.
func (h Handler) channels(ctx context.Context, obligations []contract.Obligation) (map[string][]string, error) {
	out := map[string][]string{}
	for _, o := range obligations {
		if _, done := out[o.INN]; done {
			continue
		}
		tp, found, err := taxpayer.Lookup(ctx, h.DB, h.Taxpayers, o.INN)
		if err != nil {
			return nil, fmt.Errorf("read taxpayer: %w", err)
		}
		out[o.INN] = []string{"cabinet"}
		if found && len(tp.Channels) > 0 {
			out[o.INN] = tp.Channels
		}
	}
	return out, nil
}
