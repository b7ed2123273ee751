package infra

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template renders the AWS SAM template of d: the same tables, buckets and functions,
// each function with its own least-privilege policies (only the tables and buckets it
// declares, read-only unless it writes). template.yaml is this output; a test keeps them equal.
func Template(d Declaration) ([]byte, error) {
	if err := d.checkReadOnly(); err != nil {
		return nil, err
	}
	sub := func(logical string) map[string]string { return map[string]string{"Fn::Sub": "${Prefix}-" + logical} }
	resources := map[string]any{}
	for _, t := range d.Tables {
		var attrs []map[string]string
		for _, k := range t.attributes() {
			attrs = append(attrs, map[string]string{"AttributeName": k.Name, "AttributeType": k.Type})
		}
		props := map[string]any{
			"TableName":                        sub(t.Name),
			"BillingMode":                      "PAY_PER_REQUEST",
			"AttributeDefinitions":             attrs,
			"KeySchema":                        keysYAML(t.PartitionKey, t.SortKey),
			"SSESpecification":                 map[string]bool{"SSEEnabled": true},
			"PointInTimeRecoverySpecification": map[string]bool{"PointInTimeRecoveryEnabled": true},
		}
		if len(t.Indexes) > 0 {
			var gsis []map[string]any
			for _, ix := range t.Indexes {
				gsis = append(gsis, map[string]any{"IndexName": ix.Name, "KeySchema": keysYAML(ix.PartitionKey, ix.SortKey),
					"Projection": map[string]string{"ProjectionType": "ALL"}})
			}
			props["GlobalSecondaryIndexes"] = gsis
		}
		if t.TTLAttribute != "" {
			props["TimeToLiveSpecification"] = map[string]any{"AttributeName": t.TTLAttribute, "Enabled": true}
		}
		resources["Table"+camel(t.Name)] = map[string]any{"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "Properties": props}
	}
	for _, b := range d.Buckets {
		var rules []map[string]any
		for _, l := range b.Lifecycle {
			rule := map[string]any{"Id": l.ID, "Status": "Enabled"}
			if l.Prefix != "" {
				rule["Prefix"] = l.Prefix
			}
			if l.ExpireDays > 0 {
				rule["ExpirationInDays"] = l.ExpireDays
			}
			if l.AbortMultipartDays > 0 {
				rule["AbortIncompleteMultipartUpload"] = map[string]any{"DaysAfterInitiation": l.AbortMultipartDays}
			}
			rules = append(rules, rule)
		}
		resources["Bucket"+camel(b.Name)] = map[string]any{"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "Properties": map[string]any{
			"BucketName": sub(b.Name),
			"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []map[string]any{
				{"ServerSideEncryptionByDefault": map[string]string{"SSEAlgorithm": b.Encryption}}}},
			"PublicAccessBlockConfiguration": map[string]bool{"BlockPublicAcls": true, "BlockPublicPolicy": true,
				"IgnorePublicAcls": true, "RestrictPublicBuckets": true},
			"LifecycleConfiguration": map[string]any{"Rules": rules},
		}}
		if b.Versioned {
			props := resources["Bucket"+camel(b.Name)].(map[string]any)["Properties"].(map[string]any)
			props["VersioningConfiguration"] = map[string]string{"Status": "Enabled"}
			props["LifecycleConfiguration"] = map[string]any{"Rules": append(rules, map[string]any{"Id": "expire-old-versions", "Status": "Enabled",
				"NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": b.NoncurrentDays}})}
		}
	}
	for _, f := range append(slices.Clone(d.Functions), d.API.Function) {
		policies := grants(d, f)
		env := map[string]any{}
		for k, v := range FunctionEnv("PREFIX", f) {
			if v == "PREFIX" {
				env[k] = map[string]string{"Ref": "Prefix"}
			} else {
				env[k] = v
			}
		}
		if f.Temporal {
			env["TEMPORAL_ADDRESS"] = map[string]string{"Ref": "TemporalAddress"}
			env["TEMPORAL_NAMESPACE"] = map[string]string{"Ref": "TemporalNamespace"}
			env["TAXFLOW_PAYLOAD_KEY"] = map[string]string{"Ref": "PayloadKey"}
		}
		if f.PayloadKey {
			env["TAXFLOW_PAYLOAD_KEY"] = map[string]string{"Ref": "PayloadKey"}
		}
		props := map[string]any{
			"FunctionName": sub(f.Name),
			"CodeUri":      strings.TrimPrefix(f.Package, "./"),
			"MemorySize":   f.MemoryMB,
			"Timeout":      f.TimeoutSec,
			"Policies":     policies,
			"Environment":  map[string]any{"Variables": env},
		}
		if t := f.Trigger; t != nil {
			// SAM wires the bucket's notification and the permission for S3 to invoke.
			props["Events"] = map[string]any{"ObjectCreated": map[string]any{"Type": "S3", "Properties": map[string]any{
				"Bucket": map[string]string{"Ref": "Bucket" + camel(t.Bucket)}, "Events": "s3:ObjectCreated:*",
				"Filter": map[string]any{"S3Key": map[string]any{"Rules": []map[string]string{{"Name": "prefix", "Value": t.Prefix}}}}}}}
		}
		resources["Function"+camel(f.Name)] = map[string]any{"Type": "AWS::Serverless::Function", "Properties": props,
			"Metadata": map[string]string{"BuildMethod": "go1.x"}}
	}
	addAPI(d, resources)
	addReadOnlyPolicies(d, resources)
	for _, f := range append(slices.Clone(d.Functions), d.API.Function) {
		// Each function's logs are kept for a bounded time, not forever.
		resources["Logs"+camel(f.Name)] = map[string]any{"Type": "AWS::Logs::LogGroup", "Properties": map[string]any{
			"LogGroupName": map[string]string{"Fn::Sub": "/aws/lambda/${Prefix}-" + f.Name}, "RetentionInDays": d.API.LogRetentionDay}}
	}
	doc := map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Transform":                "AWS::Serverless-2016-10-31",
		"Description":              "taxflow: tables, buckets and functions. Generated by `taxflow infra template` from infra/declaration.go; do not edit.",
		"Parameters": map[string]any{
			"Prefix":            map[string]string{"Type": "String", "Default": "taxflow", "AllowedPattern": "^[a-z][a-z0-9-]{0,30}$"},
			"TemporalAddress":   map[string]string{"Type": "String", "Description": "host:port of the Temporal frontend (TLS settings: TEMPORAL_TLS_* in the API's environment)"},
			"TemporalNamespace": map[string]string{"Type": "String", "Default": "default"},
			"PayloadKey":        map[string]any{"Type": "String", "NoEcho": true, "Description": "TAXFLOW_PAYLOAD_KEY: 32 random bytes, base64"},
			"SubjectKey": map[string]any{"Type": "String", "NoEcho": true,
				"Description": "TAXFLOW_SUBJECT_KEY: v<version>:<32 random bytes, base64>; a secret of its own, never the payload key"},
			"SubjectKeysPrevious": map[string]any{"Type": "String", "NoEcho": true, "Default": "",
				"Description": "TAXFLOW_SUBJECT_KEYS_PREVIOUS: earlier subject key versions, comma-separated, kept for lookups after a rotation"},
			"AlarmTopicArn": map[string]string{"Type": "String", "Description": "SNS topic the alarms notify"},
		},
		"Globals": map[string]any{"Function": map[string]any{
			"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": []string{"arm64"},
		}},
		"Resources": resources,
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	return buf.Bytes(), nil
}

func keysYAML(pk Key, sk *Key) []map[string]string {
	out := []map[string]string{{"AttributeName": pk.Name, "KeyType": "HASH"}}
	if sk != nil {
		out = append(out, map[string]string{"AttributeName": sk.Name, "KeyType": "RANGE"})
	}
	return out
}

// grants renders a function's policies: one inline statement per declared use, with
// exactly its actions on exactly its table (and the table's indexes for Query) or bucket.
// No SAM policy template: those grant CRUD, and on every object of a bucket.
func grants(d Declaration, f Function) []map[string]any {
	var policies []map[string]any
	for _, u := range f.Uses {
		var stmts []map[string]any
		switch {
		case u.Table != "":
			logical := "Table" + camel(u.Table)
			resources := []any{map[string]any{"Fn::GetAtt": []string{logical, "Arn"}}}
			if slices.Contains(u.actions(), "Query") && tableHasIndexes(d, u.Table) {
				resources = append(resources, map[string]string{"Fn::Sub": "${" + logical + ".Arn}/index/*"})
			}
			stmts = append(stmts, statement("dynamodb", u.actions(), resources))
		case u.Bucket != "":
			logical := "Bucket" + camel(u.Bucket)
			var object, bucket []string
			for _, a := range u.actions() {
				if a == "ListBucket" {
					bucket = append(bucket, a)
				} else {
					object = append(object, a)
				}
			}
			if len(object) > 0 {
				stmts = append(stmts, statement("s3", object, []any{map[string]string{"Fn::Sub": "${" + logical + ".Arn}/*"}}))
			}
			if len(bucket) > 0 {
				stmts = append(stmts, statement("s3", bucket, []any{map[string]any{"Fn::GetAtt": []string{logical, "Arn"}}}))
			}
		}
		policies = append(policies, map[string]any{"Version": "2012-10-17", "Statement": stmts})
	}
	// An explicit Deny of every write to a read-only bucket, whatever the role is granted
	// elsewhere (a policy attached later by hand, a wildcard someone adds): in IAM a Deny
	// wins over any Allow.
	for _, b := range d.Buckets {
		if b.ReadOnly {
			policies = append(policies, map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{denyWrites(b)}})
		}
		// The same for a guarded prefix, to every function that is not one of its writers.
		for _, g := range b.Guarded {
			if !slices.Contains(g.Writers, f.Name) {
				policies = append(policies, map[string]any{"Version": "2012-10-17", "Statement": []map[string]any{denyPrefixWrites(b, g)}})
			}
		}
	}
	return policies
}

// denyPrefixWrites denies every object write under a guarded prefix of a bucket.
func denyPrefixWrites(b Bucket, g Guard) map[string]any {
	logical := "Bucket" + camel(b.Name)
	sid := "DenyWrites" + camel(b.Name) + camel(strings.NewReplacer("/", "-", ".", "-").Replace(g.Prefix))
	return map[string]any{"Sid": sid, "Effect": "Deny", "Action": DeniedWrites,
		"Resource": []any{map[string]string{"Fn::Sub": "${" + logical + ".Arn}/" + g.Prefix + "*"}}}
}

// DeniedWrites are the S3 actions denied on a read-only bucket: every object and bucket
// write (Put* covers PutObject, its ACL, tags and retention, and the bucket's policy,
// versioning and lifecycle; Delete* covers objects, their versions and the bucket).
var DeniedWrites = []string{"s3:Put*", "s3:Delete*", "s3:Replicate*", "s3:RestoreObject"}

func denyWrites(b Bucket) map[string]any {
	logical := "Bucket" + camel(b.Name)
	return map[string]any{"Sid": "DenyWrites" + camel(b.Name), "Effect": "Deny", "Action": DeniedWrites, "Resource": []any{
		map[string]any{"Fn::GetAtt": []string{logical, "Arn"}}, map[string]string{"Fn::Sub": "${" + logical + ".Arn}/*"}}}
}

// addReadOnlyPolicies gives each read-only bucket a bucket policy that denies its writes
// to every function's role (SAM names a function's role <logical id>Role), and each bucket
// with guarded prefixes one that denies their writes to every role but their writers': a
// second, independent refusal that holds even if a role's own policies are changed by hand.
func addReadOnlyPolicies(d Declaration, resources map[string]any) {
	var roles []any
	for _, f := range append(slices.Clone(d.Functions), d.API.Function) {
		roles = append(roles, map[string]any{"Fn::GetAtt": []string{"Function" + camel(f.Name) + "Role", "Arn"}})
	}
	for _, b := range d.Buckets {
		var stmts []map[string]any
		if b.ReadOnly {
			st := denyWrites(b)
			st["Principal"] = map[string]any{"AWS": roles}
			stmts = append(stmts, st)
		}
		// A guarded prefix: its writes denied to every role but its writers'.
		for _, g := range b.Guarded {
			var others []any
			for _, f := range append(slices.Clone(d.Functions), d.API.Function) {
				if !slices.Contains(g.Writers, f.Name) {
					others = append(others, map[string]any{"Fn::GetAtt": []string{"Function" + camel(f.Name) + "Role", "Arn"}})
				}
			}
			st := denyPrefixWrites(b, g)
			st["Principal"] = map[string]any{"AWS": others}
			stmts = append(stmts, st)
		}
		if len(stmts) == 0 {
			continue
		}
		resources["BucketPolicy"+camel(b.Name)] = map[string]any{"Type": "AWS::S3::BucketPolicy", "Properties": map[string]any{
			"Bucket":         map[string]string{"Ref": "Bucket" + camel(b.Name)},
			"PolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": stmts}}}
	}
}

// checkReadOnly refuses a declaration in which a function may write a read-only bucket:
// a write action on it, Write's default, or an object-created trigger on it.
func (d Declaration) checkReadOnly() error {
	names := map[string]bool{d.API.Function.Name: true}
	for _, f := range d.Functions {
		names[f.Name] = true
	}
	for _, b := range d.Buckets {
		for _, g := range b.Guarded {
			// A guard naming no function, or one that does not exist, would deny everyone or
			// name a writer by a typo: refused rather than guessed.
			if !strings.HasSuffix(g.Prefix, "/") || len(g.Writers) == 0 {
				return fmt.Errorf("bucket %s: guarded prefix %q: want a prefix ending in / and its writers", b.Name, g.Prefix)
			}
			for _, w := range g.Writers {
				if !names[w] {
					return fmt.Errorf("bucket %s: guarded prefix %q names no function %q", b.Name, g.Prefix, w)
				}
			}
		}
		if !b.ReadOnly {
			continue
		}
		for _, f := range append(slices.Clone(d.Functions), d.API.Function) {
			if f.Trigger != nil && f.Trigger.Bucket == b.Name {
				return fmt.Errorf("function %s: a trigger on the read-only bucket %s", f.Name, b.Name)
			}
			for _, u := range f.Uses {
				if u.Bucket != b.Name {
					continue
				}
				for _, a := range u.actions() {
					if a != "GetObject" && a != "ListBucket" {
						return fmt.Errorf("function %s: %s on the read-only bucket %s: only operators write it", f.Name, a, b.Name)
					}
				}
			}
		}
	}
	return nil
}

func statement(service string, actions []string, resources []any) map[string]any {
	full := make([]string, len(actions))
	for i, a := range actions {
		full[i] = service + ":" + a
	}
	return map[string]any{"Effect": "Allow", "Action": full, "Resource": resources}
}

// actions are the declared actions, or Write's broad default.
func (u Access) actions() []string {
	if len(u.Actions) > 0 {
		return u.Actions
	}
	switch {
	case u.Table != "" && u.Write:
		return []string{"GetItem", "Query", "PutItem", "UpdateItem"}
	case u.Table != "":
		return []string{"GetItem", "Query"}
	case u.Write:
		return []string{"GetObject", "PutObject"}
	}
	return []string{"GetObject"}
}

func tableHasIndexes(d Declaration, name string) bool {
	for _, t := range d.Tables {
		if t.Name == name {
			return len(t.Indexes) > 0
		}
	}
	return false
}

// addAPI renders the HTTP API: API Gateway (throttled, access-logged) in front of the
// API's Lambda, with alarms on server errors, function errors and throttling.
func addAPI(d Declaration, resources map[string]any) {
	fn := "Function" + camel(d.API.Function.Name)
	props := resources[fn].(map[string]any)["Properties"].(map[string]any)
	props["Events"] = map[string]any{"Api": map[string]any{"Type": "HttpApi", "Properties": map[string]any{
		"ApiId": map[string]string{"Ref": "HttpApi"}, "Path": "/{proxy+}", "Method": "ANY"}}}
	env := props["Environment"].(map[string]any)["Variables"].(map[string]any)
	env["TEMPORAL_ADDRESS"] = map[string]string{"Ref": "TemporalAddress"}
	env["TEMPORAL_NAMESPACE"] = map[string]string{"Ref": "TemporalNamespace"}
	env["TAXFLOW_PAYLOAD_KEY"] = map[string]string{"Ref": "PayloadKey"}
	// Only the API makes subjects; no function and no workflow holds the subject key.
	env["TAXFLOW_SUBJECT_KEY"] = map[string]string{"Ref": "SubjectKey"}
	env["TAXFLOW_SUBJECT_KEYS_PREVIOUS"] = map[string]string{"Ref": "SubjectKeysPrevious"}
	resources["LogsHttpApi"] = map[string]any{"Type": "AWS::Logs::LogGroup", "Properties": map[string]any{
		"LogGroupName": map[string]string{"Fn::Sub": "/aws/apigateway/${Prefix}-api"}, "RetentionInDays": d.API.LogRetentionDay}}
	resources["HttpApi"] = map[string]any{"Type": "AWS::Serverless::HttpApi", "Properties": map[string]any{
		"DefaultRouteSettings": map[string]any{"ThrottlingRateLimit": d.API.ThrottleRate, "ThrottlingBurstLimit": d.API.ThrottleBurst},
		"AccessLogSettings": map[string]any{
			"DestinationArn": map[string]any{"Fn::GetAtt": []string{"LogsHttpApi", "Arn"}},
			// No path, query or body: they may hold personal data.
			"Format": `{"requestId":"$context.requestId","routeKey":"$context.routeKey","status":"$context.status","latency":"$context.responseLatency","ip":"$context.identity.sourceIp"}`,
		},
	}}
	alarm := func(name, namespace, metric string, dims []map[string]any, threshold int) {
		resources["Alarm"+name] = map[string]any{"Type": "AWS::CloudWatch::Alarm", "Properties": map[string]any{
			"AlarmName": map[string]string{"Fn::Sub": "${Prefix}-api-" + strings.ToLower(name)}, "Namespace": namespace, "MetricName": metric,
			"Dimensions": dims, "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 1, "Threshold": threshold,
			"ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
			"AlarmActions": []any{map[string]string{"Ref": "AlarmTopicArn"}}}}
	}
	apiDim := []map[string]any{{"Name": "ApiId", "Value": map[string]string{"Ref": "HttpApi"}}}
	fnDim := []map[string]any{{"Name": "FunctionName", "Value": map[string]string{"Ref": fn}}}
	alarm("ServerErrors", "AWS/ApiGateway", "5xx", apiDim, 5)
	alarm("FunctionErrors", "AWS/Lambda", "Errors", fnDim, 5)
	alarm("FunctionThrottles", "AWS/Lambda", "Throttles", fnDim, 1)
}
