// Package layers holds the test that keeps taxflow's layers apart. It has no code of its
// own: the test reads the module's import graph from `go list -deps` and fails, naming each
// import and the rule it breaks, when a layer reaches one it must not.
//
// The layers, bottom up:
//
//   - internal/: the ground every layer stands on (contract, store, domain rules, clients);
//     it reaches nothing above it.
//   - functions/: the business steps, AWS Lambda functions over S3 and DynamoDB; they know
//     nothing of Temporal (a step is called, it does not orchestrate) and nothing of the API.
//   - activities/: the workflows' one door to the functions (through internal/invoker).
//   - workflows/: the processes, deterministic code over activities; no AWS client and no
//     function's code.
//   - api/: the HTTP API and the staff console; it calls functions only through the invoker,
//     starts workflows, and shares with the functions only what internal/ holds.
//   - infra/ and cmd/: what deploys and wires all of the above; cmd/internal holds the
//     commands' own tools (the seed scenarios, the sizing model, the bench, the demo and
//     cmd/internal/drive, the HTTP client both drive the API with).
//
// Only the code that is built is checked: tests may cross the layers (internal/e2e drives a
// whole stack), and `go list -deps` leaves test imports out.
package layers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/taxflow/taxflow"

// rule is one layer's constraint: no package under from (but those in except) may depend,
// directly or through any other package, on a package forbidden names.
type rule struct {
	name   string
	from   []string // module-relative prefixes ("internal" holds internal and internal/...)
	except []string // packages of from the rule does not apply to, with the reason beside
	// forbidden are module-relative prefixes ("api") or, with a dot in the first element,
	// full import path prefixes ("github.com/aws").
	forbidden []string
	// through are packages whose own imports the walk does not follow: what they reach is
	// their layer's business, checked by that layer's rule.
	through []string
}

var rules = []rule{
	{
		name:      "internal/ imports nothing of the layers above it",
		from:      []string{"internal"},
		forbidden: []string{"api", "workflows", "activities", "functions", "infra", "cmd"},
	},
	{
		name:      "workflows import no AWS package and no function",
		from:      []string{"workflows"},
		forbidden: []string{"github.com/aws", "functions"},
		// A workflow names its activities by their methods (a.Assess), so it imports
		// activities, whose implementation holds the Lambda client: that is the door, and
		// activities' own rule keeps it one.
		through: []string{"activities"},
	},
	{
		name:      "activities call functions only through the invoker",
		from:      []string{"activities"},
		forbidden: []string{"functions", "api"},
	},
	{
		name: "functions import no Temporal package",
		from: []string{"functions"},
		// The intake function is where a BatchImport workflow begins: S3 can call only a
		// Lambda function (or a queue) when a file lands in an inbox, so the Temporal client
		// that starts the workflow lives in this one function (functions/intake's package
		// comment). It does nothing else.
		except:    []string{"functions/intake", "functions/intake/lambda"},
		forbidden: []string{"go.temporal.io", "workflows", "activities"},
	},
	{
		name:      "functions import nothing of the API",
		from:      []string{"functions"},
		forbidden: []string{"api"},
	},
	{
		name: "the API calls functions only through the invoker or internal/contract",
		from: []string{"api"},
		// What the API shares with the functions (table names, key formats, validators,
		// a parser) lives in internal/.
		forbidden: []string{"functions"},
	},
	{
		name: "the demo's and the benches' client drives the API as an integrator does: over HTTP",
		from: []string{"cmd/internal/drive"},
		// What an integrator has of taxflow is the API's wire format (internal/events is the
		// events' shape, shared with the functions that write them), not its code.
		forbidden: []string{"api", "workflows", "activities", "functions", "go.temporal.io"},
	},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Error      *struct{ Err string }
}

// graph is the import graph of the module's packages and everything they depend on.
func graph(t *testing.T) map[string][]string {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Imports,Error", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	g := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		// internal/e2e holds only integration tests: without their build tag no file is left.
		if p.Error != nil && !strings.Contains(p.Error.Err, "build constraints exclude all Go files") {
			t.Fatalf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		g[p.ImportPath] = p.Imports
	}
	if len(g[module+"/workflows"]) == 0 {
		t.Fatalf("go list found no imports of %s/workflows: the graph is not the module's", module)
	}
	return g
}

// short drops the module path.
func short(path string) string { return strings.TrimPrefix(path, module+"/") }

// under tells whether path (a full import path) is one of the prefixes or below one.
func under(path string, prefixes []string) bool {
	for _, p := range prefixes {
		full := p
		if !strings.Contains(strings.Split(p, "/")[0], ".") {
			full = module + "/" + p
		}
		if path == full || strings.HasPrefix(path, full+"/") {
			return true
		}
	}
	return false
}

// violations walks from every package a rule applies to and returns, for each import that
// brings a forbidden package in, one line: the import, then the chain that reaches it.
func violations(g map[string][]string, r rule) []string {
	seen := map[string]bool{} // one line per offending import, however many packages reach it
	var out []string
	var sources []string
	for p := range g {
		if strings.HasPrefix(p, module+"/") && under(p, r.from) && !under(p, r.except) {
			sources = append(sources, p)
		}
	}
	sort.Strings(sources)
	for _, src := range sources {
		parent := map[string]string{src: ""}
		queue := []string{src}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if p != src && under(p, r.through) {
				continue
			}
			imports := append([]string(nil), g[p]...)
			sort.Strings(imports)
			for _, q := range imports {
				if _, ok := parent[q]; ok {
					continue
				}
				parent[q] = p
				if !under(q, r.forbidden) {
					queue = append(queue, q)
					continue
				}
				edge := p + " " + q
				if seen[edge] {
					continue
				}
				seen[edge] = true
				chain := []string{short(q)}
				for c := p; c != ""; c = parent[c] {
					chain = append([]string{short(c)}, chain...)
				}
				out = append(out, fmt.Sprintf("%s imports %s (%s)", short(p), short(q), strings.Join(chain, " → ")))
			}
		}
	}
	return out
}

func TestLayers(t *testing.T) {
	g := graph(t)
	for _, r := range rules {
		for _, v := range violations(g, r) {
			t.Errorf("%s: %s", r.name, v)
		}
	}
}

// The walk must find what it is for: a forbidden import, direct or through another package,
// and nothing past a package the rule walks through.
func TestViolationsSeeThroughPackages(t *testing.T) {
	g := map[string][]string{
		module + "/internal/a": {module + "/internal/b", "fmt"},
		module + "/internal/b": {module + "/functions/x"},
		module + "/workflows":  {module + "/activities", module + "/internal/b"},
		module + "/activities": {"github.com/aws/aws-sdk-go-v2/aws"},
	}
	got := violations(g, rules[0])
	want := []string{"internal/b imports functions/x (internal/a → internal/b → functions/x)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("internal rule: got %q, want %q", got, want)
	}
	got = violations(g, rules[1])
	want = []string{"internal/b imports functions/x (workflows → internal/b → functions/x)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("workflows rule (activities walked through, not into): got %q, want %q", got, want)
	}
}
