package infra

import (
	"github.com/taxflow/taxflow/functions/audit"
	"github.com/taxflow/taxflow/functions/cases"
	"github.com/taxflow/taxflow/functions/notify"
	"github.com/taxflow/taxflow/internal/contract"
	"go/parser"
	"go/token"
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
	"dynamodb:UpdateItem": regexp.MustCompile(`\bstore\.SetFields\(|\.UpdateItem\(`),
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
	for _, f := range Declare().Functions {
		if f.Name != contract.FnRecordTransition {
			continue
		}
		for _, u := range f.Uses {
			for _, a := range want[u.Table] {
				if !slices.Contains(u.Actions, a) {
					t.Errorf("%s on %s: %v, missing %s", f.Name, u.Table, u.Actions, a)
				}
			}
			delete(want, u.Table)
		}
	}
	if len(want) > 0 {
		t.Errorf("record-transition has no grants on %v", want)
	}
}
