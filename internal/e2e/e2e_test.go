//go:build integration

// Package e2e runs against the real local stack (Temporal dev server, DynamoDB Local,
// MinIO, the local Lambda host with the real function binaries), which `make test`
// starts, provisions and stops. Nothing here is faked.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/taxflow/taxflow/activities"
	"github.com/taxflow/taxflow/functions/catalog"
	"github.com/taxflow/taxflow/functions/fn"
	"github.com/taxflow/taxflow/functions/selfcheck"
	"github.com/taxflow/taxflow/infra"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/awsclient"
	"github.com/taxflow/taxflow/internal/buildinfo"
	"github.com/taxflow/taxflow/internal/config"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/invoker"
	"github.com/taxflow/taxflow/internal/store"
	"github.com/taxflow/taxflow/internal/temporalclient"
	"github.com/taxflow/taxflow/internal/trust"
	"github.com/taxflow/taxflow/workflows"
)

type env struct {
	cfg      config.Config
	clients  *awsclient.Clients
	temporal client.Client
	report   infra.Report
}

var shared *env

func moduleDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func applyOptions(cfg config.Config) infra.Options {
	return infra.Options{Prefix: cfg.Prefix, ModuleDir: moduleDir(), BuildDir: filepath.Join(moduleDir(), "bin", "functions"),
		RoleARN: cfg.RoleARN, Region: cfg.AWS.Region, TemporalEnv: infra.TemporalEnv(os.Getenv), NotifyARN: os.Getenv("TAXFLOW_INTAKE_NOTIFY_ARN")}
}

func TestMain(m *testing.M) {
	ctx := context.Background()
	cfg, err := config.Load(os.Getenv)
	if err != nil || !cfg.AWS.Local() {
		println("e2e: the local stack's environment is not set; run `make test`:", errString(err))
		os.Exit(2)
	}
	clients, err := awsclient.New(ctx, cfg.AWS, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	report, err := infra.Apply(ctx, clients, infra.Declare(), applyOptions(cfg))
	if err != nil {
		println("e2e: infra apply:", err.Error())
		os.Exit(1)
	}
	tc, err := temporalclient.Dial(cfg.Temporal, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	shared = &env{cfg: cfg, clients: clients, temporal: tc, report: report}
	code := m.Run()
	tc.Close()
	os.Exit(code)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestInfraApplyTwiceChangesNothing(t *testing.T) {
	again, err := infra.Apply(context.Background(), shared.clients, infra.Declare(), applyOptions(shared.cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again {
		if c.Action == infra.Created || c.Action == infra.Updated {
			t.Errorf("second apply changed %s: %s", c.Resource, c.Action)
		}
	}
	// MinIO refuses the public-access block: reported, not failed, not claimed.
	found := false
	for _, c := range again {
		if c.Resource == "bucket "+shared.cfg.Name("documents")+" public access block" {
			found = c.Action == infra.NotSupported
		}
	}
	if !found {
		t.Errorf("public access block not reported as unsupported: %+v", again)
	}
	// The lifecycle MinIO keeps has the declared expirations. MinIO refuses the abort of
	// incomplete multipart uploads (it aborts stale uploads itself): reported, not claimed.
	lc, err := shared.clients.S3.GetBucketLifecycleConfiguration(context.Background(),
		&s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(shared.cfg.Name("documents"))})
	if err != nil {
		t.Fatalf("read lifecycle: %v", err)
	}
	ids := map[string]bool{}
	for _, r := range lc.Rules {
		ids[aws.ToString(r.ID)] = true
	}
	if !ids["expire-incomplete-uploads"] || !ids["expire-generated"] {
		t.Errorf("documents bucket lifecycle lacks the declared expirations: %v", ids)
	}
	abortReported := false
	for _, c := range again {
		if c.Resource == "bucket "+shared.cfg.Name("documents")+" lifecycle abort-incomplete-multipart" {
			abortReported = c.Action == infra.NotSupported
		}
	}
	if !ids["abort-incomplete-multipart"] && !abortReported {
		t.Errorf("the abort of incomplete multipart uploads is neither kept nor reported unsupported: %+v", again)
	}
	// The trust anchors' bucket exists (the identity checks read it), encrypted like the
	// documents; an apply never writes into it (only `taxflow trust put` does).
	trustBucket := shared.cfg.Name(trust.Bucket)
	if _, err := shared.clients.S3.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: &trustBucket}); err != nil {
		t.Fatalf("the trust bucket %s: %v", trustBucket, err)
	}
	if enc, err := shared.clients.S3.GetBucketEncryption(context.Background(), &s3.GetBucketEncryptionInput{Bucket: &trustBucket}); err != nil ||
		enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != s3types.ServerSideEncryptionAes256 {
		t.Errorf("the trust bucket is not encrypted by default: %v", err)
	}
}

func TestS3RoundTripWithServerSideEncryption(t *testing.T) {
	ctx := context.Background()
	bucket := shared.cfg.Name("documents")
	key := "incoming/e2e/" + uuid.NewString() + ".pdf"
	body := []byte("%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n")
	put, err := shared.clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body),
		ServerSideEncryption: s3types.ServerSideEncryptionAes256})
	if err != nil {
		t.Fatal(err)
	}
	if put.ServerSideEncryption != s3types.ServerSideEncryptionAes256 {
		t.Fatalf("server reported encryption %q", put.ServerSideEncryption)
	}
	got, err := shared.clients.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	_ = got.Body.Close()
	if !bytes.Equal(b, body) || got.ServerSideEncryption != s3types.ServerSideEncryptionAes256 {
		t.Fatalf("round trip: %q encryption %q", b, got.ServerSideEncryption)
	}
	enc, err := shared.clients.S3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	if alg := enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm; alg != s3types.ServerSideEncryptionAes256 {
		t.Fatalf("bucket default encryption %q", alg)
	}
	lc, err := shared.clients.S3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	// The expirations are all kept; MinIO refuses the abort of incomplete multipart uploads
	// (it aborts stale uploads itself), which TestInfraApplyTwiceChangesNothing checks is
	// reported as not supported.
	want := map[string]int32{}
	for _, r := range infra.Declare().Buckets[0].Lifecycle {
		if r.ExpireDays > 0 {
			want[r.ID+" "+r.Prefix] = r.ExpireDays
		}
	}
	for _, r := range lc.Rules {
		k := aws.ToString(r.ID) + " " + aws.ToString(r.Filter.Prefix)
		if want[k] != aws.ToInt32(r.Expiration.Days) {
			t.Errorf("lifecycle rule %s: %d days, declared %d", k, aws.ToInt32(r.Expiration.Days), want[k])
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("declared lifecycle rules missing: %v", want)
	}
}

func TestConditionalWriteRefusesSecondIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	table := shared.cfg.Name(selfcheck.Table)
	item := map[string]string{"key": "payout#" + uuid.NewString()}
	first, err := store.PutNew(ctx, shared.clients.DynamoDB, table, "key", item)
	if err != nil || !first {
		t.Fatalf("first write: created=%v err=%v", first, err)
	}
	second, err := store.PutNew(ctx, shared.clients.DynamoDB, table, "key", item)
	if err != nil || second {
		t.Fatalf("second write with the same key: created=%v err=%v", second, err)
	}
}

func TestFunctionAnswersThroughLambdaHost(t *testing.T) {
	key := uuid.NewString()
	out, err := shared.clients.Lambda.Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String(shared.cfg.Name(contract.FnSelfCheck)),
		Payload:      []byte(`{"key":"` + key + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil || string(out.Payload) != `{"attempt":1}` {
		t.Fatalf("function error %v payload %s", out.FunctionError, out.Payload)
	}
	if attempts(t, key) != 1 {
		t.Fatal("the function's write is not in DynamoDB")
	}
}

// attempts reads the self-check counter the function keeps in DynamoDB.
func attempts(t *testing.T, key string) int {
	t.Helper()
	got, err := shared.clients.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(shared.cfg.Name(selfcheck.Table)),
		Key:            map[string]ddbtypes.AttributeValue{"key": &ddbtypes.AttributeValueMemberS{Value: "selfcheck#" + key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	n, ok := got.Item["attempts"].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0
	}
	v, _ := strconv.Atoi(n.Value)
	return v
}

// startWorker runs a worker on its own task queue with the given invoker.
func startWorker(t *testing.T, inv invoker.Invoker) string {
	t.Helper()
	queue := "e2e-" + uuid.NewString()
	w := worker.New(shared.temporal, queue, buildinfo.WorkerOptions())
	workflows.Register(w)
	w.RegisterActivity(&activities.Activities{Invoker: inv})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return queue
}

func lambdaInvoker() invoker.Invoker {
	return &invoker.Lambda{Client: shared.clients.Lambda, Resolve: shared.cfg.Name}
}

func inProcessInvoker() invoker.Invoker {
	return invoker.NewInProcess(catalog.Handlers(fn.Deps{Config: shared.cfg, DynamoDB: shared.clients.DynamoDB, S3: shared.clients.S3}))
}

func runSelfCheck(t *testing.T, queue string, probe contract.SelfCheckInput) (workflows.SelfCheckWorkflowResult, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := shared.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SelfCheckID(probe.Key), TaskQueue: queue},
		workflows.SelfCheck, workflows.SelfCheckWorkflowInput{Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SelfCheckWorkflowResult
	err = run.Get(ctx, &res)
	return res, run.GetID(), err
}

// The whole path, with both invokers: workflow → activity → invoker → function → DynamoDB.
func TestWorkflowReachesDynamoDBWithBothInvokers(t *testing.T) {
	for name, inv := range map[string]invoker.Invoker{"lambda": lambdaInvoker(), "inprocess": inProcessInvoker()} {
		t.Run(name, func(t *testing.T) {
			queue := startWorker(t, inv)
			key := uuid.NewString()
			res, id, err := runSelfCheck(t, queue, contract.SelfCheckInput{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempt != 1 || attempts(t, key) != 1 {
				t.Fatalf("result %+v, attempts in store %d", res, attempts(t, key))
			}
			journal, err := audit.Journal(context.Background(), shared.clients.DynamoDB, shared.cfg.Name(audit.Table), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(journal) != 1 || journal[0].Action != "selfcheck_passed" || journal[0].EntryID == "" {
				t.Fatalf("journal %+v", journal)
			}
		})
	}
}

func TestBusinessErrorReachesWorkflowAsNonRetryable(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	key := uuid.NewString()
	_, _, err := runSelfCheck(t, queue, contract.SelfCheckInput{Key: key, Fail: "Rejected"})
	var actErr *temporal.ActivityError
	if !errors.As(err, &actErr) {
		t.Fatalf("want an activity error, got %v", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(actErr.Unwrap(), &appErr) || appErr.Type() != "Rejected" || !appErr.NonRetryable() {
		t.Fatalf("want non-retryable Rejected, got %v", actErr.Unwrap())
	}
	if n := attempts(t, key); n != 1 {
		t.Fatalf("a business error was retried: %d attempts", n)
	}
}

func TestFunctionTimeoutIsRetriedThenSucceeds(t *testing.T) {
	queue := startWorker(t, lambdaInvoker())
	key := uuid.NewString()
	// The self-check function times out after 3 s; its first attempt sleeps 5 s.
	res, _, err := runSelfCheck(t, queue, contract.SelfCheckInput{Key: key, SlowAttempts: 1, SleepMS: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempt != 2 || attempts(t, key) != 2 {
		t.Fatalf("want success on attempt 2, got %+v (store says %d)", res, attempts(t, key))
	}
}
