// Package eventrelay moves pending integrator events (internal/events) into their
// tenants' feeds, in each case's sequence order, each event once.
//
// Why the order holds: a case's events commit in seq order (step n+1's projection is
// conditioned on version n), and the relay only ever marks a contiguous run of a case's
// events relayed, always starting at its lowest pending one, in one transaction with the
// feed entries it appends. So the relayed events of a case are a prefix of its committed
// ones, and a case's entries enter the feed in seq order. The by_state index that tells
// the relay which cases have pending events is eventually consistent; it only says where
// to look: what is relayed is read from the table itself (a consistent Query), and every
// event is marked pending→relayed under a condition, so a stale index entry or a second
// relay costs a cancelled transaction, never a duplicate or a reordering.
//
// Why the feed has no gaps or duplicates: a tenant's feed entries are appended in the
// transaction that moves the tenant's counter (pos 0) from its last value to the new
// one, conditioned on the last value read. Two relays appending for one tenant conflict
// on the counter and one of them tries again.
package eventrelay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/events"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// Handler relays over the deployment's tables: Events (events.Table), Feed
// (events.FeedTable) and Owners (case_owners, whose tenant a case's events go to).
type Handler struct {
	DB     store.DB
	Events string
	Feed   string
	Owners string
	Now    func() time.Time
	// Poll is the pause between two looks at an idle index (default 200 ms).
	Poll time.Duration
	// Observe, when set, is told of each event relayed to a tenant and its lag (commit to
	// feed): the metrics.
	Observe func(lag time.Duration)
}

const (
	defaultLimit = 100
	maxLimit     = 1000
	maxWait      = 5 * time.Minute
	// perTx: a transaction holds the counter, and a feed entry and an event update per
	// event: 1 + 2×49 = 99 ≤ 100 items.
	perTx = 49
	// tries of one tenant's append against other relays before the pass moves on (the
	// next pass comes back for what is left).
	tries = 5
)

// Relay relays what is pending until nothing is, then looks again every Poll for up to
// WaitMillis; it returns once it relayed something after being idle, or the wait ran
// out, or the invocation's own deadline nears. An idle system thus costs one invocation
// per wait, and an event waits about one Poll for the relay.
func (h Handler) Relay(ctx context.Context, in events.RelayInput) (events.RelayResult, error) {
	if in.WaitMillis < 0 || time.Duration(in.WaitMillis)*time.Millisecond > maxWait {
		return events.RelayResult{}, fnerr.Invalid("wait_millis", fmt.Sprintf("0 to %d", maxWait.Milliseconds()))
	}
	if in.Limit < 0 || in.Limit > maxLimit {
		return events.RelayResult{}, fnerr.Invalid("limit", fmt.Sprintf("0 to %d", maxLimit))
	}
	if in.Limit == 0 {
		in.Limit = defaultLimit
	}
	poll := h.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	deadline := h.now().Add(time.Duration(in.WaitMillis) * time.Millisecond)
	if d, ok := ctx.Deadline(); ok && d.Add(-2*time.Second).Before(deadline) {
		deadline = d.Add(-2 * time.Second) // leave time to answer before the function times out
	}
	r := &run{h: h, owners: map[string]string{}}
	idle, woke := false, false
	for {
		moved, err := r.pass(ctx, in.Limit)
		if err != nil {
			return r.res, err
		}
		if moved && idle {
			woke = true
		}
		if !h.now().Before(deadline) {
			return r.res, nil
		}
		if moved {
			continue // more may be pending: relay until nothing is
		}
		if woke {
			return r.res, nil
		}
		idle = true
		select {
		case <-ctx.Done():
			return r.res, nil
		case <-time.After(poll):
		}
	}
}

func (h Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// run is one invocation's state: the tenants of the cases seen (a case's owner never
// changes) and the counts.
type run struct {
	h      Handler
	owners map[string]string
	res    events.RelayResult
}

// pass reads one page of the index and relays the cases it names. moved: something was
// relayed, or a transaction lost to another relay (so there is more to look at).
func (r *run) pass(ctx context.Context, limit int) (moved bool, err error) {
	r.res.Passes++
	page, err := r.h.DB.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(r.h.Events), IndexName: aws.String(events.ByState),
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": store.S(events.StatePending)},
		ScanIndexForward:          aws.Bool(true), Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return false, fmt.Errorf("read the pending events: %w", err)
	}
	var listed []events.Item
	if err := store.UnmarshalList(page.Items, &listed); err != nil {
		return false, fmt.Errorf("decode the pending events: %w", err)
	}
	// The highest seq the index shows of each case, cases in the order first seen (oldest).
	var order []string
	upTo := map[string]int64{}
	for _, e := range listed {
		if _, ok := upTo[e.CaseID]; !ok {
			order = append(order, e.CaseID)
		}
		upTo[e.CaseID] = max(upTo[e.CaseID], e.Seq)
	}
	byTenant := map[string][]string{}
	var tenants []string
	for _, c := range order {
		t, err := r.tenant(ctx, c)
		if err != nil {
			return false, err
		}
		if _, ok := byTenant[t]; !ok {
			tenants = append(tenants, t)
		}
		byTenant[t] = append(byTenant[t], c)
	}
	for _, t := range tenants {
		n, lost, err := r.relayTenant(ctx, t, byTenant[t], upTo)
		if err != nil {
			return moved, err
		}
		moved = moved || n > 0 || lost
	}
	return moved, nil
}

// tenant is the tenant a case's events go to: its owner ("" when it has none: an account
// belongs to its taxpayer, not to a tenant).
func (r *run) tenant(ctx context.Context, caseID string) (string, error) {
	if t, ok := r.owners[caseID]; ok {
		return t, nil
	}
	t, _, _, err := tasks.CaseOwner(ctx, r.h.DB, r.h.Owners, caseID)
	if err != nil {
		return "", fmt.Errorf("read the owner of %s: %w", caseID, err)
	}
	r.owners[caseID] = t
	return t, nil
}

// pending reads a case's pending events up to seq upTo, lowest first: consistently, from
// the table, down from upTo until the first relayed one (what lies below it is relayed).
func (r *run) pending(ctx context.Context, caseID string, upTo int64) ([]events.Item, error) {
	var out []events.Item
	var start map[string]types.AttributeValue
	for {
		page, err := r.h.DB.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(r.h.Events), ConsistentRead: aws.Bool(true),
			KeyConditionExpression:    aws.String("#c = :c AND #q <= :q"),
			ExpressionAttributeNames:  map[string]string{"#c": "case_id", "#q": "seq"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":c": store.S(caseID), ":q": num(upTo)},
			ScanIndexForward:          aws.Bool(false), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("read the events of %s: %w", caseID, err)
		}
		var items []events.Item
		if err := store.UnmarshalList(page.Items, &items); err != nil {
			return nil, fmt.Errorf("decode the events of %s: %w", caseID, err)
		}
		for _, e := range items {
			if e.State != events.StatePending {
				return reverse(out), nil
			}
			out = append(out, e)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return reverse(out), nil
		}
		start = page.LastEvaluatedKey
	}
}

func reverse(s []events.Item) []events.Item {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

// relayTenant appends the pending events of a tenant's cases to its feed. A transaction
// lost to another relay is tried again from a fresh read, up to tries times; then the
// pass moves on (lost) and a later pass finishes.
func (r *run) relayTenant(ctx context.Context, tenant string, caseIDs []string, upTo map[string]int64) (relayed int, lost bool, err error) {
	for try := 0; try < tries; try++ {
		var batch []events.Item
		for _, c := range caseIDs {
			p, err := r.pending(ctx, c, upTo[c])
			if err != nil {
				return relayed, lost, err
			}
			batch = append(batch, p...)
		}
		if len(batch) == 0 {
			return relayed, lost, nil
		}
		n, conflict, err := r.append(ctx, tenant, batch)
		relayed += n
		if err != nil {
			return relayed, lost, err
		}
		if !conflict {
			return relayed, lost, nil
		}
		lost = true
		r.res.Conflicts++
	}
	return relayed, lost, nil
}

// append writes batch (each case's events in seq order) in transactions of at most perTx
// events, in order; it stops at the first one lost to another relay (conflict), since a
// later one could otherwise relay a case's later events before its earlier ones.
func (r *run) append(ctx context.Context, tenant string, batch []events.Item) (relayed int, conflict bool, err error) {
	for len(batch) > 0 {
		n := min(len(batch), perTx)
		if tenant == "" {
			n = min(len(batch), 100)
		}
		ok, err := r.commit(ctx, tenant, batch[:n])
		if err != nil || !ok {
			return relayed, !ok && err == nil, err
		}
		relayed += n
		batch = batch[n:]
	}
	return relayed, false, nil
}

// commit is one transaction: the tenant's counter from its last position to last+n, the
// n feed entries, and the n events pending→relayed. ok false: a condition failed or the
// transaction conflicted with another (another relay won).
func (r *run) commit(ctx context.Context, tenant string, evs []events.Item) (ok bool, err error) {
	now := r.h.now().UTC()
	var tx []types.TransactWriteItem
	var last int64
	if tenant != "" {
		last, err = r.last(ctx, tenant)
		if err != nil {
			return false, err
		}
		counter := &types.Update{TableName: aws.String(r.h.Feed),
			Key:                       map[string]types.AttributeValue{"tenant": store.S(tenant), "pos": num(0)},
			UpdateExpression:          aws.String("SET #l = :n"),
			ExpressionAttributeNames:  map[string]string{"#l": events.Counter},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(last + int64(len(evs)))}}
		if last == 0 {
			counter.ConditionExpression = aws.String("attribute_not_exists(#l)")
		} else {
			counter.ConditionExpression = aws.String("#l = :o")
			counter.ExpressionAttributeValues[":o"] = num(last)
		}
		tx = append(tx, types.TransactWriteItem{Update: counter})
		for i, e := range evs {
			entry := events.FeedEntry{Event: e.Event, Tenant: tenant, Pos: last + int64(i) + 1, RelayedAt: now, ExpiresAt: now.Add(events.Keep).Unix()}
			av, err := store.Marshal(entry)
			if err != nil {
				return false, fmt.Errorf("encode a feed entry: %w", err)
			}
			tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(r.h.Feed), Item: av,
				ConditionExpression: aws.String("attribute_not_exists(#p)"), ExpressionAttributeNames: map[string]string{"#p": "pos"}}})
		}
	}
	for _, e := range evs {
		tx = append(tx, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(r.h.Events),
			Key:                       map[string]types.AttributeValue{"case_id": store.S(e.CaseID), "seq": num(e.Seq)},
			UpdateExpression:          aws.String("SET #s = :r, #t = :t REMOVE #a"),
			ConditionExpression:       aws.String("#s = :p"),
			ExpressionAttributeNames:  map[string]string{"#s": "state", "#t": "tenant", "#a": "at"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":r": store.S(events.StateRelayed), ":p": store.S(events.StatePending), ":t": store.S(tenant)}}})
	}
	_, err = r.h.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
	var tce *types.TransactionCanceledException
	switch {
	case errors.As(err, &tce):
		for _, reason := range tce.CancellationReasons {
			switch aws.ToString(reason.Code) {
			case "None", "", "ConditionalCheckFailed", "TransactionConflict":
			default: // throttling, validation: not another relay's doing
				return false, fmt.Errorf("relay %d events of tenant %q: transaction cancelled (%s)", len(evs), tenant, aws.ToString(reason.Code))
			}
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("relay %d events of tenant %q: %w", len(evs), tenant, err)
	}
	if tenant == "" {
		r.res.NoTenant += len(evs)
		return true, nil
	}
	r.res.Relayed += len(evs)
	for _, e := range evs {
		lag := now.Sub(e.OccurredAt)
		r.res.MaxLagMs = max(r.res.MaxLagMs, lag.Milliseconds())
		if r.h.Observe != nil {
			r.h.Observe(lag)
		}
	}
	return true, nil
}

// last is a tenant's last feed position (0: none yet).
func (r *run) last(ctx context.Context, tenant string) (int64, error) {
	got, err := r.h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.h.Feed), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"tenant": store.S(tenant), "pos": num(0)}})
	if err != nil {
		return 0, fmt.Errorf("read the feed counter of tenant %q: %w", tenant, err)
	}
	n, ok := got.Item[events.Counter].(*types.AttributeValueMemberN)
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the feed counter of tenant %q: %w", tenant, err)
	}
	return v, nil
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
