// Package counters is the contract of the case counters: the table the record-transition
// function (functions/transition) updates in each step's own transaction, and the business
// gauges and their rebuild (internal/metrics) read.
package counters

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Table holds the case counters: per process, status and shard, how many case
// projections are at that status (n) and the sum of their approved amounts (approved),
// kept by the same transaction that writes each step, so the business gauges read a few
// hundred small items instead of every case. Partition key "counter".
//
// A counter is split into Shards items, the shard chosen by a hash of the case id:
// a single item per status would be a hot key in a season (every transaction into or out
// of `received` updating one item: DynamoDB serialises transactions on an item, one
// item takes at most 1,000 writes a second, and concurrent transactions on it cancel
// each other with TransactionConflict).
const Table = "case_counts"

// Shards is the number of items each (process, status) counter is split into.
const Shards = 16

// Attributes of a counter item.
const (
	Key      = "counter"  // count#<process>#<status>#<shard>
	N        = "n"        // projections at the status
	Approved = "approved" // sum of their amounts["approved"], kopecks
	Updates  = "updates"  // transactions that changed the item (the rebuild's check)
)

// CounterKey is the key of a counter item. Processes and statuses are closed sets of
// identifiers without '#'.
func CounterKey(process, status string, shard int) string {
	return fmt.Sprintf("count#%s#%s#%d", process, status, shard)
}

// ParseCounterKey is CounterKey's inverse.
func ParseCounterKey(key string) (process, status string, shard int, ok bool) {
	parts := strings.Split(key, "#")
	if len(parts) != 4 || parts[0] != "count" {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil {
		return "", "", 0, false
	}
	return parts[1], parts[2], n, true
}

// Shard is the counter shard of a case.
func Shard(caseID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(caseID))
	return int(h.Sum32() % Shards)
}
