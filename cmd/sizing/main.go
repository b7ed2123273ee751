// Command sizing writes docs/sizing.md from the per-case figures of
// `taxflow bench --per-case --json FILE`:
//
//	go run ./cmd/sizing --from docs/sizing.json --out docs/sizing.md
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/taxflow/taxflow/cmd/internal/sizing"
)

func main() {
	from := flag.String("from", "docs/sizing.json", "the per-case figures (taxflow bench --per-case --json)")
	out := flag.String("out", "docs/sizing.md", "the page to write (- for standard output)")
	flag.Parse()
	if err := run(*from, *out); err != nil {
		fmt.Fprintln(os.Stderr, "sizing:", err)
		os.Exit(1)
	}
}

func run(from, out string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var f sizing.Figures
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	page, err := sizing.Render(f, from)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.WriteString(page)
		return err
	}
	return os.WriteFile(out, []byte(page), 0o644)
}
