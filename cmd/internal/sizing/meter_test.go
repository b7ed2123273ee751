package sizing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

type keyCtx struct{}

func keyed(k string) context.Context { return context.WithValue(context.Background(), keyCtx{}, k) }

func testMeter() *Meter {
	return &Meter{Key: func(ctx context.Context) string {
		if k, ok := ctx.Value(keyCtx{}).(string); ok {
			return k
		}
		return "unattributed"
	}}
}

// A fake DynamoDB endpoint: it records whether each request asked for the consumed
// capacity and answers with the capacity the test gives per operation.
func TestMeterDynamoDB(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]bool{}
	answers := map[string]string{
		"GetItem":            `{"Item":{"k":{"S":"a"}},"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}`,
		"TransactWriteItems": `{"ConsumedCapacity":[{"TableName":"a","CapacityUnits":4},{"TableName":"b","CapacityUnits":2}]}`,
		"PutItem":            `{}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		asked[op] = strings.Contains(string(body), `"ReturnConsumedCapacity":"TOTAL"`)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if op == "DeleteItem" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"no"}`))
			return
		}
		_, _ = w.Write([]byte(answers[op]))
	}))
	defer srv.Close()
	m := testMeter()
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}, m.DynamoDB)
	key := map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "a"}}
	ctx := keyed("case-1")
	for i := 0; i < 2; i++ {
		if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("a"), Item: key}}, {Put: &types.Put{TableName: aws.String("b"), Item: key}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: key}); err != nil {
		t.Fatal(err)
	}
	var ccf *types.ConditionalCheckFailedException
	if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("t"), Key: key}); !errors.As(err, &ccf) {
		t.Fatalf("delete: %v", err)
	}
	// Another case's request is counted under its own key.
	if _, err := db.GetItem(keyed("case-2"), &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key}); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"GetItem", "TransactWriteItems", "PutItem", "DeleteItem"} {
		if !asked[op] {
			t.Errorf("%s did not ask for ReturnConsumedCapacity=TOTAL", op)
		}
	}
	u := m.Take("case-1")
	if u.DynamoDB["GetItem"] != 2 || u.DynamoDB["TransactWriteItems"] != 1 || u.DynamoDB["PutItem"] != 1 || u.DynamoDB["DeleteItem"] != 1 {
		t.Fatalf("requests %v", u.DynamoDB)
	}
	if u.ReadUnits != 1 || u.WriteUnits != 6 || u.NoCapacity != 1 || u.Failed != 1 || u.Reads() != 2 || u.Writes() != 3 {
		t.Fatalf("read units %v, write units %v, without capacity %d, failed %d, reads %d, writes %d",
			u.ReadUnits, u.WriteUnits, u.NoCapacity, u.Failed, u.Reads(), u.Writes())
	}
	if u2 := m.Take("case-2"); u2.DynamoDB["GetItem"] != 1 || u2.ReadUnits != 0.5 {
		t.Fatalf("case-2: %+v", u2)
	}
	if u := m.Take("case-1"); Sum(u.DynamoDB) != 0 {
		t.Fatalf("Take did not forget: %v", u.DynamoDB)
	}
}

func TestMeterS3AndInvoker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("data"))
		}
	}))
	defer srv.Close()
	m := testMeter()
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")}, m.S3)
	ctx := keyed("case-1")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader(make([]byte, 1234))}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	_ = out.Body.Close()
	inv := m.Invoker(fakeInvoker{})
	if _, err := inv.Invoke(ctx, "payout", nil); err != nil {
		t.Fatal(err)
	}
	u := m.Take("case-1")
	if u.S3["PutObject"] != 1 || u.S3["GetObject"] != 1 || u.S3PutBytes != 1234 {
		t.Fatalf("S3 %v, bytes %d", u.S3, u.S3PutBytes)
	}
	if u.Functions["payout"] != 1 || u.FunctionTimes["payout"] < 5*time.Millisecond || u.FunctionTime != u.FunctionTimes["payout"] {
		t.Fatalf("functions %v %v %v", u.Functions, u.FunctionTimes, u.FunctionTime)
	}
}

type fakeInvoker struct{}

func (fakeInvoker) Invoke(context.Context, string, []byte) ([]byte, error) {
	time.Sleep(5 * time.Millisecond)
	return []byte("{}"), nil
}
