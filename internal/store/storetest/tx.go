package storetest

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TransactWriteItems models DynamoDB's all-or-nothing write of Put and Delete items, and of
// unconditional Update items of the form "ADD #a :a, #b :b" (counters), under the
// conditions taxflow uses: attribute_not_exists(#k) (write once), "#v = :v" (the stored
// attribute equals a value: optimistic versioning), "attribute_not_exists(#k) OR #t = :t"
// (written once, or again with the same value) and the PutIfNewer condition. Like
// DynamoDB it refuses two operations on one item and more than 100 items, and when a
// condition fails it writes nothing and reports a reason for every item, in order.
func (d *DB) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Err != nil {
		return nil, d.Err
	}
	if n := len(in.TransactItems); n == 0 || n > 100 {
		return nil, fmt.Errorf("ValidationException: a transaction holds 1 to 100 items, not %d", n)
	}
	type write struct {
		table, id string
		item      map[string]types.AttributeValue // nil: delete
	}
	writes := make([]write, 0, len(in.TransactItems))
	seen := map[string]bool{}
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	failed := false
	for i, ti := range in.TransactItems {
		if u := ti.Update; u != nil && ti.Put == nil && ti.Delete == nil && ti.ConditionCheck == nil {
			id, err := d.id(*u.TableName, u.Key)
			if err != nil {
				return nil, err
			}
			if seen[*u.TableName+"\x01"+id] {
				return nil, fmt.Errorf("ValidationException: Transaction request cannot include multiple operations on one item")
			}
			seen[*u.TableName+"\x01"+id] = true
			if u.ConditionExpression != nil {
				return nil, fmt.Errorf("storetest: a conditional update is not modelled in a transaction")
			}
			item, err := d.adds(*u.TableName, id, u)
			if err != nil {
				return nil, err
			}
			reasons[i] = types.CancellationReason{Code: stringp("None")}
			writes = append(writes, write{*u.TableName, id, item})
			continue
		}
		p := ti.Put
		if dl := ti.Delete; dl != nil && p == nil && ti.Update == nil && ti.ConditionCheck == nil {
			p = &types.Put{TableName: dl.TableName, Item: dl.Key, ConditionExpression: dl.ConditionExpression,
				ExpressionAttributeNames: dl.ExpressionAttributeNames, ExpressionAttributeValues: dl.ExpressionAttributeValues}
		} else if p == nil || ti.Update != nil || ti.Delete != nil || ti.ConditionCheck != nil {
			return nil, fmt.Errorf("storetest: only Put and Delete items are modelled in a transaction")
		}
		id, err := d.id(*p.TableName, p.Item)
		if err != nil {
			return nil, err
		}
		if seen[*p.TableName+"\x01"+id] {
			return nil, fmt.Errorf("ValidationException: Transaction request cannot include multiple operations on one item")
		}
		seen[*p.TableName+"\x01"+id] = true
		reasons[i] = types.CancellationReason{Code: stringp("None")}
		if p.ConditionExpression != nil {
			old, exists := d.items[*p.TableName][id]
			ok, err := holds(*p.ConditionExpression, old, exists, p.ExpressionAttributeNames, p.ExpressionAttributeValues)
			if err != nil {
				return nil, err
			}
			if !ok {
				failed = true
				reasons[i] = types.CancellationReason{Code: stringp("ConditionalCheckFailed"), Message: stringp("The conditional request failed")}
			}
		}
		if ti.Delete != nil {
			writes = append(writes, write{*p.TableName, id, nil})
		} else {
			writes = append(writes, write{*p.TableName, id, p.Item})
		}
	}
	if failed {
		return nil, &types.TransactionCanceledException{Message: stringp("Transaction cancelled, please refer cancellation reasons for specific reasons"),
			CancellationReasons: reasons}
	}
	for _, w := range writes {
		if d.items[w.table] == nil {
			d.items[w.table] = map[string]map[string]types.AttributeValue{}
		}
		if w.item == nil {
			delete(d.items[w.table], w.id)
		} else {
			d.items[w.table][w.id] = w.item
		}
		d.Writes++
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// holds evaluates one of the modelled condition expressions against the stored item.
func holds(cond string, old map[string]types.AttributeValue, exists bool, names map[string]string, values map[string]types.AttributeValue) (bool, error) {
	switch {
	case notExists.MatchString(cond):
		return !exists, nil
	case cond == "#v = :v":
		have, ok := old[names["#v"]]
		return exists && ok && str(have) == str(values[":v"]), nil
	case cond == "#v = :v AND attribute_not_exists(#v)": // never holds
		return false, nil
	case cond == "#v = :v AND #s = :s AND attribute_not_exists(#h)":
		if _, claimed := old[names["#h"]]; claimed {
			return false, nil
		}
		return holds("#v = :v AND #s = :s", old, exists, names, values)
	case cond == "#v = :v AND #s = :s":
		v, okV := old[names["#v"]]
		st, okS := old[names["#s"]]
		return exists && okV && okS && str(v) == str(values[":v"]) && str(st) == str(values[":s"]), nil
	case cond == "attribute_not_exists(#k) OR #t = :t": // written once, or again with the same value
		have, ok := old[names["#t"]]
		return !exists || ok && str(have) == str(values[":t"]), nil
	case cond == "attribute_not_exists(#k) OR #v < :v":
		if !exists {
			return true, nil
		}
		var have, want int
		if _, err := fmt.Sscan(str(values[":v"]), &want); err != nil {
			return false, fmt.Errorf("storetest: :v of %q is not a number: %w", cond, err)
		}
		h, ok := old[names["#v"]]
		if !ok {
			return false, nil // as in DynamoDB: a comparison with a missing attribute is false
		}
		if _, err := fmt.Sscan(str(h), &have); err != nil {
			return false, fmt.Errorf("storetest: stored %s is not a number: %w", names["#v"], err)
		}
		return have < want, nil
	}
	return false, fmt.Errorf("storetest: condition %q not modelled in a transaction", cond)
}

var addsExpr = regexp.MustCompile(`^ADD (#\w+ :\w+(?:, #\w+ :\w+)*)$`)

// adds is the item an update "ADD #a :a, #b :b..." makes of the stored one (numbers only).
func (d *DB) adds(table, id string, u *types.Update) (map[string]types.AttributeValue, error) {
	m := addsExpr.FindStringSubmatch(*u.UpdateExpression)
	if m == nil {
		return nil, fmt.Errorf("storetest: update %q not modelled in a transaction", *u.UpdateExpression)
	}
	item := map[string]types.AttributeValue{}
	for k, v := range d.items[table][id] {
		item[k] = v
	}
	for k, v := range u.Key {
		item[k] = v
	}
	for _, pair := range strings.Split(m[1], ", ") {
		name, value, _ := strings.Cut(pair, " ")
		attr := u.ExpressionAttributeNames[name]
		cur, _ := strconv.ParseInt(str(item[attr]), 10, 64)
		add, err := strconv.ParseInt(str(u.ExpressionAttributeValues[value]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("storetest: %s is not a number: %w", value, err)
		}
		item[attr] = &types.AttributeValueMemberN{Value: strconv.FormatInt(cur+add, 10)}
	}
	return item, nil
}
