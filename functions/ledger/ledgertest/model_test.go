package ledgertest

import (
	"os"
	"strconv"
	"testing"

	"github.com/taxflow/taxflow/internal/store/storetest"
)

// TestModelInMemory runs many seeds against the in-memory store. TAXFLOW_MODEL_SEED=n
// reruns one seed; TAXFLOW_MODEL_SEEDS and TAXFLOW_MODEL_STEPS widen the search.
func TestModelInMemory(t *testing.T) {
	seeds, steps := envInt("TAXFLOW_MODEL_SEEDS", 100), envInt("TAXFLOW_MODEL_STEPS", 250)
	first := uint64(1)
	if s := os.Getenv("TAXFLOW_MODEL_SEED"); s != "" {
		n, _ := strconv.ParseUint(s, 10, 64)
		first, seeds = n, 1
	}
	var total Stats
	for seed := first; seed < first+uint64(seeds); seed++ {
		db := storetest.New(map[string]storetest.Key{"res": {PK: "key"}, "tr": {PK: "payout_key"}, "ledger": {PK: "inn", SK: "entry_id"}, "tp": {PK: "inn"}})
		st := Run(t, Config{DB: db, Tables: Tables{Reservations: "res", Treasury: "tr", Entries: "ledger", Taxpayers: "tp"}, Seed: seed, Steps: steps})
		total.add(st)
	}
	t.Logf("%d seeds × %d steps: %+v", seeds, steps, total)
	if total.Paid == 0 || total.Capped == 0 || total.Refused == 0 || total.Voided == 0 || total.Expired == 0 || total.Faults == 0 {
		t.Fatalf("the model did not reach every outcome: %+v", total)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
