package eventrelay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
)

// memDB models what the relay asks of DynamoDB, with exactly the expressions it sends
// (anything else fails the test): the base table read consistently, the by_state index
// read eventually consistently (a snapshot that lags the table unless refreshed), and
// transactions that are all or nothing under their conditions, with a reason per item.
type memDB struct {
	mu     sync.Mutex
	keys   map[string][2]string // table → partition, sort key names
	items  map[string]map[string]map[string]types.AttributeValue
	index  map[string]map[string]types.AttributeValue // by_state: each item's last propagated copy
	rng    *rand.Rand                                 // nil: the index is always fresh
	stale  float64                                    // chance that a read of the index sees the old snapshot
	before func()                                     // called before each transaction, outside the lock
	txs    int
}

func newMemDB(rng *rand.Rand, stale float64) *memDB {
	return &memDB{keys: map[string][2]string{"events": {"case_id", "seq"}, "feed": {"tenant", "pos"}, "owners": {"case_id", ""}},
		items: map[string]map[string]map[string]types.AttributeValue{}, rng: rng, stale: stale}
}

var _ store.DB = (*memDB)(nil)

func sv(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case nil:
		return ""
	}
	return fmt.Sprint(av)
}

func (d *memDB) id(table string, key map[string]types.AttributeValue) string {
	k := d.keys[table]
	id := sv(key[k[0]])
	if k[1] != "" {
		id += "\x00" + sv(key[k[1]])
	}
	return id
}

func clone(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (d *memDB) put(table string, item map[string]types.AttributeValue) {
	if d.items[table] == nil {
		d.items[table] = map[string]map[string]types.AttributeValue{}
	}
	d.items[table][d.id(table, item)] = clone(item)
}

func (d *memDB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !aws.ToBool(in.ConsistentRead) {
		return nil, fmt.Errorf("memDB: the relay reads items consistently")
	}
	it := d.items[*in.TableName][d.id(*in.TableName, in.Key)]
	if it == nil {
		return &dynamodb.GetItemOutput{}, nil
	}
	return &dynamodb.GetItemOutput{Item: clone(it)}, nil
}

func (d *memDB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.put(*in.TableName, in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

func (d *memDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, fmt.Errorf("memDB: the relay updates only in transactions")
}

func (d *memDB) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, fmt.Errorf("memDB: the relay never scans")
}

func num64(av types.AttributeValue) int64 { n, _ := strconv.ParseInt(sv(av), 10, 64); return n }

// propagate brings the index's copy of each event up to date, or (stale) leaves it as it
// was: like DynamoDB's index, each item's entry lags on its own, and never goes back.
func (d *memDB) propagate() {
	if d.index == nil {
		d.index = map[string]map[string]types.AttributeValue{}
	}
	for id, it := range d.items["events"] {
		if d.rng != nil && d.rng.Float64() < d.stale {
			continue
		}
		if _, ok := it["at"]; ok {
			d.index[id] = clone(it)
		} else {
			delete(d.index, id)
		}
	}
}

func (d *memDB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cond, names, values := aws.ToString(in.KeyConditionExpression), in.ExpressionAttributeNames, in.ExpressionAttributeValues
	var out []map[string]types.AttributeValue
	switch {
	case aws.ToString(in.IndexName) == "by_state" && cond == "#s = :s" && names["#s"] == "state":
		d.propagate()
		for _, it := range d.index {
			if sv(it["state"]) == sv(values[":s"]) {
				out = append(out, clone(it))
			}
		}
		sort.SliceStable(out, func(i, j int) bool { return sv(out[i]["at"]) < sv(out[j]["at"]) })
		if !aws.ToBool(in.ScanIndexForward) {
			return nil, fmt.Errorf("memDB: the index is read oldest first")
		}
		if l := int(aws.ToInt32(in.Limit)); l > 0 && len(out) > l {
			out = out[:l]
		}
		return &dynamodb.QueryOutput{Items: out, Count: int32(len(out))}, nil
	case in.IndexName == nil && cond == "#c = :c AND #q <= :q" && names["#c"] == "case_id" && names["#q"] == "seq":
		if !aws.ToBool(in.ConsistentRead) {
			return nil, fmt.Errorf("memDB: a case's events are read consistently")
		}
		for _, it := range d.items[*in.TableName] {
			if sv(it["case_id"]) == sv(values[":c"]) && num64(it["seq"]) <= num64(values[":q"]) {
				out = append(out, clone(it))
			}
		}
		desc := !aws.ToBool(in.ScanIndexForward)
		sort.Slice(out, func(i, j int) bool { return (num64(out[i]["seq"]) < num64(out[j]["seq"])) != desc })
		if s := in.ExclusiveStartKey; s != nil {
			for i, it := range out {
				if sv(it["seq"]) == sv(s["seq"]) {
					out = out[i+1:]
					break
				}
			}
		}
		// Pages of 3, so that a case's read goes over pages.
		res := &dynamodb.QueryOutput{}
		if len(out) > 3 {
			out = out[:3]
			res.LastEvaluatedKey = map[string]types.AttributeValue{"case_id": out[2]["case_id"], "seq": out[2]["seq"]}
		}
		res.Items, res.Count = out, int32(len(out))
		return res, nil
	case in.IndexName == nil && cond == "#t = :t AND #p > :p":
		for _, it := range d.items[*in.TableName] {
			if sv(it["tenant"]) == sv(values[":t"]) && num64(it["pos"]) > num64(values[":p"]) {
				out = append(out, clone(it))
			}
		}
		sort.Slice(out, func(i, j int) bool { return num64(out[i]["pos"]) < num64(out[j]["pos"]) })
		return &dynamodb.QueryOutput{Items: out, Count: int32(len(out))}, nil
	}
	return nil, fmt.Errorf("memDB: query %q on %s/%s not modelled", cond, aws.ToString(in.TableName), aws.ToString(in.IndexName))
}

func (d *memDB) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if d.before != nil {
		d.before()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txs++
	if n := len(in.TransactItems); n == 0 || n > 100 {
		return nil, fmt.Errorf("ValidationException: a transaction holds 1 to 100 items, not %d", n)
	}
	type write struct {
		table string
		item  map[string]types.AttributeValue
	}
	var writes []write
	seen := map[string]bool{}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	failed := false
	for i, ti := range in.TransactItems {
		var table, cond string
		var key map[string]types.AttributeValue
		var names map[string]string
		var values map[string]types.AttributeValue
		switch {
		case ti.Put != nil:
			table, key, cond, names, values = *ti.Put.TableName, ti.Put.Item, aws.ToString(ti.Put.ConditionExpression), ti.Put.ExpressionAttributeNames, ti.Put.ExpressionAttributeValues
		case ti.Update != nil:
			table, key, cond, names, values = *ti.Update.TableName, ti.Update.Key, aws.ToString(ti.Update.ConditionExpression), ti.Update.ExpressionAttributeNames, ti.Update.ExpressionAttributeValues
		default:
			return nil, fmt.Errorf("memDB: only Put and Update are modelled")
		}
		id := d.id(table, key)
		if seen[table+"\x01"+id] {
			return nil, fmt.Errorf("ValidationException: Transaction request cannot include multiple operations on one item")
		}
		seen[table+"\x01"+id] = true
		old, exists := d.items[table][id]
		ok := true
		switch cond {
		case "":
		case "attribute_not_exists(#p)", "attribute_not_exists(#l)":
			_, has := old[names[cond[len("attribute_not_exists("):len(cond)-1]]]
			ok = !exists || !has
		case "#l = :o", "#s = :p":
			f := cond[:2]
			ok = exists && sv(old[names[f]]) == sv(values[cond[len(cond)-2:]])
		default:
			return nil, fmt.Errorf("memDB: condition %q not modelled", cond)
		}
		reasons[i] = types.CancellationReason{Code: aws.String("None")}
		if !ok {
			failed = true
			reasons[i] = types.CancellationReason{Code: aws.String("ConditionalCheckFailed")}
			continue
		}
		if ti.Put != nil {
			writes = append(writes, write{table, clone(ti.Put.Item)})
			continue
		}
		item := clone(key)
		if exists {
			item = clone(old)
		}
		switch expr := aws.ToString(ti.Update.UpdateExpression); expr {
		case "SET #l = :n":
			item[names["#l"]] = values[":n"]
		case "SET #s = :r, #t = :t REMOVE #a":
			item[names["#s"]], item[names["#t"]] = values[":r"], values[":t"]
			delete(item, names["#a"])
		default:
			return nil, fmt.Errorf("memDB: update %q not modelled", expr)
		}
		writes = append(writes, write{table, item})
	}
	if failed {
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	for _, w := range writes {
		d.put(w.table, w.item)
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}
