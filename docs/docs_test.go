// Package docs_test keeps README.md and docs/*.md honest: every `make` target, `taxflow`
// subcommand and flag, TAXFLOW_* variable, repository path and link they name must exist.
// A doc that names something renamed or removed fails here instead of misleading a reader.
package docs_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository, one level up from this package.
const root = ".."

// doc is one Markdown file split into what the checks read: inline code spans, the lines of
// fenced code blocks, the link targets and the text (for variables, which prose names too).
type doc struct {
	path    string // relative to the repository root
	text    string
	spans   []located
	fence   []located
	links   []located
	anchors map[string]bool
}

type located struct {
	line int
	s    string
}

func (l located) at(d doc) string { return fmt.Sprintf("%s:%d", d.path, l.line) }

func docs(t *testing.T) []doc {
	t.Helper()
	paths := []string{"README.md"}
	mds, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mds {
		paths = append(paths, filepath.ToSlash(strings.TrimPrefix(m, root+string(filepath.Separator))))
	}
	if len(paths) < 6 {
		t.Fatalf("found only %v: the README and docs/*.md are the subject of this test", paths)
	}
	var out []doc
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parse(p, string(b)))
	}
	return out
}

var (
	spanRE    = regexp.MustCompile("`([^`]+)`")
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`^#{1,6}\s+(.*)$`)
)

func parse(path, text string) doc {
	d := doc{path: path, text: text, anchors: map[string]bool{}}
	// Prose and fences apart; the prose keeps its line breaks so an offset gives a line.
	var prose strings.Builder
	in := false
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			prose.WriteString("\n")
			continue
		}
		if in {
			d.fence = append(d.fence, located{i + 1, line})
			prose.WriteString("\n")
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			a := slug(m[1])
			if n := seen[a]; n > 0 {
				d.anchors[a+"-"+strconv.Itoa(n)] = true
			} else {
				d.anchors[a] = true
			}
			seen[a]++
		}
		prose.WriteString(line + "\n")
	}
	p := prose.String()
	lineOf := func(off int) int { return strings.Count(p[:off], "\n") + 1 }
	for _, m := range spanRE.FindAllStringSubmatchIndex(p, -1) {
		d.spans = append(d.spans, located{lineOf(m[0]), strings.ReplaceAll(p[m[2]:m[3]], "\n", " ")})
	}
	for _, m := range linkRE.FindAllStringSubmatchIndex(p, -1) {
		d.links = append(d.links, located{lineOf(m[0]), p[m[2]:m[3]]})
	}
	return d
}

// slug is the anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

// code is every piece of code the docs show: inline spans and fenced lines.
func (d doc) code() []located { return append(slices.Clone(d.spans), d.fence...) }

// makeTargets reads the Makefile's rules.
func makeTargets(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_-]*)\s*:([^=]|$)`)
	targets := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := rule.FindStringSubmatch(line); m != nil {
			targets[m[1]] = true
		}
	}
	for _, must := range []string{"dev", "test", "setup"} {
		if !targets[must] {
			t.Fatalf("the Makefile's rules were not read (no %q in %v)", must, targets)
		}
	}
	return targets
}

var makeRE = regexp.MustCompile(`(?:^|[\s(=;&|])make ([a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*)`)

func TestMakeTargetsExist(t *testing.T) {
	targets := makeTargets(t)
	n := 0
	for _, d := range docs(t) {
		for _, c := range d.code() {
			for _, m := range makeRE.FindAllStringSubmatch(c.s, -1) {
				for _, name := range strings.Split(m[1], "|") {
					n++
					if !targets[name] {
						t.Errorf("%s: `make %s`: the Makefile has no target %q", c.at(d), name, name)
					}
				}
			}
		}
	}
	t.Logf("%d make targets checked", n)
	if n < 10 {
		t.Errorf("only %d make targets found in the docs: the extraction is broken", n)
	}
}

// commands reads cmd/taxflow: the subcommands of run's switch, and the flags each subcommand's
// flag sets define. A flag defined in a function without a flag set of its own (such as the
// seed options every data command shares) belongs to the commands of the functions that call it.
type commands struct {
	subs  map[string]bool
	flags map[string]map[string]bool // subcommand → flag names
}

var flagMethods = map[string]int{ // method → index of the flag's name
	"String": 0, "Int": 0, "Int64": 0, "Uint": 0, "Uint64": 0, "Bool": 0, "Duration": 0, "Float64": 0, "Func": 0, "BoolFunc": 0,
	"StringVar": 1, "IntVar": 1, "Int64Var": 1, "UintVar": 1, "Uint64Var": 1, "BoolVar": 1, "DurationVar": 1, "Float64Var": 1, "Var": 1, "TextVar": 1,
}

func readCommands(t *testing.T) commands {
	t.Helper()
	dir := filepath.Join(root, "cmd", "taxflow")
	fset := token.NewFileSet()
	sources, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, src, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	type fnInfo struct {
		names   map[string]bool // commands named by its own flag sets
		param   int             // >= 0: its flag set is named by this parameter
		flags   []string
		callees map[string]bool
		calls   []*ast.CallExpr
	}
	fns := map[string]*fnInfo{}
	c := commands{subs: map[string]bool{}, flags: map[string]map[string]bool{}}
	str := func(e ast.Expr) (string, bool) {
		if l, ok := e.(*ast.BasicLit); ok && l.Kind == token.STRING {
			s, err := strconv.Unquote(l.Value)
			return s, err == nil
		}
		return "", false
	}
	for _, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			info := &fnInfo{names: map[string]bool{}, param: -1, callees: map[string]bool{}}
			fns[fd.Name.Name] = info
			var params []string
			for _, fl := range fd.Type.Params.List {
				for _, n := range fl.Names {
					params = append(params, n.Name)
				}
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SwitchStmt:
					if id, ok := n.Tag.(*ast.Ident); ok && id.Name == "cmd" && fd.Name.Name == "run" {
						for _, s := range n.Body.List {
							for _, e := range s.(*ast.CaseClause).List {
								if v, ok := str(e); ok && !strings.HasPrefix(v, "-") {
									c.subs[v] = true
								}
							}
						}
					}
				case *ast.CallExpr:
					info.calls = append(info.calls, n)
					var name string
					switch fn := n.Fun.(type) {
					case *ast.SelectorExpr:
						name = fn.Sel.Name
						if x, ok := fn.X.(*ast.Ident); ok && x.Name == "flag" && name == "NewFlagSet" && len(n.Args) > 0 {
							arg := n.Args[0]
							if b, ok := arg.(*ast.BinaryExpr); ok {
								arg = b.X
							}
							if v, ok := str(arg); ok {
								info.names[strings.Fields(v)[0]] = true
							} else if id, ok := arg.(*ast.Ident); ok {
								info.param = slices.Index(params, id.Name)
							}
							return true
						}
						if i, ok := flagMethods[name]; ok && len(n.Args) > i {
							if v, ok := str(n.Args[i]); ok {
								info.flags = append(info.flags, v)
							}
						}
					case *ast.Ident:
						name = fn.Name
					}
					info.callees[name] = true
				}
				return true
			})
		}
	}
	// The commands a function serves: its own flag sets' names; a flag set named by a
	// parameter takes the literal each caller passes; a function without a flag set serves
	// its callers' commands.
	serves := map[string]map[string]bool{}
	for name, info := range fns {
		serves[name] = map[string]bool{}
		for n := range info.names {
			serves[name][n] = true
		}
	}
	for name, info := range fns {
		if info.param < 0 {
			continue
		}
		for _, caller := range fns {
			for _, call := range caller.calls {
				id, ok := call.Fun.(*ast.Ident)
				if !ok || id.Name != name || len(call.Args) <= info.param {
					continue
				}
				if v, ok := str(call.Args[info.param]); ok {
					serves[name][v] = true
				}
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for callerName, caller := range fns {
			for callee := range caller.callees {
				ci, ok := fns[callee]
				if !ok || len(ci.names) > 0 || ci.param >= 0 || len(ci.flags) == 0 {
					continue
				}
				for cmd := range serves[callerName] {
					if !serves[callee][cmd] {
						serves[callee][cmd] = true
						changed = true
					}
				}
			}
		}
	}
	for name, info := range fns {
		for cmd := range serves[name] {
			if c.flags[cmd] == nil {
				c.flags[cmd] = map[string]bool{}
			}
			for _, f := range info.flags {
				c.flags[cmd][f] = true
			}
		}
	}
	for _, must := range []string{"dev", "demo", "worker", "bench", "seed"} {
		if !c.subs[must] {
			t.Fatalf("cmd/taxflow's subcommands were not read (no %q in %v)", must, c.subs)
		}
	}
	if !c.flags["bench"]["n"] || !c.flags["dev"]["taxpayers"] || !c.flags["seed"]["taxpayers"] {
		t.Fatalf("cmd/taxflow's flags were not read: %v", c.flags)
	}
	return c
}

var (
	taxflowRE = regexp.MustCompile(`(?:^|[\s/(=;&|"])taxflow ([a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)*)`)
	flagRE    = regexp.MustCompile(`(?:^|[\s\[(])--([a-z][a-z0-9-]*)`)
	// Where a command line ends: another command, a comment, a pipe or a list.
	commandEndRE = regexp.MustCompile(`&&|\|\||;|\s\|\s|\s#|\)\s|,\s|\bthen\b`)
)

func TestTaxflowSubcommandsAndFlagsExist(t *testing.T) {
	c := readCommands(t)
	subs, flags := 0, 0
	for _, d := range docs(t) {
		for _, l := range d.code() {
			ms := taxflowRE.FindAllStringSubmatchIndex(l.s, -1)
			for i, m := range ms {
				names := strings.Split(l.s[m[2]:m[3]], "|")
				for _, name := range names {
					subs++
					if !c.subs[name] {
						t.Errorf("%s: `taxflow %s`: cmd/taxflow has no subcommand %q", l.at(d), name, name)
					}
				}
				// The flags of this command: up to the next command or the end of the line.
				rest := l.s[m[3]:]
				if i+1 < len(ms) {
					rest = l.s[m[3]:ms[i+1][0]]
				}
				if e := commandEndRE.FindStringIndex(rest); e != nil {
					rest = rest[:e[0]]
				}
				for _, f := range flagRE.FindAllStringSubmatch(rest, -1) {
					flags++
					ok := false
					for _, name := range names {
						ok = ok || c.flags[name][f[1]]
					}
					if !ok {
						t.Errorf("%s: `taxflow %s --%s`: no such flag (cmd/taxflow defines %v)", l.at(d), strings.Join(names, "|"), f[1], keys(c.flags, names))
					}
				}
			}
		}
	}
	t.Logf("%d taxflow subcommands and %d flags checked", subs, flags)
	if subs < 20 || flags < 10 {
		t.Errorf("only %d taxflow subcommands and %d flags found in the docs: the extraction is broken", subs, flags)
	}
}

func keys(m map[string]map[string]bool, cmds []string) []string {
	var out []string
	for _, c := range cmds {
		for k := range m[c] {
			out = append(out, "--"+k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

var (
	envRE    = regexp.MustCompile(`TAXFLOW_[A-Z0-9_*]*[A-Z0-9*]`)
	skipDirs = map[string]bool{".git": true, ".tools": true, ".run": true, "bin": true, "node_modules": true, "testdata": true}
	codeExt  = map[string]bool{".go": true, ".sh": true, ".yaml": true, ".yml": true, ".json": true, ".env": true, ".java": true}
)

// knownVariables: every TAXFLOW_* name the code, the scripts and the Makefile use.
func knownVariables(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if skipDirs[e.Name()] && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		name := e.Name()
		if !codeExt[filepath.Ext(name)] && name != "Makefile" && name != "run" {
			return nil
		}
		if p == filepath.Join(root, "docs", "docs_test.go") {
			return nil // this test names variables in its own checks
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, v := range envRE.FindAllString(string(b), -1) {
			if !strings.Contains(v, "*") {
				set[v] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !set["TAXFLOW_PAYLOAD_KEY"] || !set["TAXFLOW_TEST_TEMPORAL_PORT"] {
		t.Fatalf("the code's variables were not read: %d found", len(set))
	}
	var out []string
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func TestVariablesExist(t *testing.T) {
	known := knownVariables(t)
	n := 0
	for _, d := range docs(t) {
		for i, line := range strings.Split(d.text, "\n") {
			for _, v := range envRE.FindAllString(line, -1) {
				n++
				// A name with * stands for a family (TAXFLOW_BENCH_*_PORT): one member must exist.
				re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(v), `\*`, `[A-Z0-9_]+`) + "$")
				if !slices.ContainsFunc(known, re.MatchString) {
					t.Errorf("%s:%d: %s: no such variable in the code, the scripts or the Makefile", d.path, i+1, v)
				}
			}
		}
	}
	t.Logf("%d variables checked against %d the code uses", n, len(known))
	if n < 50 {
		t.Errorf("only %d variables found in the docs: the extraction is broken", n)
	}
}

// pathTokenRE: a token of a code span that may be a path.
var pathTokenRE = regexp.MustCompile(`[^\s"'()\[\],;=]+`)

func TestPathsAndLinksExist(t *testing.T) {
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	top := map[string]bool{}
	for _, e := range entries {
		if !skipDirs[e.Name()] {
			top[e.Name()] = true
		}
	}
	all := docs(t)
	anchors := map[string]map[string]bool{}
	for _, d := range all {
		anchors[d.path] = d.anchors
	}
	exists := func(p string) bool { _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); return err == nil }
	paths, links := 0, 0
	for _, d := range all {
		for _, s := range d.spans {
			for _, tok := range pathTokenRE.FindAllString(s.s, -1) {
				tok = strings.TrimPrefix(strings.TrimPrefix(tok, "@"), "./")
				tok = strings.TrimRight(tok, ".:")
				first, _, hasSlash := strings.Cut(tok, "/")
				if !top[first] || (!hasSlash && !strings.Contains(first, ".")) {
					continue
				}
				// A placeholder (<name>, {id}, *, …, $VAR): the part before it must exist.
				if i := strings.IndexAny(tok, "<{*…$"); i >= 0 {
					tok = tok[:strings.LastIndex(tok[:i], "/")+1]
				}
				paths++
				if !exists(tok) {
					t.Errorf("%s: `%s`: no such file or directory in the repository", s.at(d), tok)
				}
			}
		}
		for _, l := range d.links {
			target := l.s
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			file, anchor, _ := strings.Cut(target, "#")
			p := d.path
			if file != "" {
				p = filepath.ToSlash(filepath.Join(filepath.Dir(d.path), file))
				if !exists(p) {
					t.Errorf("%s: link %s: no such file %s", l.at(d), target, p)
					continue
				}
			}
			if anchor != "" {
				a, ok := anchors[p]
				if !ok {
					t.Errorf("%s: link %s: an anchor into %s, which this test does not read", l.at(d), target, p)
				} else if !a[anchor] {
					t.Errorf("%s: link %s: %s has no heading #%s", l.at(d), target, p, anchor)
				}
			}
		}
	}
	t.Logf("%d paths and %d links checked", paths, links)
	if paths < 50 || links < 20 {
		t.Errorf("only %d paths and %d links found in the docs: the extraction is broken", paths, links)
	}
}
