// Package store holds the DynamoDB plumbing every function shares: the narrow client
// interface (so handlers are testable without a server) and write-once puts.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DB is the part of the DynamoDB client taxflow's functions use.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// PutNew writes item only if no item with its key exists yet (keyAttr is the partition
// key's name). It reports created=false, and no error, when the item was already there:
// the write-once rule that makes a retried step harmless.
func PutNew(ctx context.Context, db DB, table, keyAttr string, item any) (created bool, err error) {
	av, err := Marshal(item)
	if err != nil {
		return false, fmt.Errorf("encode item for %s: %w", table, err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(table),
		Item:                     av,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": keyAttr},
	})
	if IsConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("put into %s: %w", table, err)
	}
	return true, nil
}

// IsConditionFailed tells whether err is DynamoDB refusing a conditional write.
func IsConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Items use their json tags as attribute names, so one struct serves the function's
// payload and its DynamoDB record.
func jsonTags(o *attributevalue.EncoderOptions) { o.TagKey = "json" }

// Marshal encodes a struct into a DynamoDB item by its json tags.
func Marshal(v any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, jsonTags)
}

// UnmarshalList decodes items into a slice of structs by their json tags.
func UnmarshalList(items []map[string]types.AttributeValue, out any) error {
	return attributevalue.UnmarshalListOfMapsWithOptions(items, out, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" })
}

// Unmarshal decodes one item into a struct by its json tags.
func Unmarshal(item map[string]types.AttributeValue, out any) error {
	return attributevalue.UnmarshalMapWithOptions(item, out, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" })
}

// PutIfNewer writes item unless the stored item has a version at least as high: a
// projection updated by retried or reordered steps never goes backwards.
func PutIfNewer(ctx context.Context, db DB, table, keyAttr string, version int64, item any) (applied bool, err error) {
	av, err := Marshal(item)
	if err != nil {
		return false, fmt.Errorf("encode item for %s: %w", table, err)
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(table),
		Item:                     av,
		ConditionExpression:      aws.String("attribute_not_exists(#k) OR #v < :v"),
		ExpressionAttributeNames: map[string]string{"#k": keyAttr, "#v": "version"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":v": &types.AttributeValueMemberN{Value: fmt.Sprint(version)},
		},
	})
	if IsConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("put into %s: %w", table, err)
	}
	return true, nil
}

// Get reads one item by its key into out; found is false when there is none.
func Get(ctx context.Context, db DB, table string, key map[string]types.AttributeValue, out any) (found bool, err error) {
	res, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("get from %s: %w", table, err)
	}
	if len(res.Item) == 0 {
		return false, nil
	}
	if err := Unmarshal(res.Item, out); err != nil {
		return false, fmt.Errorf("decode item from %s: %w", table, err)
	}
	return true, nil
}

// S is a string key attribute.
func S(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// QueryAll reads every item of one partition (attr = value) into out (a pointer to a slice).
func QueryAll(ctx context.Context, db DB, table, attr, value string, out any) error {
	var items []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		page, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(table),
			KeyConditionExpression:    aws.String(attr + " = :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": S(value)},
			ExclusiveStartKey:         start,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("query %s: %w", table, err)
		}
		items = append(items, page.Items...)
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	return UnmarshalList(items, out)
}

// SetFields sets attributes of an existing item (condition: it exists). found is false,
// with no error, when there is no such item.
func SetFields(ctx context.Context, db DB, table string, key map[string]types.AttributeValue, fields map[string]any) (found bool, err error) {
	names := map[string]string{"#k": firstKey(key)}
	values := map[string]types.AttributeValue{}
	var sets []string
	i := 0
	for _, name := range sortedKeys(fields) {
		av, err := attributevalue.MarshalWithOptions(fields[name], func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
		if err != nil {
			return false, fmt.Errorf("encode %s: %w", name, err)
		}
		n, v := fmt.Sprintf("#f%d", i), fmt.Sprintf(":v%d", i)
		names[n], values[v] = name, av
		sets = append(sets, n+" = "+v)
		i++
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key,
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ConditionExpression:       aws.String("attribute_exists(#k)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if IsConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update %s: %w", table, err)
	}
	return true, nil
}

func firstKey(m map[string]types.AttributeValue) string {
	for k := range m {
		return k
	}
	return ""
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
