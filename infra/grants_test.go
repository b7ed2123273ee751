package infra

import (
	"github.com/taxflow/taxflow/functions/document"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/audit"
	"github.com/taxflow/taxflow/internal/batch"
	"github.com/taxflow/taxflow/internal/cases"
	"github.com/taxflow/taxflow/internal/contract"
	"github.com/taxflow/taxflow/internal/trust"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const module = "github.com/taxflow/taxflow/"

// apiCalls maps what a function's code calls to the IAM action it needs. store's helpers
// are named by what they send (store.Get is a GetItem).
var apiCalls = map[string]*regexp.Regexp{
	"dynamodb:GetItem":    regexp.MustCompile(`\bstore\.Get\(|\.GetItem\(`),
	"dynamodb:PutItem":    regexp.MustCompile(`\bstore\.(PutNew|PutIfNewer)\(|\.PutItem\(|TransactWriteItem\{Put:`),
	"dynamodb:UpdateItem": regexp.MustCompile(`\bstore\.SetFields\(|\.UpdateItem\(|TransactWriteItem\{Update:`),
	"dynamodb:Query":      regexp.MustCompile(`\bstore\.QueryAll\(|\.Query\(ctx|\.Query\(context|NewQueryPaginator\(`),
	"dynamodb:Scan":       regexp.MustCompile(`\.Scan\(ctx|\.Scan\(context|NewScanPaginator\(`),
	"dynamodb:DeleteItem": regexp.MustCompile(`\.DeleteItem\(|TransactWriteItem\{Delete:`),
	"s3:GetObject":        regexp.MustCompile(`\.(Presign)?GetObject\(|\.HeadObject\(|\.CopyObject\(`),
	"s3:PutObject":        regexp.MustCompile(`\.(Presign)?PutObject\(|\.CopyObject\(|manager\.NewUploader\(`),
	"s3:DeleteObject":     regexp.MustCompile(`\.DeleteObject\(|\.DeleteObjects\(`),
	"s3:ListBucket":       regexp.MustCompile(`\.ListObjectsV2\(|NewListObjectsV2Paginator\(`),
}

// usedActions reads a function's Go code, and the module's packages it imports (not
// internal/store, whose helpers are counted where they are called), for AWS calls.
func usedActions(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] || dir == "internal/store" {
			return
		}
		seen[dir] = true
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for action, re := range apiCalls {
				if re.Match(src) {
					used[action] = true
				}
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if rest, ok := strings.CutPrefix(p, module); ok {
					visit(rest)
				}
			}
		}
	}
	visit(strings.TrimPrefix(pkg, "./"))
	return used
}

// Every function's grants in the generated template: no wildcard action, and no action
// its code never calls.
func TestTemplateGrantsOnlyWhatEachFunctionUses(t *testing.T) {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Policies []map[string]any `yaml:"Policies"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(Declare().Functions, Declare().API.Function) {
		r := doc.Resources["Function"+camel(f.Name)]
		used := usedActions(t, strings.TrimSuffix(f.Package, "/lambda"))
		var granted []string
		for _, p := range r.Properties.Policies {
			stmts, ok := p["Statement"].([]any)
			if !ok || len(p) != 2 {
				t.Errorf("%s: a policy that is not an inline statement list (a SAM policy template grants more than it says): %v", f.Name, p)
				continue
			}
			for _, s := range stmts {
				st := s.(map[string]any)
				switch st["Effect"] {
				case "Allow":
				case "Deny":
					// A Deny grants nothing; the trust anchors' test below reads it.
					continue
				default:
					t.Errorf("%s: a statement with effect %v", f.Name, st["Effect"])
					continue
				}
				for _, a := range st["Action"].([]any) {
					action := a.(string)
					if strings.Contains(action, "*") {
						t.Errorf("%s: wildcard action %s", f.Name, action)
					}
					if !used[action] {
						t.Errorf("%s: grants %s, which its code never calls", f.Name, action)
					}
					granted = append(granted, action)
				}
				for _, res := range st["Resource"].([]any) {
					if s, ok := res.(string); ok && strings.Contains(s, "*") {
						t.Errorf("%s: wildcard resource %s", f.Name, s)
					}
				}
			}
		}
		// The reverse (a call without a grant) is not checked: the scan is per package, and
		// a package's other functions may call what this function never reaches.
		if len(granted) == 0 && len(f.Uses) > 0 {
			t.Errorf("%s: no grants rendered", f.Name)
		}
	}
}

func TestPrintUsedActions(t *testing.T) {
	if os.Getenv("PRINT_ACTIONS") == "" {
		t.Skip()
	}
	for _, f := range Declare().Functions {
		var a []string
		for k := range usedActions(t, strings.TrimSuffix(f.Package, "/lambda")) {
			a = append(a, k)
		}
		sort.Strings(a)
		t.Logf("%s %v %+v", f.Name, a, f.Uses)
	}
}

// The template test above cannot see a call without a grant (its scan is per package). The
// record function's transactions are checked by hand: every item of a transaction needs
// its own action on its table (a Delete needs DeleteItem), and on AWS a missing one is an
// AccessDenied that no retry fixes — DynamoDB Local enforces none.
func TestRecordTransitionIsGrantedWhatItsTransactionsDo(t *testing.T) {
	code, err := os.ReadFile(filepath.Join("..", "functions", "transition", "handler.go"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, table := range []string{audit.Table, cases.Table, notify.Table} {
		want[table] = []string{"GetItem", "PutItem"}
		if strings.Contains(string(code), "TransactWriteItem{Delete:") && table != cases.Table {
			want[table] = append(want[table], "DeleteItem")
		}
	}
	// The ledger's reservation and the payout's posting carry a case's step in their
	// transactions (functions/transition's Step): they need the same grants.
	for _, name := range []string{contract.FnRecordTransition, contract.FnLedger, contract.FnPayout} {
		missing := maps.Clone(want)
		for _, f := range Declare().Functions {
			if f.Name != name {
				continue
			}
			for _, u := range f.Uses {
				for _, a := range want[u.Table] {
					if !slices.Contains(u.Actions, a) {
						t.Errorf("%s on %s: %v, missing %s", f.Name, u.Table, u.Actions, a)
					}
				}
				delete(missing, u.Table)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s has no grants on %v", name, missing)
		}
	}
}

// writeActions are the writes an attacker holding a function's role would try on the
// trust anchors: planting a root or a bank key, deleting the CRL (so a revoked certificate
// passes), rolling back to an old version, or opening the bucket by changing its policy.
var writeActions = []string{"s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging", "s3:DeleteObject", "s3:DeleteObjectVersion",
	"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:PutBucketAcl",
	"s3:ReplicateObject", "s3:RestoreObject", "s3:DeleteBucket"}

// iamMatch is IAM's action matching: case-insensitive, * any run of characters, ? one.
func iamMatch(pattern, action string) bool {
	re := "(?i)^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(action)
}

// refersTo says whether an IAM resource (as rendered: a string, Fn::GetAtt or Fn::Sub)
// names a bucket's logical resource, or is a wildcard that would cover it.
func refersTo(res any, logical string) bool {
	switch r := res.(type) {
	case string:
		return strings.Contains(r, "*") || strings.Contains(r, logical)
	case map[string]any:
		if g, ok := r["Fn::GetAtt"].([]any); ok && len(g) > 0 {
			return g[0] == logical
		}
		if sub, ok := r["Fn::Sub"].(string); ok {
			// Another resource's ARN (and its objects, ARN/*) is not this bucket; a
			// wildcard in the bucket part is.
			base, _ := strings.CutSuffix(sub, "/*")
			return strings.Contains(sub, "${"+logical+".") || (!strings.Contains(base, "${") && strings.Contains(base, "*"))
		}
	}
	return true // an unknown form: assume the worst
}

func covers(stmt map[string]any, logical, action string, object bool) bool {
	hitsAction := false
	for _, a := range stmt["Action"].([]any) {
		hitsAction = hitsAction || iamMatch(a.(string), action)
	}
	if !hitsAction {
		return false
	}
	for _, res := range stmt["Resource"].([]any) {
		if !refersTo(res, logical) {
			continue
		}
		// The bucket's ARN for bucket actions, its objects (ARN/*) for object actions.
		sub, _ := res.(map[string]any)["Fn::Sub"].(string)
		if strings.HasSuffix(sub, "/*") == object {
			return true
		}
	}
	return false
}

// No role in the template can write the trust anchors: every function's role (the API's,
// the batch's, decision-pdf's and document-store's among them) holds no Allow of a write
// on the trust bucket and an explicit Deny of every write on it, and the bucket's own
// policy denies the same writes to every one of those roles. A compromised function could
// otherwise plant a root or a bank key and forge an identity proof.
func TestNoRoleCanWriteTheTrustAnchors(t *testing.T) {
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
	const bucket = "BucketTrust"
	if doc.Resources[bucket].Type != "AWS::S3::Bucket" {
		t.Fatalf("no %s in the template: the trust anchors share a bucket that functions write", bucket)
	}
	isObject := func(a string) bool { return strings.Contains(a, "Object") }
	var roles []string
	for id, r := range doc.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		if r.Properties["Role"] != nil {
			t.Errorf("%s: a role of its own (not SAM's %sRole, which the bucket policy names)", id, id)
		}
		roles = append(roles, id+"Role")
		var stmts []map[string]any
		policies, _ := r.Properties["Policies"].([]any)
		for _, p := range policies {
			pm, ok := p.(map[string]any)
			if !ok {
				t.Errorf("%s: a policy that is not inline (%v): cannot be read", id, p)
				continue
			}
			for _, s := range pm["Statement"].([]any) {
				stmts = append(stmts, s.(map[string]any))
			}
		}
		for _, action := range writeActions {
			allowed, denied := false, false
			for _, st := range stmts {
				if covers(st, bucket, action, isObject(action)) {
					allowed = allowed || st["Effect"] == "Allow"
					denied = denied || st["Effect"] == "Deny"
				}
			}
			if allowed {
				t.Errorf("%s: its role is allowed %s on the trust anchors", id, action)
			}
			if !denied {
				t.Errorf("%s: its role has no explicit Deny of %s on the trust anchors", id, action)
			}
		}
	}
	sort.Strings(roles)
	if len(roles) < len(Declare().Functions)+1 {
		t.Fatalf("%d function roles in the template, want every declared function and the API", len(roles))
	}
	pol, ok := doc.Resources["BucketPolicyTrust"]
	if !ok {
		t.Fatal("the trust bucket has no bucket policy denying the functions' writes")
	}
	if ref, _ := pol.Properties["Bucket"].(map[string]any); ref["Ref"] != bucket {
		t.Errorf("the trust bucket policy is attached to %v", pol.Properties["Bucket"])
	}
	stmts := pol.Properties["PolicyDocument"].(map[string]any)["Statement"].([]any)
	for _, action := range writeActions {
		deniedTo := map[string]bool{}
		for _, s := range stmts {
			st := s.(map[string]any)
			if st["Effect"] != "Deny" || !covers(st, bucket, action, isObject(action)) {
				continue
			}
			principals, _ := st["Principal"].(map[string]any)["AWS"].([]any)
			for _, p := range principals {
				if g, ok := p.(map[string]any)["Fn::GetAtt"].([]any); ok && len(g) == 2 && g[1] == "Arn" {
					deniedTo[g[0].(string)] = true
				}
			}
		}
		for _, role := range roles {
			if !deniedTo[role] {
				t.Errorf("the trust bucket policy does not deny %s to %s", action, role)
			}
		}
	}
}

// A declaration in which a function may write the trust anchors is refused: the template
// is not rendered and apply does nothing.
func TestDeclarationGrantingATrustWriteIsRefused(t *testing.T) {
	for name, change := range map[string]func(*Declaration){
		"put": func(d *Declaration) {
			d.API.Function.Uses = append(d.API.Function.Uses, Access{Bucket: trust.Bucket, Actions: []string{"PutObject"}})
		},
		"delete": func(d *Declaration) {
			d.Functions[0].Uses = append(d.Functions[0].Uses, Access{Bucket: trust.Bucket, Actions: []string{"DeleteObject"}})
		},
		"default": func(d *Declaration) {
			d.Functions[0].Uses = append(d.Functions[0].Uses, Access{Bucket: trust.Bucket, Write: true})
		},
		"trigger": func(d *Declaration) { d.Functions[0].Trigger = &S3Trigger{Bucket: trust.Bucket, Prefix: "esign/"} },
	} {
		d := Declare()
		change(&d)
		if _, err := Template(d); err == nil || !strings.Contains(err.Error(), trust.Bucket) {
			t.Errorf("%s: template rendered (%v)", name, err)
		}
		if _, err := Apply(t.Context(), nil, d, Options{}); err == nil {
			t.Errorf("%s: apply went ahead", name)
		}
	}
	// The readers read.
	for _, f := range Declare().Functions {
		for _, u := range f.Uses {
			if u.Bucket == trust.Bucket && !slices.Equal(u.Actions, []string{"GetObject"}) {
				t.Errorf("%s: %v on the trust anchors, want GetObject", f.Name, u.Actions)
			}
		}
	}
}

// objectWrites are the writes a role could use to plant or replace an object.
var objectWrites = []string{"s3:PutObject", "s3:PutObjectAcl", "s3:PutObjectTagging", "s3:DeleteObject", "s3:DeleteObjectVersion",
	"s3:ReplicateObject", "s3:RestoreObject"}

// coversKey says whether an IAM statement (as rendered) hits an action on one object key
// of a bucket: its resource is the bucket's ARN followed by a pattern that matches the key
// (IAM's * and ?), or a wildcard.
func coversKey(stmt map[string]any, logical, action, key string) bool {
	hitsAction := false
	for _, a := range stmt["Action"].([]any) {
		hitsAction = hitsAction || iamMatch(a.(string), action)
	}
	if !hitsAction {
		return false
	}
	for _, res := range stmt["Resource"].([]any) {
		switch r := res.(type) {
		case string:
			if r == "*" {
				return true
			}
		case map[string]any:
			sub, ok := r["Fn::Sub"].(string)
			if !ok {
				continue // Fn::GetAtt: the bucket itself, not its objects
			}
			if pattern, ok := strings.CutPrefix(sub, "${"+logical+".Arn}/"); ok && iamMatch(pattern, key) {
				return true
			}
		}
	}
	return false
}

// A batch file's grant (batches/grants/<id>.json in the documents bucket) names the key
// whose scopes its lines are judged with: only the API writes one. Every other role that
// may write the bucket (document-store, decision-pdf, batch) holds an explicit Deny of
// every object write under batches/grants/, and the bucket's policy denies the same to
// every role but the API's; the API itself can still write grants.
func TestOnlyTheAPICanWriteBatchGrants(t *testing.T) {
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
	const bucket, apiFunction = "BucketDocuments", "FunctionApi"
	key, ok := batch.GrantKey(strings.Repeat("ab", 16))
	if !ok {
		t.Fatal("no grant key")
	}
	var others []string
	for id, r := range doc.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		var stmts []map[string]any
		policies, _ := r.Properties["Policies"].([]any)
		for _, p := range policies {
			for _, s := range p.(map[string]any)["Statement"].([]any) {
				stmts = append(stmts, s.(map[string]any))
			}
		}
		for _, action := range objectWrites {
			allowed, denied := false, false
			for _, st := range stmts {
				if coversKey(st, bucket, action, key) {
					allowed = allowed || st["Effect"] == "Allow"
					denied = denied || st["Effect"] == "Deny"
				}
			}
			switch {
			case id == apiFunction && action == "s3:PutObject" && (!allowed || denied):
				t.Errorf("the API cannot write a grant (allowed %v, denied %v): batch upload URLs would carry none", allowed, denied)
			case id != apiFunction && !denied:
				t.Errorf("%s: its role has no explicit Deny of %s on %s (allowed by its policies: %v)", id, action, key, allowed)
			}
		}
		if id != apiFunction {
			others = append(others, id+"Role")
		}
	}
	if len(others) < len(Declare().Functions) {
		t.Fatalf("%d roles besides the API's, want every declared function", len(others))
	}
	pol, ok := doc.Resources["BucketPolicyDocuments"]
	if !ok {
		t.Fatal("the documents bucket has no bucket policy denying the grants' writes")
	}
	if ref, _ := pol.Properties["Bucket"].(map[string]any); ref["Ref"] != bucket {
		t.Errorf("the documents bucket policy is attached to %v", pol.Properties["Bucket"])
	}
	for _, action := range objectWrites {
		deniedTo := map[string]bool{}
		for _, s := range pol.Properties["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := s.(map[string]any)
			if st["Effect"] != "Deny" || !coversKey(st, bucket, action, key) {
				continue
			}
			principals, _ := st["Principal"].(map[string]any)["AWS"].([]any)
			for _, p := range principals {
				if g, ok := p.(map[string]any)["Fn::GetAtt"].([]any); ok && len(g) == 2 && g[1] == "Arn" {
					deniedTo[g[0].(string)] = true
				}
			}
		}
		for _, role := range others {
			if !deniedTo[role] {
				t.Errorf("the documents bucket policy does not deny %s on grants to %s", action, role)
			}
		}
		if deniedTo[apiFunction+"Role"] {
			t.Errorf("the documents bucket policy denies %s on grants to the API", action)
		}
	}
}

// A guard naming a writer that is not a function is refused (a typo would deny the real
// writer or no one).
func TestGuardWithUnknownWriterIsRefused(t *testing.T) {
	d := Declare()
	for i := range d.Buckets {
		if d.Buckets[i].Name == document.Bucket {
			d.Buckets[i].Guarded = append(d.Buckets[i].Guarded, Guard{Prefix: "batches/other/", Writers: []string{"apii"}})
		}
	}
	if _, err := Template(d); err == nil || !strings.Contains(err.Error(), "apii") {
		t.Errorf("template rendered with an unknown writer (%v)", err)
	}
}
