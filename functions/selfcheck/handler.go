// Package selfcheck proves a deployment end to end: the function starts, writes to
// DynamoDB, and its failures reach the caller with the right type. Operators run it
// through `taxflow doctor`; the integration tests use it to show that a timeout is
// retried and a business error is not.
package selfcheck

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/fnerr"
	"github.com/taxflow/taxflow/internal/store"
)

// Table is the logical name of the idempotency table (partition key "key").
const Table = "idempotency"

// Handler answers self-checks.
type Handler struct {
	DB    store.DB
	Table string
	Sleep func(time.Duration) // time.Sleep; a stuck dependency ignores the deadline
}

// Check counts the attempt, then sleeps or fails as asked.
func (h Handler) Check(ctx context.Context, in contract.SelfCheckInput) (contract.SelfCheckResult, error) {
	if in.Key == "" {
		return contract.SelfCheckResult{}, fnerr.Invalid("key", "must not be empty")
	}
	if in.Fail != "" && !fnerr.IsBusiness(in.Fail) {
		return contract.SelfCheckResult{}, fnerr.Invalid("fail", "must be a business error type such as "+fnerr.TypeRejected)
	}
	if in.SleepMS < 0 || in.SleepMS > 15*60*1000 {
		return contract.SelfCheckResult{}, fnerr.Invalid("sleep_ms", "must be 0-900000")
	}
	out, err := h.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.Table),
		Key:                       map[string]types.AttributeValue{"key": &types.AttributeValueMemberS{Value: "selfcheck#" + in.Key}},
		UpdateExpression:          aws.String("ADD attempts :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return contract.SelfCheckResult{}, fmt.Errorf("count attempt: %w", err)
	}
	n, ok := out.Attributes["attempts"].(*types.AttributeValueMemberN)
	if !ok {
		return contract.SelfCheckResult{}, fmt.Errorf("count attempt: no attempts attribute returned")
	}
	attempt, _ := strconv.Atoi(n.Value)
	if attempt <= in.SlowAttempts && in.SleepMS > 0 {
		sleep := h.Sleep
		if sleep == nil {
			sleep = time.Sleep
		}
		sleep(time.Duration(in.SleepMS) * time.Millisecond)
	}
	if in.Fail != "" {
		return contract.SelfCheckResult{}, &fnerr.Error{Type: in.Fail, Message: "self-check asked to fail"}
	}
	return contract.SelfCheckResult{Attempt: attempt}, nil
}
