package infra

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/taxflow/taxflow/internal/awsclient"
)

// Action is what apply did to one resource setting.
type Action string

// Actions apply reports.
const (
	Created      Action = "created"
	Updated      Action = "updated"
	Unchanged    Action = "unchanged"
	NotSupported Action = "not supported by this endpoint"
)

// Change is one line of an apply report.
type Change struct {
	Resource string // "table taxflow-audit", "bucket taxflow-documents encryption", ...
	Action   Action
	Detail   string
}

// Report lists what apply did, in order.
type Report []Change

// Changed tells whether apply created or updated anything.
func (r Report) Changed() bool {
	for _, c := range r {
		if c.Action == Created || c.Action == Updated {
			return true
		}
	}
	return false
}

// Options say where functions are built and with which role they run.
type Options struct {
	Prefix    string
	ModuleDir string // the taxflow source tree (for building functions)
	BuildDir  string
	RoleARN   string
	Region    string
	// TemporalEnv is the Temporal connection given to functions that start workflows
	// (Function.Temporal): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TAXFLOW_PAYLOAD_KEY,
	// TAXFLOW_TASK_QUEUE.
	TemporalEnv map[string]string
	// NotifyARN, when set, is the notification target of function triggers instead of the
	// function itself: MinIO's webhook target (arn:minio:sqs::<id>:webhook) that posts the
	// event to the function through the Lambda host (TAXFLOW_INTAKE_NOTIFY_ARN).
	NotifyARN string
}

// Apply creates or updates every resource of d, idempotently: a second run reports
// every resource unchanged. A setting the endpoint refuses (MinIO has no public-access
// block) is reported as not supported; it neither fails apply nor claims success.
func Apply(ctx context.Context, c *awsclient.Clients, d Declaration, o Options) (Report, error) {
	var r Report
	if err := d.checkReadOnly(); err != nil {
		return r, err
	}
	for _, t := range d.Tables {
		if err := applyTable(ctx, c.DynamoDB, Name(o.Prefix, t.Name), t, &r); err != nil {
			return r, fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	for _, b := range d.Buckets {
		if err := applyBucket(ctx, c.S3, Name(o.Prefix, b.Name), b, o.Region, &r); err != nil {
			return r, fmt.Errorf("bucket %s: %w", b.Name, err)
		}
	}
	for _, f := range d.Functions {
		if err := applyFunction(ctx, c.Lambda, f, o, &r); err != nil {
			return r, fmt.Errorf("function %s: %w", f.Name, err)
		}
	}
	for _, f := range d.Functions {
		if f.Trigger == nil {
			continue
		}
		if err := applyTrigger(ctx, c, f, o, &r); err != nil {
			return r, fmt.Errorf("trigger of %s: %w", f.Name, err)
		}
	}
	return r, nil
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// ---- DynamoDB ----

func keySchema(pk Key, sk *Key) []ddbtypes.KeySchemaElement {
	ks := []ddbtypes.KeySchemaElement{{AttributeName: aws.String(pk.Name), KeyType: ddbtypes.KeyTypeHash}}
	if sk != nil {
		ks = append(ks, ddbtypes.KeySchemaElement{AttributeName: aws.String(sk.Name), KeyType: ddbtypes.KeyTypeRange})
	}
	return ks
}

func attrDefs(t Table) []ddbtypes.AttributeDefinition {
	var out []ddbtypes.AttributeDefinition
	for _, k := range t.attributes() {
		out = append(out, ddbtypes.AttributeDefinition{AttributeName: aws.String(k.Name), AttributeType: ddbtypes.ScalarAttributeType(k.Type)})
	}
	return out
}

func gsi(ix Index) ddbtypes.GlobalSecondaryIndex {
	return ddbtypes.GlobalSecondaryIndex{
		IndexName:  aws.String(ix.Name),
		KeySchema:  keySchema(ix.PartitionKey, ix.SortKey),
		Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
	}
}

func applyTable(ctx context.Context, db *dynamodb.Client, name string, t Table, r *Report) error {
	res := "table " + name
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if errCode(err) == "ResourceNotFoundException" {
		in := &dynamodb.CreateTableInput{
			TableName:            aws.String(name),
			BillingMode:          ddbtypes.BillingModePayPerRequest,
			KeySchema:            keySchema(t.PartitionKey, t.SortKey),
			AttributeDefinitions: attrDefs(t),
			SSESpecification:     &ddbtypes.SSESpecification{Enabled: aws.Bool(true)},
		}
		for _, ix := range t.Indexes {
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi(ix))
		}
		if _, err := db.CreateTable(ctx, in); err != nil {
			return err
		}
		if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 2*time.Minute); err != nil {
			return err
		}
		*r = append(*r, Change{Resource: res, Action: Created})
	} else if err != nil {
		return err
	} else {
		if err := checkKeys(desc.Table, t); err != nil {
			return err
		}
		have := map[string]bool{}
		for _, ix := range desc.Table.GlobalSecondaryIndexes {
			have[aws.ToString(ix.IndexName)] = true
		}
		changed := false
		for _, ix := range t.Indexes {
			if have[ix.Name] {
				continue
			}
			g := gsi(ix)
			_, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{
				TableName:                   aws.String(name),
				AttributeDefinitions:        attrDefs(t),
				GlobalSecondaryIndexUpdates: []ddbtypes.GlobalSecondaryIndexUpdate{{Create: &ddbtypes.CreateGlobalSecondaryIndexAction{IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection}}},
			})
			if err != nil {
				return fmt.Errorf("add index %s: %w", ix.Name, err)
			}
			// DynamoDB builds one new index of a table at a time: wait for this one (its
			// backfill of the existing items) before the next is asked for.
			if err := waitIndex(ctx, db, name, ix.Name, 30*time.Minute); err != nil {
				return fmt.Errorf("add index %s: %w", ix.Name, err)
			}
			changed = true
		}
		*r = append(*r, Change{Resource: res, Action: pick(changed)})
	}
	if t.TTLAttribute == "" {
		return nil
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("read TTL: %w", err)
	}
	d := ttl.TimeToLiveDescription
	if d != nil && d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled && aws.ToString(d.AttributeName) == t.TTLAttribute {
		*r = append(*r, Change{Resource: res + " ttl", Action: Unchanged})
		return nil
	}
	if _, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true)}}); err != nil {
		return fmt.Errorf("enable TTL: %w", err)
	}
	*r = append(*r, Change{Resource: res + " ttl", Action: Updated, Detail: t.TTLAttribute})
	return nil
}

// waitIndex waits until a table's index is ACTIVE.
func waitIndex(ctx context.Context, db *dynamodb.Client, table, index string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return err
		}
		for _, ix := range desc.Table.GlobalSecondaryIndexes {
			if aws.ToString(ix.IndexName) == index && ix.IndexStatus == ddbtypes.IndexStatusActive {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("index %s of %s not active after %s", index, table, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// checkKeys refuses to "update" a table whose keys differ: that needs a migration.
func checkKeys(desc *ddbtypes.TableDescription, t Table) error {
	want := keySchema(t.PartitionKey, t.SortKey)
	if len(desc.KeySchema) != len(want) {
		return fmt.Errorf("existing table has a different key schema; keys cannot be changed in place")
	}
	for i := range want {
		if aws.ToString(desc.KeySchema[i].AttributeName) != aws.ToString(want[i].AttributeName) || desc.KeySchema[i].KeyType != want[i].KeyType {
			return fmt.Errorf("existing table has key %s, declared %s", aws.ToString(desc.KeySchema[i].AttributeName), aws.ToString(want[i].AttributeName))
		}
	}
	return nil
}

func pick(changed bool) Action {
	if changed {
		return Updated
	}
	return Unchanged
}

// ---- S3 ----

func applyBucket(ctx context.Context, c *s3.Client, name string, b Bucket, region string, r *Report) error {
	res := "bucket " + name
	_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	switch {
	case err == nil:
		*r = append(*r, Change{Resource: res, Action: Unchanged})
	case errCode(err) == "NotFound" || errCode(err) == "NoSuchBucket":
		in := &s3.CreateBucketInput{Bucket: aws.String(name)}
		if region != "" && region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
		}
		if _, err := c.CreateBucket(ctx, in); err != nil {
			return err
		}
		*r = append(*r, Change{Resource: res, Action: Created})
	default:
		return err
	}

	// default encryption
	enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(name)})
	if err != nil && !isMissingConfig(err) {
		if unsupported(err) {
			*r = append(*r, Change{Resource: res + " encryption", Action: NotSupported, Detail: errCode(err)})
		} else {
			return fmt.Errorf("read encryption: %w", err)
		}
	} else if encryptionIs(enc, b.Encryption) {
		*r = append(*r, Change{Resource: res + " encryption", Action: Unchanged})
	} else {
		_, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(name),
			ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryption(b.Encryption)},
			}}}})
		if err := settingResult(r, res+" encryption", err, b.Encryption); err != nil {
			return err
		}
	}

	// lifecycle
	if err := applyLifecycle(ctx, c, name, b.Lifecycle, res, r); err != nil {
		return err
	}

	// public access block
	pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(name)})
	if err == nil && blocksAll(pab.PublicAccessBlockConfiguration) {
		*r = append(*r, Change{Resource: res + " public access block", Action: Unchanged})
		return nil
	}
	_, err = c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true),
			BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
	return settingResult(r, res+" public access block", err, "all public access blocked")
}

// applyLifecycle puts the declared lifecycle rules unless the bucket has them. A store that
// refuses the abort of incomplete multipart uploads (MinIO: it aborts stale uploads itself,
// after its api stale_uploads_expiry, 24 h by default) gets the other rules, and the abort
// is reported as not supported — on every apply, since the bucket can never show it.
func applyLifecycle(ctx context.Context, c *s3.Client, name string, want []LifecycleRule, res string, r *Report) error {
	lc, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(name)})
	if err != nil && !isMissingConfig(err) && !unsupported(err) {
		return fmt.Errorf("read lifecycle: %w", err)
	}
	var have []s3types.LifecycleRule
	if err == nil {
		have = lc.Rules
	}
	if lifecycleIs(have, want) {
		*r = append(*r, Change{Resource: res + " lifecycle", Action: Unchanged})
		return nil
	}
	put := func(rules []LifecycleRule) error {
		var out []s3types.LifecycleRule
		for _, l := range rules {
			rule := s3types.LifecycleRule{ID: aws.String(l.ID), Status: s3types.ExpirationStatusEnabled,
				Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String(l.Prefix)}}
			if l.ExpireDays > 0 {
				rule.Expiration = &s3types.LifecycleExpiration{Days: aws.Int32(l.ExpireDays)}
			}
			if l.AbortMultipartDays > 0 {
				rule.AbortIncompleteMultipartUpload = &s3types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(l.AbortMultipartDays)}
			}
			out = append(out, rule)
		}
		_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(name),
			LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: out}})
		return err
	}
	err = put(want)
	rest := slices.DeleteFunc(slices.Clone(want), func(l LifecycleRule) bool { return l.AbortMultipartDays > 0 })
	if err == nil || !unsupported(err) || len(rest) == len(want) {
		return settingResult(r, res+" lifecycle", err, fmt.Sprintf("%d rules", len(want)))
	}
	*r = append(*r, Change{Resource: res + " lifecycle abort-incomplete-multipart", Action: NotSupported, Detail: errCode(err)})
	if lifecycleIs(have, rest) {
		*r = append(*r, Change{Resource: res + " lifecycle", Action: Unchanged})
		return nil
	}
	return settingResult(r, res+" lifecycle", put(rest), fmt.Sprintf("%d rules", len(rest)))
}

// settingResult records the outcome of putting a bucket setting.
func settingResult(r *Report, res string, err error, detail string) error {
	switch {
	case err == nil:
		*r = append(*r, Change{Resource: res, Action: Updated, Detail: detail})
	case unsupported(err):
		*r = append(*r, Change{Resource: res, Action: NotSupported, Detail: errCode(err)})
	default:
		return fmt.Errorf("%s: %w", res, err)
	}
	return nil
}

func isMissingConfig(err error) bool {
	switch errCode(err) {
	case "ServerSideEncryptionConfigurationNotFoundError", "NoSuchLifecycleConfiguration", "NoSuchPublicAccessBlockConfiguration":
		return true
	}
	return false
}

// unsupported tells whether an S3-compatible endpoint does not implement a setting
// (MinIO answers 400 to public-access blocks, others 501 NotImplemented).
func unsupported(err error) bool {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && (re.HTTPStatusCode() == 501 || re.HTTPStatusCode() == 400) {
		return true
	}
	return errCode(err) == "NotImplemented"
}

func encryptionIs(out *s3.GetBucketEncryptionOutput, alg string) bool {
	if out == nil || out.ServerSideEncryptionConfiguration == nil {
		return false
	}
	for _, rule := range out.ServerSideEncryptionConfiguration.Rules {
		if d := rule.ApplyServerSideEncryptionByDefault; d != nil && string(d.SSEAlgorithm) == alg {
			return true
		}
	}
	return false
}

func lifecycleIs(have []s3types.LifecycleRule, want []LifecycleRule) bool {
	got := map[string]LifecycleRule{}
	for _, h := range have {
		l := LifecycleRule{ID: aws.ToString(h.ID)}
		if h.Filter != nil {
			l.Prefix = aws.ToString(h.Filter.Prefix)
		}
		if h.Expiration != nil {
			l.ExpireDays = aws.ToInt32(h.Expiration.Days)
		}
		if h.AbortIncompleteMultipartUpload != nil {
			l.AbortMultipartDays = aws.ToInt32(h.AbortIncompleteMultipartUpload.DaysAfterInitiation)
		}
		got[l.ID] = l
	}
	exp := map[string]LifecycleRule{}
	for _, w := range want {
		exp[w.ID] = w
	}
	return maps.Equal(got, exp)
}

func blocksAll(c *s3types.PublicAccessBlockConfiguration) bool {
	return c != nil && aws.ToBool(c.BlockPublicAcls) && aws.ToBool(c.BlockPublicPolicy) && aws.ToBool(c.IgnorePublicAcls) && aws.ToBool(c.RestrictPublicBuckets)
}

// ---- Lambda ----

func applyFunction(ctx context.Context, c *lambda.Client, f Function, o Options, r *Report) error {
	name := Name(o.Prefix, f.Name)
	res := "function " + name
	zip, err := Build(ctx, o.ModuleDir, o.BuildDir, f)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(zip)
	sha := base64.StdEncoding.EncodeToString(sum[:])
	env := FunctionEnv(o.Prefix, f)
	if f.Temporal {
		for k, v := range o.TemporalEnv {
			env[k] = v
		}
	}
	if v := o.TemporalEnv["TAXFLOW_PAYLOAD_KEY"]; f.PayloadKey && v != "" {
		env["TAXFLOW_PAYLOAD_KEY"] = v
	}
	if v := o.TemporalEnv[loopbackVar]; f.LoopbackReceivers && v != "" {
		env[loopbackVar] = v
	}

	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if errCode(err) == "ResourceNotFoundException" {
		_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName:  aws.String(name),
			Runtime:       lambdatypes.RuntimeProvidedal2023,
			Handler:       aws.String("bootstrap"),
			Role:          aws.String(o.RoleARN),
			MemorySize:    aws.Int32(f.MemoryMB),
			Timeout:       aws.Int32(f.TimeoutSec),
			Architectures: []lambdatypes.Architecture{lambdatypes.Architecture(LambdaArch())},
			Environment:   &lambdatypes.Environment{Variables: env},
			Code:          &lambdatypes.FunctionCode{ZipFile: zip},
		})
		if err != nil {
			return err
		}
		*r = append(*r, Change{Resource: res, Action: Created})
		return waitActive(ctx, c, name)
	}
	if err != nil {
		return err
	}
	cfg := got.Configuration
	var haveEnv map[string]string
	if cfg.Environment != nil {
		haveEnv = cfg.Environment.Variables
	}
	if aws.ToInt32(cfg.MemorySize) != f.MemoryMB || aws.ToInt32(cfg.Timeout) != f.TimeoutSec || !reflect.DeepEqual(sorted(haveEnv), sorted(env)) {
		if _, err := c.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
			MemorySize: aws.Int32(f.MemoryMB), Timeout: aws.Int32(f.TimeoutSec), Environment: &lambdatypes.Environment{Variables: env}}); err != nil {
			return fmt.Errorf("update configuration: %w", err)
		}
		if err := waitActive(ctx, c, name); err != nil {
			return err
		}
		*r = append(*r, Change{Resource: res + " configuration", Action: Updated})
	} else {
		*r = append(*r, Change{Resource: res + " configuration", Action: Unchanged})
	}
	if aws.ToString(cfg.CodeSha256) == sha {
		*r = append(*r, Change{Resource: res + " code", Action: Unchanged})
		return nil
	}
	if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zip}); err != nil {
		return fmt.Errorf("update code: %w", err)
	}
	*r = append(*r, Change{Resource: res + " code", Action: Updated, Detail: sha})
	return waitActive(ctx, c, name)
}

func waitActive(ctx context.Context, c *lambda.Client, name string) error {
	return lambda.NewFunctionUpdatedV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)}, 2*time.Minute)
}

func sorted(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// loopbackVar lets the webhook sender reach receivers on loopback (Function.LoopbackReceivers).
const loopbackVar = "TAXFLOW_WEBHOOK_ALLOW_LOOPBACK"

// TemporalEnv picks the Temporal connection a function that starts workflows needs from
// the applying process's environment.
func TemporalEnv(getenv func(string) string) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TAXFLOW_PAYLOAD_KEY", "TAXFLOW_TASK_QUEUE", loopbackVar} {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}

// applyTrigger makes the bucket notify the function (or Options.NotifyARN) of objects
// created under the trigger's prefix. It keeps the bucket's other notifications.
func applyTrigger(ctx context.Context, c *awsclient.Clients, f Function, o Options, r *Report) error {
	bucket := Name(o.Prefix, f.Trigger.Bucket)
	res := "notification " + bucket + "/" + f.Trigger.Prefix + " -> " + f.Name
	id := Name(o.Prefix, f.Name)
	filter := &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
		{Name: s3types.FilterRuleNamePrefix, Value: aws.String(f.Trigger.Prefix)}}}}
	events := []s3types.Event{"s3:ObjectCreated:*"}
	have, err := c.S3.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("read notifications: %w", err)
	}
	cfg := &s3types.NotificationConfiguration{TopicConfigurations: have.TopicConfigurations}
	var target string
	if o.NotifyARN != "" {
		target = o.NotifyARN
		for _, q := range have.QueueConfigurations {
			if aws.ToString(q.Id) != id {
				cfg.QueueConfigurations = append(cfg.QueueConfigurations, q)
			} else if aws.ToString(q.QueueArn) == target {
				*r = append(*r, Change{Resource: res, Action: Unchanged})
				return nil
			}
		}
		cfg.QueueConfigurations = append(cfg.QueueConfigurations, s3types.QueueConfiguration{Id: aws.String(id), QueueArn: aws.String(target),
			Events: events, Filter: filter})
		cfg.LambdaFunctionConfigurations = have.LambdaFunctionConfigurations
	} else {
		got, err := c.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(id)})
		if err != nil {
			return fmt.Errorf("read function: %w", err)
		}
		target = aws.ToString(got.Configuration.FunctionArn)
		for _, l := range have.LambdaFunctionConfigurations {
			if aws.ToString(l.Id) != id {
				cfg.LambdaFunctionConfigurations = append(cfg.LambdaFunctionConfigurations, l)
			} else if aws.ToString(l.LambdaFunctionArn) == target {
				*r = append(*r, Change{Resource: res, Action: Unchanged})
				return nil
			}
		}
		// S3 may invoke the function for this bucket only.
		_, err = c.Lambda.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(id), StatementId: aws.String("s3-" + bucket),
			Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("s3.amazonaws.com"), SourceArn: aws.String("arn:aws:s3:::" + bucket)})
		if err != nil && errCode(err) != "ResourceConflictException" {
			return fmt.Errorf("allow S3 to invoke: %w", err)
		}
		cfg.LambdaFunctionConfigurations = append(cfg.LambdaFunctionConfigurations, s3types.LambdaFunctionConfiguration{Id: aws.String(id),
			LambdaFunctionArn: aws.String(target), Events: events, Filter: filter})
		cfg.QueueConfigurations = have.QueueConfigurations
	}
	if _, err := c.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(bucket),
		NotificationConfiguration: cfg}); err != nil {
		return fmt.Errorf("put notification to %s: %w", target, err)
	}
	*r = append(*r, Change{Resource: res, Action: Updated, Detail: target})
	return nil
}
