// Package taskstest is an in-memory stand-in for the cases table's task indexes
// (internal/tasks): it answers exactly the Query shapes tasks.Lister sends, over case
// projection items a test puts, and hands every other call to the DB it wraps.
package taskstest

import (
	"context"
	"fmt"
	"slices"

	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/tasks"
)

// DB wraps a store.DB; Queries of Table's task indexes read the items Put here.
type DB struct {
	store.DB
	Table string
	mu    sync.Mutex
	items map[string]map[string]types.AttributeValue
	// Queries counts the index queries answered.
	Queries int
}

// New wraps db; table is the cases table's name.
func New(db store.DB, table string) *DB {
	return &DB{DB: db, Table: table, items: map[string]map[string]types.AttributeValue{}}
}

// Put stores a case's projection as record-transition writes it (tenant: its owner).
func (d *DB) Put(rec contract.CaseRecord, tenant string) {
	av, err := store.Marshal(rec)
	if err != nil {
		panic(err)
	}
	for k, v := range tasks.Attrs(rec, tenant) {
		av[k] = v
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items[rec.CaseID] = av
}

func str(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// Query answers an index query of the task list; anything else goes to the wrapped DB.
func (d *DB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if in.TableName == nil || *in.TableName != d.Table || in.IndexName == nil {
		return d.DB.Query(ctx, in, o...)
	}
	var pk string
	switch *in.IndexName {
	case tasks.Index:
		pk = tasks.AttrRole
	case tasks.TenantIndex:
		pk = tasks.AttrTenantRole
	case tasks.EscalatedIndex:
		pk = tasks.AttrEscRole
	case tasks.TenantEscalatedIndex:
		pk = tasks.AttrEscTenantRole
	default:
		return d.DB.Query(ctx, in, o...)
	}
	kc := *in.KeyConditionExpression
	if kc != "#p = :p" && kc != "#p = :p AND #d < :b" {
		return nil, fmt.Errorf("taskstest: key condition %q not modelled", kc)
	}
	if in.ExpressionAttributeNames["#p"] != pk {
		return nil, fmt.Errorf("taskstest: %s queried by %s", *in.IndexName, in.ExpressionAttributeNames["#p"])
	}
	if in.FilterExpression != nil { // every list is a key condition: a filter reads pages it drops
		return nil, fmt.Errorf("taskstest: filter %q not modelled", *in.FilterExpression)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Queries++
	want := str(in.ExpressionAttributeValues[":p"])
	type row struct {
		sk, id string
		item   map[string]types.AttributeValue
	}
	var rows []row
	for id, it := range d.items {
		if str(it[pk]) != want {
			continue
		}
		sk := str(it[tasks.AttrDue])
		if kc != "#p = :p" && !(sk < str(in.ExpressionAttributeValues[":b"])) {
			continue
		}
		rows = append(rows, row{sk, id, it})
	}
	fwd := in.ScanIndexForward == nil || *in.ScanIndexForward
	slices.SortFunc(rows, func(a, b row) int {
		c := 0
		switch {
		case a.sk < b.sk, a.sk == b.sk && a.id < b.id:
			c = -1
		case a.sk > b.sk, a.sk == b.sk && a.id > b.id:
			c = 1
		}
		if !fwd {
			c = -c
		}
		return c
	})
	if esk := in.ExclusiveStartKey; esk != nil {
		sk, id := str(esk[tasks.AttrDue]), str(esk["case_id"])
		if str(esk[pk]) != want {
			return nil, fmt.Errorf("ValidationException: the start key is of another partition")
		}
		if kc != "#p = :p" && !(sk < str(in.ExpressionAttributeValues[":b"])) {
			return nil, fmt.Errorf("ValidationException: The provided starting key does not match the range key predicate")
		}
		i := slices.IndexFunc(rows, func(r row) bool {
			if fwd {
				return r.sk > sk || (r.sk == sk && r.id > id)
			}
			return r.sk < sk || (r.sk == sk && r.id < id)
		})
		if i < 0 {
			i = len(rows)
		}
		rows = rows[i:]
	}
	out := &dynamodb.QueryOutput{}
	for i, r := range rows {
		if in.Limit != nil && i == int(*in.Limit) {
			last := rows[i-1]
			out.LastEvaluatedKey = map[string]types.AttributeValue{"case_id": store.S(last.id), pk: store.S(want), tasks.AttrDue: store.S(last.sk)}
			break
		}
		out.ScannedCount++
		out.Count++
		if in.Select != types.SelectCount {
			out.Items = append(out.Items, r.item)
		}
	}

	return out, nil
}
