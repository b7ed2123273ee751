package metrics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/counters"
	"github.com/taxflow/taxflow/internal/store"
)

// RebuildResult says what a rebuild of the case counters did.
type RebuildResult struct {
	Cases    int // projections counted (last pass)
	Counters int // counter items written
	Passes   int // full scans made
	// Busy are the counters steps kept changing during every pass: left as they were
	// (the steps keep them exact from the value they had); run the rebuild again.
	Busy []string
}

// RebuildCounts computes the case counters once from a full, consistent scan of the case
// projections and writes them (counters.Table): for data written before the
// counters existed, or to check them. Idempotent: it writes absolute values.
//
// It may run while steps are written. A step adds to a counter (ADD) in its own
// transaction; a rebuild that wrote a value from a scan that missed a step committed
// during the scan would lose that step's delta, and one that saw it would not double it
// only if the counter did not move. So each pass first reads every counter's `updates`
// (how many steps changed it), then scans the projections, then writes each counter on
// the condition that `updates` is still what it was (or that it still does not exist):
// a counter no step touched during the scan holds exactly the scan's count. One a step
// touched fails its condition and is counted again by the next pass (at most passes);
// steps after the write add to the exact value. A counter busy in every pass is left
// as it was and reported.
//
// Steps written by a release without counters are not counted: rebuild once every step
// writer (record-transition, ledger, payout) runs with them.
func RebuildCounts(ctx context.Context, db store.DB, casesTable, countsTable string, passes int) (RebuildResult, error) {
	var res RebuildResult
	pending := map[string]bool(nil) // nil: every counter
	for res.Passes < max(passes, 1) {
		res.Passes++
		seen, err := readCounters(ctx, db, countsTable)
		if err != nil {
			return res, err
		}
		want, n, err := countProjections(ctx, db, casesTable)
		if err != nil {
			return res, err
		}
		res.Cases = n
		keys := map[string]bool{}
		for k := range seen {
			keys[k] = true
		}
		for k := range want {
			keys[k] = true
		}
		busy := map[string]bool{}
		for _, k := range sortedKeys(keys) {
			if pending != nil && !pending[k] {
				continue
			}
			ok, err := putCounter(ctx, db, countsTable, k, want[k], seen[k])
			if err != nil {
				return res, err
			}
			if !ok {
				busy[k] = true
				continue
			}
			res.Counters++
		}
		if len(busy) == 0 {
			return res, nil
		}
		pending = busy
	}
	res.Busy = sortedKeys(pending)
	return res, nil
}

type counterState struct {
	exists  bool
	updates *int64 // nil: the item has none (written by hand)
}

func readCounters(ctx context.Context, db store.DB, table string) (map[string]counterState, error) {
	out := map[string]counterState{}
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	for {
		page, err := db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("rebuild: read the case counters: %w", err)
		}
		var items []struct {
			Key     string `json:"counter"`
			Updates *int64 `json:"updates"`
		}
		if err := store.UnmarshalList(page.Items, &items); err != nil {
			return nil, fmt.Errorf("rebuild: decode the case counters: %w", err)
		}
		for _, it := range items {
			out[it.Key] = counterState{exists: true, updates: it.Updates}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

type counterValue struct{ n, approved int64 }

func countProjections(ctx context.Context, db store.DB, table string) (map[string]counterValue, int, error) {
	out := map[string]counterValue{}
	n := 0
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#c, #p, #s, #a"),
		ExpressionAttributeNames: map[string]string{"#c": "case_id", "#p": "process", "#s": "status", "#a": "amounts"}}
	for {
		page, err := db.Scan(ctx, in)
		if err != nil {
			return nil, 0, fmt.Errorf("rebuild: scan the case projections: %w", err)
		}
		var recs []contract.CaseRecord
		if err := store.UnmarshalList(page.Items, &recs); err != nil {
			return nil, 0, fmt.Errorf("rebuild: decode the case projections: %w", err)
		}
		for _, r := range recs {
			if r.Process == "" || r.Status == "" {
				continue
			}
			k := counters.CounterKey(r.Process, r.Status, counters.Shard(r.CaseID))
			v := out[k]
			out[k] = counterValue{v.n + 1, v.approved + r.Amounts["approved"]}
			n++
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, n, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// putCounter writes one counter unless a step changed it since seen was read (false).
func putCounter(ctx context.Context, db store.DB, table, key string, v counterValue, seen counterState) (bool, error) {
	num := func(n int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		counters.Key: store.S(key), counters.N: num(v.n), counters.Approved: num(v.approved),
		counters.Updates: num(aws.ToInt64(seen.updates))}}
	switch {
	case seen.exists && seen.updates != nil:
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": counters.Updates}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": num(*seen.updates)}
	case seen.exists:
		in.ConditionExpression = aws.String("attribute_not_exists(#v)")
		in.ExpressionAttributeNames = map[string]string{"#v": counters.Updates}
	default:
		in.ConditionExpression = aws.String("attribute_not_exists(#k)")
		in.ExpressionAttributeNames = map[string]string{"#k": counters.Key}
	}
	_, err := db.PutItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("rebuild: write counter %s: %w", key, err)
	}
	return true, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
