package ndfl

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// golden is testdata/golden/declarations.json: realistic declarations of 2023–2025 with
// the tax, refund, payable amount and carry-over worked out by hand from the Tax Code;
// each case's reasoning shows the arithmetic.
type golden struct {
	Description string `json:"description"`
	Cases       []struct {
		Name        string      `json:"name"`
		Now         string      `json:"now,omitempty"`
		Reasoning   string      `json:"reasoning"`
		Declaration Declaration `json:"declaration"`
		Want        struct {
			Tax       int64    `json:"tax_kopecks"`
			Refund    int64    `json:"refund_kopecks"`
			Payable   int64    `json:"payable_kopecks"`
			Carryover int64    `json:"carryover_kopecks"`
			Problems  []string `json:"problems,omitempty"`
		} `json:"want"`
	} `json:"cases"`
}

func TestGoldenDeclarations(t *testing.T) {
	b, err := os.ReadFile("testdata/golden/declarations.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	periods := map[int]int{}
	for _, c := range g.Cases {
		periods[c.Declaration.Period]++
		t.Run(c.Name, func(t *testing.T) {
			if c.Reasoning == "" {
				t.Fatal("a golden case needs its reasoning")
			}
			at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.FixedZone("MSK", 3*3600))
			if c.Now != "" {
				if at, err = time.Parse(time.RFC3339, c.Now); err != nil {
					t.Fatal(err)
				}
			}
			got, problems := DefaultRules().Check(c.Declaration, at)
			var fields []string
			for _, p := range problems {
				fields = append(fields, p.Field)
			}
			if got.Tax != c.Want.Tax || got.Refund != c.Want.Refund || got.Payable != c.Want.Payable || got.Carryover != c.Want.Carryover ||
				!slices.Equal(fields, c.Want.Problems) {
				t.Errorf("got tax %d refund %d payable %d carry-over %d problems %v\nwant tax %d refund %d payable %d carry-over %d problems %v\n%s",
					got.Tax, got.Refund, got.Payable, got.Carryover, problems,
					c.Want.Tax, c.Want.Refund, c.Want.Payable, c.Want.Carryover, c.Want.Problems, c.Reasoning)
			}
		})
	}
	if len(g.Cases) < 20 || periods[2023] == 0 || periods[2024] == 0 || periods[2025] == 0 {
		t.Fatalf("the golden file needs at least 20 cases over 2023, 2024 and 2025: %v", periods)
	}
}
