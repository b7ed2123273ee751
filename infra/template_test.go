package infra

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The committed template is exactly what the declaration renders.
func TestTemplateFileIsGeneratedFromDeclaration(t *testing.T) {
	want, err := Template(Declare())
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("infra/template.yaml is stale: run `go run ./cmd/taxflow infra template > infra/template.yaml`")
	}
}

// Read back independently: every declared table (with its keys), bucket and function is
// in the template, nothing else is, and every function's policies name only what it uses.
func TestTemplateAgreesWithDeclaration(t *testing.T) {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	d := Declare()
	name := func(p map[string]any, key string) string {
		m, _ := p[key].(map[string]any)
		s, _ := m["Fn::Sub"].(string)
		return strings.TrimPrefix(s, "${Prefix}-")
	}
	seen := map[string]bool{}
	for _, tb := range d.Tables {
		r, ok := doc.Resources["Table"+camel(tb.Name)]
		if !ok || r.Type != "AWS::DynamoDB::Table" || name(r.Properties, "TableName") != tb.Name {
			t.Fatalf("table %s missing or misnamed", tb.Name)
		}
		ks := r.Properties["KeySchema"].([]any)
		if ks[0].(map[string]any)["AttributeName"] != tb.PartitionKey.Name {
			t.Errorf("table %s: partition key differs", tb.Name)
		}
		if (tb.SortKey == nil) != (len(ks) == 1) || (tb.SortKey != nil && ks[1].(map[string]any)["AttributeName"] != tb.SortKey.Name) {
			t.Errorf("table %s: sort key differs", tb.Name)
		}
		gsis, _ := r.Properties["GlobalSecondaryIndexes"].([]any)
		if len(gsis) != len(tb.Indexes) {
			t.Errorf("table %s: %d indexes in template, %d declared", tb.Name, len(gsis), len(tb.Indexes))
		}
		seen["Table"+camel(tb.Name)] = true
	}
	for _, bk := range d.Buckets {
		r, ok := doc.Resources["Bucket"+camel(bk.Name)]
		if !ok || r.Type != "AWS::S3::Bucket" || name(r.Properties, "BucketName") != bk.Name {
			t.Fatalf("bucket %s missing or misnamed", bk.Name)
		}
		seen["Bucket"+camel(bk.Name)] = true
		if bk.ReadOnly || len(bk.Guarded) > 0 {
			if p, ok := doc.Resources["BucketPolicy"+camel(bk.Name)]; !ok || p.Type != "AWS::S3::BucketPolicy" {
				t.Errorf("read-only or guarded bucket %s: no bucket policy", bk.Name)
			}
			seen["BucketPolicy"+camel(bk.Name)] = true
		}
	}
	for _, bk := range d.Buckets {
		v, _ := doc.Resources["Bucket"+camel(bk.Name)].Properties["VersioningConfiguration"].(map[string]any)
		if bk.Versioned != (v["Status"] == "Enabled") {
			t.Errorf("bucket %s: versioning %v, declared %v", bk.Name, v, bk.Versioned)
		}
	}
	// The API: its function, the HTTP API in front (throttled), log groups and alarms.
	for _, id := range []string{"HttpApi", "LogsHttpApi", "AlarmServerErrors", "AlarmFunctionErrors", "AlarmFunctionThrottles"} {
		if _, ok := doc.Resources[id]; !ok {
			t.Errorf("template lacks %s", id)
		}
		seen[id] = true
	}
	if thr, _ := doc.Resources["HttpApi"].Properties["DefaultRouteSettings"].(map[string]any); thr["ThrottlingRateLimit"] == nil || thr["ThrottlingBurstLimit"] == nil {
		t.Errorf("the HTTP API is not throttled: %v", thr)
	}
	for _, f := range append(d.Functions, d.API.Function) {
		logs, ok := doc.Resources["Logs"+camel(f.Name)]
		if !ok || logs.Properties["RetentionInDays"] == nil {
			t.Errorf("function %s: no log group with a retention", f.Name)
		}
		seen["Logs"+camel(f.Name)] = true
		r, ok := doc.Resources["Function"+camel(f.Name)]
		if !ok || r.Type != "AWS::Serverless::Function" || name(r.Properties, "FunctionName") != f.Name {
			t.Fatalf("function %s missing or misnamed", f.Name)
		}
		if r.Properties["Timeout"] != int(f.TimeoutSec) || r.Properties["CodeUri"] != strings.TrimPrefix(f.Package, "./") {
			t.Errorf("function %s: timeout or code differs", f.Name)
		}
		policies := r.Properties["Policies"].([]any)
		denies := 0
		for _, bk := range d.Buckets {
			if bk.ReadOnly {
				denies++ // each adds a policy that denies its writes
			}
			for _, g := range bk.Guarded {
				if !slices.Contains(g.Writers, f.Name) {
					denies++ // each guarded prefix the function does not write: one that denies them
				}
			}
		}
		if len(policies) != len(f.Uses)+denies {
			t.Errorf("function %s: %d policies for %d declared uses and %d denies", f.Name, len(policies), len(f.Uses), denies)
		}
		seen["Function"+camel(f.Name)] = true
	}
	for id := range doc.Resources {
		if !seen[id] {
			t.Errorf("template has %s, which the declaration does not", id)
		}
	}
}

// The API streams uploads to S3 in parts; a client that goes away mid-upload must not leave
// parts behind for ever, so the documents bucket aborts incomplete multipart uploads.
func TestDocumentsBucketAbortsIncompleteMultipartUploads(t *testing.T) {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Properties struct {
				LifecycleConfiguration struct {
					Rules []struct {
						ID     string `yaml:"Id"`
						Prefix string `yaml:"Prefix"`
						Abort  *struct {
							Days int `yaml:"DaysAfterInitiation"`
						} `yaml:"AbortIncompleteMultipartUpload"`
					} `yaml:"Rules"`
				} `yaml:"LifecycleConfiguration"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc.Resources["BucketDocuments"].Properties.LifecycleConfiguration.Rules {
		if r.Abort != nil {
			if r.Prefix != "" || r.Abort.Days < 1 || r.Abort.Days > 7 {
				t.Fatalf("rule %s aborts after %d days under %q: want the whole bucket, 1..7 days", r.ID, r.Abort.Days, r.Prefix)
			}
			return
		}
	}
	t.Fatal("documents bucket has no AbortIncompleteMultipartUpload rule")
}
