// Command statesdoc writes the state diagrams of docs/processes.md from the transitions
// tables of the workflows (workflows/*_states.go): between each process's markers, a
// Mermaid stateDiagram-v2 and the table it is drawn from; the rest of the file is kept.
// `make docs` runs it; workflows' TestProcessesDocIsCurrent fails when the file is stale.
//
//	go run ./workflows/cmd/statesdoc [-check] [docs/processes.md]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/taxflow/taxflow/workflows"
)

func main() {
	check := flag.Bool("check", false, "write nothing: exit 1 when the file is stale")
	flag.Parse()
	path := "docs/processes.md"
	if flag.NArg() > 0 {
		path = flag.Arg(0)
	}
	if err := run(path, *check); err != nil {
		fmt.Fprintln(os.Stderr, "statesdoc:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, m := range workflows.StateMachines() {
		if err := m.Check(); err != nil {
			return err
		}
	}
	doc, err := workflows.ProcessesDoc(string(b))
	if err != nil {
		return err
	}
	switch {
	case doc == string(b):
		fmt.Printf("%s: the state diagrams are current\n", path)
		return nil
	case check:
		return fmt.Errorf("%s: the state diagrams are stale: run make docs", path)
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d state diagrams written\n", path, len(workflows.StateMachines()))
	return nil
}
