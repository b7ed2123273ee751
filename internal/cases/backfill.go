package cases

import (
	"context"
	"fmt"
	"maps"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// BackfillReport counts what Backfill did.
type BackfillReport struct {
	Scanned int // projections read
	Waiting int // of them in a human step
	Written int // given their task keys now
	Moved   int // moved on by a step meanwhile (that step wrote its own keys)
}

// Backfill gives the task keys (internal/tasks) to the projections of cases that were
// waiting in a human step before the record-transition function wrote them: a scan of
// the table, and for each such case without the right keys a conditional update that
// holds only while the projection is still at the version read (a step that lands
// meanwhile writes its own keys, and is left alone). It changes nothing else and may be
// run again at any time: a case that has its keys is not written.
func Backfill(ctx context.Context, db store.DB, table, owners string) (BackfillReport, error) {
	var r BackfillReport
	in := &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)}
	for {
		page, err := db.Scan(ctx, in)
		if err != nil {
			return r, fmt.Errorf("scan %s: %w", table, err)
		}
		for _, it := range page.Items {
			r.Scanned++
			if err := backfillOne(ctx, db, table, owners, it, &r); err != nil {
				return r, err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return r, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

func backfillOne(ctx context.Context, db store.DB, table, owners string, it map[string]types.AttributeValue, r *BackfillReport) error {
	var rec contract.CaseRecord
	if err := store.Unmarshal(it, &rec); err != nil {
		return fmt.Errorf("decode projection: %w", err)
	}
	if tasks.RoleOf(rec.Process, rec.Status) == "" {
		return nil
	}
	r.Waiting++
	tenant := ""
	if tasks.NeedsOwner(rec) {
		var err error
		if tenant, _, _, err = tasks.CaseOwner(ctx, db, owners, rec.CaseID); err != nil {
			return fmt.Errorf("read the owner of %s: %w", rec.CaseID, err)
		}
	}
	want := tasks.Attrs(rec, tenant)
	have := map[string]types.AttributeValue{}
	for _, k := range tasks.AttrNames {
		if v, ok := it[k]; ok {
			have[k] = v
		}
	}
	if maps.EqualFunc(have, want, func(a, b types.AttributeValue) bool { return attrS(a) == attrS(b) }) {
		return nil
	}
	names := map[string]string{"#v": "version"}
	values := map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: fmt.Sprint(rec.Version)}}
	set := ""
	i := 0
	for k, v := range want {
		i++
		n, p := fmt.Sprintf("#a%d", i), fmt.Sprintf(":a%d", i)
		names[n], values[p] = k, v
		if set != "" {
			set += ", "
		}
		set += n + " = " + p
	}
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"case_id": store.S(rec.CaseID)}, UpdateExpression: aws.String("SET " + set),
		ConditionExpression: aws.String("#v = :v"), ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	switch {
	case store.IsConditionFailed(err):
		r.Moved++
	case err != nil:
		return fmt.Errorf("write the task keys of %s: %w", rec.CaseID, err)
	default:
		r.Written++
	}
	return nil
}

func attrS(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
