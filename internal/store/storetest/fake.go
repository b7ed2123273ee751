// Package storetest is an in-memory stand-in for DynamoDB for handler unit tests. It
// understands the few expression shapes taxflow's functions use and fails loudly on
// any other, so a handler cannot silently rely on something it does not model.
package storetest

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/store"
)

// Key names the partition and (optional) sort key attributes of a table.
type Key struct{ PK, SK string }

// DB is the fake. Err, when set, is returned by every call (a store that is down).
type DB struct {
	mu     sync.Mutex
	keys   map[string]Key
	items  map[string]map[string]map[string]types.AttributeValue
	Err    error
	Writes int
}

var _ store.DB = (*DB)(nil)

// New creates a fake with the given tables.
func New(tables map[string]Key) *DB {
	return &DB{keys: tables, items: map[string]map[string]map[string]types.AttributeValue{}}
}

func str(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return fmt.Sprint(av)
}

func (d *DB) id(table string, item map[string]types.AttributeValue) (string, error) {
	k, ok := d.keys[table]
	if !ok {
		return "", fmt.Errorf("ResourceNotFoundException: table %s", table)
	}
	pk, ok := item[k.PK]
	if !ok {
		return "", fmt.Errorf("ValidationException: missing key %s", k.PK)
	}
	id := str(pk)
	if k.SK != "" {
		sk, ok := item[k.SK]
		if !ok {
			return "", fmt.Errorf("ValidationException: missing key %s", k.SK)
		}
		id += "\x00" + str(sk)
	}
	return id, nil
}

var notExists = regexp.MustCompile(`^attribute_not_exists\((#?\w+)\)$`)

func (d *DB) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	id, err := d.id(*in.TableName, in.Key)
	if err != nil {
		return nil, err
	}
	// A copy: the caller decodes it after the lock is released, while updates may change
	// the stored item (as DynamoDB's answer, it is a snapshot).
	return &dynamodb.GetItemOutput{Item: maps.Clone(d.items[*in.TableName][id])}, nil
}

func (d *DB) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	id, err := d.id(*in.TableName, in.Item)
	if err != nil {
		return nil, err
	}
	if in.ConditionExpression != nil {
		old, exists := d.items[*in.TableName][id]
		failed := false
		switch cond := *in.ConditionExpression; {
		case notExists.MatchString(cond):
			failed = exists
		case cond == "#v = :v":
			have, ok := old[in.ExpressionAttributeNames["#v"]]
			failed = !exists || !ok || str(have) != str(in.ExpressionAttributeValues[":v"])
		case cond == "attribute_not_exists(#k) OR #v < :v":
			have, _ := strconv.Atoi(str(old[in.ExpressionAttributeNames["#v"]]))
			want, _ := strconv.Atoi(str(in.ExpressionAttributeValues[":v"]))
			failed = exists && have >= want
		default:
			return nil, fmt.Errorf("storetest: condition %q not modelled", cond)
		}
		if failed {
			return nil, &types.ConditionalCheckFailedException{Message: stringp("The conditional request failed")}
		}
	}
	if d.items[*in.TableName] == nil {
		d.items[*in.TableName] = map[string]map[string]types.AttributeValue{}
	}
	d.items[*in.TableName][id] = in.Item
	d.Writes++
	return &dynamodb.PutItemOutput{}, nil
}

var addExpr = regexp.MustCompile(`^ADD (#?\w+) (:\w+)$`)

// capCond is the one condition modelled on ADD: a capped counter unless a lock holds.
const capCond = "(attribute_not_exists(#f) OR #f < :max) AND (attribute_not_exists(#l) OR #l <= :now)"

// eqCond is "#name = :value", modelled on SET (compare-and-set).
var eqCond = regexp.MustCompile(`^(#\w+) = (:\w+)$`)
var setExpr = regexp.MustCompile(`(#\w+) = (:\w+)`)

func (d *DB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	if strings.HasPrefix(*in.UpdateExpression, "SET ") {
		return d.set(in)
	}
	m := addExpr.FindStringSubmatch(*in.UpdateExpression)
	if m == nil {
		return nil, fmt.Errorf("storetest: update %q not modelled", *in.UpdateExpression)
	}
	id, err := d.id(*in.TableName, in.Key)
	if err != nil {
		return nil, err
	}
	if d.items[*in.TableName] == nil {
		d.items[*in.TableName] = map[string]map[string]types.AttributeValue{}
	}
	item := d.items[*in.TableName][id]
	if item == nil {
		item = map[string]types.AttributeValue{}
		for k, v := range in.Key {
			item[k] = v
		}
	}
	counter := m[1]
	if strings.HasPrefix(counter, "#") {
		counter = in.ExpressionAttributeNames[counter]
	}
	if in.ConditionExpression != nil {
		if *in.ConditionExpression != capCond {
			return nil, fmt.Errorf("storetest: condition %q on ADD not modelled", *in.ConditionExpression)
		}
		// (attribute_not_exists(#f) OR #f < :max) AND (attribute_not_exists(#l) OR #l <= :now)
		num := func(av types.AttributeValue) int64 { n, _ := strconv.ParseInt(str(av), 10, 64); return n }
		f, hasF := item[in.ExpressionAttributeNames["#f"]]
		l, hasL := item[in.ExpressionAttributeNames["#l"]]
		if (hasF && num(f) >= num(in.ExpressionAttributeValues[":max"])) || (hasL && num(l) > num(in.ExpressionAttributeValues[":now"])) {
			return nil, &types.ConditionalCheckFailedException{Message: stringp("The conditional request failed")}
		}
	}
	cur, _ := strconv.Atoi(str(item[counter]))
	add, _ := strconv.Atoi(str(in.ExpressionAttributeValues[m[2]]))
	item[counter] = &types.AttributeValueMemberN{Value: strconv.Itoa(cur + add)}
	d.items[*in.TableName][id] = item
	d.Writes++
	return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{counter: item[counter]}}, nil
}

var eqExpr = regexp.MustCompile(`^(#?\w+) = (:\w+)(?: AND (#?\w+) = (:\w+))?$`)

func (d *DB) Query(_ context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	m := eqExpr.FindStringSubmatch(*in.KeyConditionExpression)
	if m == nil {
		return nil, fmt.Errorf("storetest: query %q not modelled", *in.KeyConditionExpression)
	}
	for _, i := range []int{1, 3} { // #name placeholders
		if strings.HasPrefix(m[i], "#") {
			m[i] = in.ExpressionAttributeNames[m[i]]
		}
	}
	want := str(in.ExpressionAttributeValues[m[2]])
	var ids []string
	for id, item := range d.items[*in.TableName] {
		if _, has := item[m[1]]; !has || str(item[m[1]]) != want {
			continue
		}
		if m[3] != "" && str(item[m[3]]) != str(in.ExpressionAttributeValues[m[4]]) {
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := &dynamodb.QueryOutput{}
	for _, id := range ids {
		out.Items = append(out.Items, d.items[*in.TableName][id])
	}
	out.Count = int32(len(out.Items))
	return out, nil
}

// Scan returns every item of a table in one page.
func (d *DB) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	out := &dynamodb.ScanOutput{}
	ids := make([]string, 0, len(d.items[*in.TableName]))
	for id := range d.items[*in.TableName] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out.Items = append(out.Items, d.items[*in.TableName][id])
	}
	out.Count = int32(len(out.Items))
	return out, nil
}

func stringp(s string) *string { return &s }

// Items returns a copy of a table's items.
func (d *DB) Items(table string) []map[string]types.AttributeValue {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []map[string]types.AttributeValue
	for _, it := range d.items[table] {
		out = append(out, it)
	}
	return out
}

// Replace overwrites an item (what another system writing the table does).
func (d *DB) Replace(table, keyAttr string, item any) {
	av, err := store.Marshal(item)
	if err != nil {
		panic(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	id, err := d.id(table, av)
	if err != nil {
		panic(err)
	}
	d.items[table][id] = av
}

// set models "SET #a = :a, #b = :b" with the condition attribute_exists(#k).
func (d *DB) set(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	if in.ConditionExpression == nil || (*in.ConditionExpression != "attribute_exists(#k)" && !eqCond.MatchString(*in.ConditionExpression)) {
		return nil, fmt.Errorf("storetest: update without the existence condition not modelled")
	}
	id, err := d.id(*in.TableName, in.Key)
	if err != nil {
		return nil, err
	}
	item, ok := d.items[*in.TableName][id]
	if !ok {
		return nil, &types.ConditionalCheckFailedException{Message: stringp("The conditional request failed")}
	}
	if m := eqCond.FindStringSubmatch(*in.ConditionExpression); m != nil {
		have, has := item[in.ExpressionAttributeNames[m[1]]]
		if !has || str(have) != str(in.ExpressionAttributeValues[m[2]]) {
			return nil, &types.ConditionalCheckFailedException{Message: stringp("The conditional request failed")}
		}
	}
	next := map[string]types.AttributeValue{}
	for k, v := range item {
		next[k] = v
	}
	for _, m := range setExpr.FindAllStringSubmatch(*in.UpdateExpression, -1) {
		next[in.ExpressionAttributeNames[m[1]]] = in.ExpressionAttributeValues[m[2]]
	}
	d.items[*in.TableName][id] = next
	d.Writes++
	return &dynamodb.UpdateItemOutput{}, nil
}
