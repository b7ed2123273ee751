package transition

import (
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/counters"
	"github.com/taxflow/taxflow/internal/store"
)

// The counters' table, the attributes of an item, the key and the shard of a case are
// internal/counters' (the business gauges and the rebuild read what this writes); these are
// their names here.
const (
	CountsTable   = counters.Table
	CountShards   = counters.Shards
	CountKey      = counters.Key
	CountN        = counters.N
	CountApproved = counters.Approved
	CountUpdates  = counters.Updates
)

// CounterKey is counters.CounterKey.
func CounterKey(process, status string, shard int) string {
	return counters.CounterKey(process, status, shard)
}

// ParseCounterKey is counters.ParseCounterKey.
func ParseCounterKey(key string) (process, status string, shard int, ok bool) {
	return counters.ParseCounterKey(key)
}

// Shard is counters.Shard.
func Shard(caseID string) int { return counters.Shard(caseID) }

// prior is what a step's counters need of the projection the step replaces.
type prior struct {
	known    bool // the projection at version seq-1 was read (or seq is 1: there is none)
	exists   bool
	process  string
	status   string
	approved int64
}

// before reads the projection the step follows (version seq-1). A version, once written,
// never changes (every put is conditioned on the version before, and nothing updates or
// deletes a projection), so the status read here is the status the step's put replaces
// whenever the put succeeds on its condition "version = seq-1". When the projection is
// not at version seq-1 (a retry of a written step, a step that follows a missing one),
// the status is unknown: known is false, and the step's put is made to fail (see
// counters), so that it is explained and never writes with counters that may be wrong.
func (h Handler) before(ctx context.Context, in contract.RecordInput) (prior, error) {
	if in.Seq == 1 {
		return prior{known: true}, nil
	}
	out, err := h.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(h.Cases),
		Key: map[string]types.AttributeValue{"case_id": store.S(in.CaseID)}, ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#v, #p, #s, #a"),
		ExpressionAttributeNames: map[string]string{"#v": "version", "#p": "process", "#s": "status", "#a": "amounts"}})
	if err != nil {
		return prior{}, fmt.Errorf("record %s: read the projection the step follows: %w", contract.RecordKey(in.CaseID, in.Seq), err)
	}
	var rec contract.CaseRecord
	if len(out.Item) == 0 {
		return prior{}, nil
	}
	if err := store.Unmarshal(out.Item, &rec); err != nil {
		return prior{}, fmt.Errorf("record %s: decode the projection the step follows: %w", contract.RecordKey(in.CaseID, in.Seq), err)
	}
	if rec.Version != in.Seq-1 {
		return prior{}, nil
	}
	return prior{known: true, exists: true, process: rec.Process, status: rec.Status, approved: rec.Amounts["approved"]}, nil
}

// counters are the step's counter updates, appended after its other items: -1 (and the
// approved amount) on the status the projection leaves, +1 on the one it enters. A step
// that keeps the status and the amount changes no counter; one that keeps the status
// and changes the amount updates one item (a transaction may not touch an item twice).
// The updates carry no condition: they commit exactly when the step's conditional items
// do, so a retried or duplicate step, which fails its conditions, never counts twice.
func (h Handler) counters(in contract.RecordInput, p prior) []item {
	type delta struct{ n, approved int64 }
	deltas := map[string]delta{}
	var order []string
	add := func(process, status string, n, approved int64) {
		k := CounterKey(process, status, Shard(in.CaseID))
		if _, ok := deltas[k]; !ok {
			order = append(order, k)
		}
		d := deltas[k]
		deltas[k] = delta{d.n + n, d.approved + approved}
	}
	if p.exists {
		add(p.process, p.status, -1, -p.approved)
	}
	add(in.Case.Process, in.Case.Status, 1, in.Case.Amounts["approved"])
	var out []item
	for _, k := range order {
		d := deltas[k]
		if d == (delta{}) {
			continue
		}
		key := map[string]types.AttributeValue{CountKey: store.S(k)}
		out = append(out, item{table: h.Counts, key: key, update: &types.Update{TableName: aws.String(h.Counts), Key: key,
			UpdateExpression:         aws.String("ADD #n :n, #a :a, #u :u"),
			ExpressionAttributeNames: map[string]string{"#n": CountN, "#a": CountApproved, "#u": CountUpdates},
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num(d.n), ":a": num(d.approved),
				":u": num(1)}}})
	}
	return out
}

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// unknownPrior is appended to the projection put's condition when the step's prior
// status is unknown: with it the condition never holds, the transaction is cancelled and
// explained (a duplicate, a conflict, or a retry when the projection reached version
// seq-1 meanwhile), and no step is ever written without its counters.
const unknownPrior = " AND attribute_not_exists(#v)"
