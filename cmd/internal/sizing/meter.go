package sizing

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/taxflow/taxflow/internal/invoker"
)

// Usage is what the AWS clients and the functions did for one key (a case).
type Usage struct {
	DynamoDB map[string]int `json:"dynamodb_requests"` // by operation
	// ReadUnits and WriteUnits add up the ConsumedCapacity of the answers (TOTAL asked on
	// every request that takes it); NoCapacity counts answers of a read or a write
	// without it, and Failed the requests that failed (a failed conditional write still
	// consumes a write unit on AWS; neither is in the units).
	ReadUnits  float64        `json:"read_units"`
	WriteUnits float64        `json:"write_units"`
	NoCapacity int            `json:"answers_without_capacity"`
	Failed     int            `json:"failed_requests"`
	S3         map[string]int `json:"s3_requests"` // by operation
	S3PutBytes int64          `json:"s3_put_bytes"`
	Functions  map[string]int `json:"function_invocations"` // by function
	// FunctionTime is the functions' run time, in process (the handler's own time; a
	// Lambda adds its start-up and the Invoke round trip).
	FunctionTime  time.Duration            `json:"function_time_ns"`
	FunctionTimes map[string]time.Duration `json:"function_times_ns"` // by function
}

func (u *Usage) init() {
	if u.DynamoDB == nil {
		u.DynamoDB, u.S3, u.Functions = map[string]int{}, map[string]int{}, map[string]int{}
	}
	if u.FunctionTimes == nil {
		u.FunctionTimes = map[string]time.Duration{}
	}
}

// Add adds o to u.
func (u *Usage) Add(o Usage) {
	u.init()
	for k, v := range o.DynamoDB {
		u.DynamoDB[k] += v
	}
	for k, v := range o.S3 {
		u.S3[k] += v
	}
	for k, v := range o.Functions {
		u.Functions[k] += v
	}
	for k, v := range o.FunctionTimes {
		u.FunctionTimes[k] += v
	}
	u.ReadUnits += o.ReadUnits
	u.WriteUnits += o.WriteUnits
	u.NoCapacity += o.NoCapacity
	u.Failed += o.Failed
	u.S3PutBytes += o.S3PutBytes
	u.FunctionTime += o.FunctionTime
}

// Sum adds up the values of a map.
func Sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Reads and Writes are DynamoDB's data requests by kind (control-plane requests such as
// DescribeTable are neither).
func (u Usage) Reads() int  { return count(u.DynamoDB, readOps) }
func (u Usage) Writes() int { return count(u.DynamoDB, writeOps) }

func count(m map[string]int, ops map[string]bool) int {
	n := 0
	for k, v := range m {
		if ops[k] {
			n += v
		}
	}
	return n
}

var (
	readOps  = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true}
	writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}
)

// Meter counts the requests of the clients it is added to, by the key its Key function
// gives a request's context (a case id), and the invocations of an Invoker it wraps.
type Meter struct {
	Key func(context.Context) string
	mu  sync.Mutex
	by  map[string]*Usage
}

func (m *Meter) with(ctx context.Context, f func(*Usage)) {
	key := "unattributed"
	if m.Key != nil {
		key = m.Key(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.by == nil {
		m.by = map[string]*Usage{}
	}
	u := m.by[key]
	if u == nil {
		u = &Usage{}
		u.init()
		m.by[key] = u
	}
	f(u)
}

// Take returns what was counted for key and forgets it.
func (m *Meter) Take(key string) Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.by[key]
	delete(m.by, key)
	if u == nil {
		u = &Usage{}
		u.init()
	}
	return *u
}

// Keys are the keys counted so far.
func (m *Meter) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.by {
		out = append(out, k)
	}
	return out
}

// opName is the operation of an SDK input: *dynamodb.GetItemInput is GetItem.
func opName(params any) string {
	s := fmt.Sprintf("%T", params)
	s = s[strings.LastIndex(s, ".")+1:]
	return strings.TrimSuffix(s, "Input")
}

// DynamoDB adds the meter to a DynamoDB client's options:
// dynamodb.New(c.Options(), m.DynamoDB).
func (m *Meter) DynamoDB(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("sizingMeter", m.dynamoStep), middleware.After)
	})
}

func (m *Meter) dynamoStep(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	total := types.ReturnConsumedCapacityTotal
	switch p := in.Parameters.(type) {
	case *dynamodb.GetItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.ScanInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.TransactGetItemsInput:
		p.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		p.ReturnConsumedCapacity = total
	}
	op := opName(in.Parameters)
	out, md, err := next.HandleInitialize(ctx, in)
	var caps []types.ConsumedCapacity
	switch r := out.Result.(type) {
	case *dynamodb.GetItemOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.PutItemOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.ScanOutput:
		caps = one(r.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		caps = r.ConsumedCapacity
	case *dynamodb.BatchWriteItemOutput:
		caps = r.ConsumedCapacity
	case *dynamodb.TransactGetItemsOutput:
		caps = r.ConsumedCapacity
	case *dynamodb.TransactWriteItemsOutput:
		caps = r.ConsumedCapacity
	}
	m.with(ctx, func(u *Usage) {
		u.DynamoDB[op]++
		switch {
		case err != nil:
			u.Failed++
		case !readOps[op] && !writeOps[op]:
		case len(caps) == 0:
			u.NoCapacity++
		default:
			for _, c := range caps {
				units := deref(c.CapacityUnits)
				if readOps[op] {
					u.ReadUnits += units
				} else {
					u.WriteUnits += units
				}
			}
		}
	})
	return out, md, err
}

func one(c *types.ConsumedCapacity) []types.ConsumedCapacity {
	if c == nil {
		return nil
	}
	return []types.ConsumedCapacity{*c}
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// S3 adds the meter to an S3 client's options: s3.New(c.Options(), m.S3).
func (m *Meter) S3(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("sizingMeter", m.s3Step), middleware.After)
	})
}

func (m *Meter) s3Step(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	op := opName(in.Parameters)
	var size int64
	if p, ok := in.Parameters.(*s3.PutObjectInput); ok {
		size = bodySize(p.ContentLength, p.Body)
	}
	out, md, err := next.HandleInitialize(ctx, in)
	m.with(ctx, func(u *Usage) {
		u.S3[op]++
		if err == nil {
			u.S3PutBytes += size
		} else {
			u.Failed++
		}
	})
	return out, md, err
}

// bodySize is a body's length: the declared one, or what a seekable body holds.
func bodySize(declared *int64, body io.Reader) int64 {
	if declared != nil && *declared >= 0 {
		return *declared
	}
	if s, ok := body.(io.Seeker); ok {
		cur, err := s.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0
		}
		end, err := s.Seek(0, io.SeekEnd)
		if _, err2 := s.Seek(cur, io.SeekStart); err != nil || err2 != nil {
			return 0
		}
		return end - cur
	}
	return 0
}

// Invoker wraps an invoker so that the meter counts every invocation and its time.
func (m *Meter) Invoker(inner invoker.Invoker) invoker.Invoker { return meteredInvoker{inner, m} }

type meteredInvoker struct {
	inner invoker.Invoker
	m     *Meter
}

func (i meteredInvoker) Invoke(ctx context.Context, fn string, payload []byte) ([]byte, error) {
	start := time.Now()
	out, err := i.inner.Invoke(ctx, fn, payload)
	took := time.Since(start)
	i.m.with(ctx, func(u *Usage) {
		u.Functions[fn]++
		u.FunctionTime += took
		u.FunctionTimes[fn] += took
	})
	return out, err
}
