#!/usr/bin/env bash
# Tests on the Temporal cluster on PostgreSQL (make test-cluster, make cluster-smoke), run by
# with-stack.sh inside a stack started with TAXFLOW_TEMPORAL=server: infra apply, the
# schedules, the given end-to-end tests, then a second `up` after `down` that must find the
# same workflows in the same database.
# Usage: cluster-test.sh 'go test -run regexp'
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin/taxflow"
temporal="${TAXFLOW_TOOLS:-$root/.tools}/bin/temporal"
cd "$root"
count() { "$temporal" workflow count --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" | awk '/Total/ { print $2 }'; }

"$bin" stack status
"$bin" infra apply >/dev/null
echo "cluster-test: infra applied"
"$bin" schedules apply
"$bin" schedules list
go test -tags integration -count=1 -timeout 30m -run "${1:?test regexp}" -v ./internal/e2e/

schedules() { "$bin" schedules list | awk '{ print $1, $2 }' | sort; }
before=$(count)
sched_before=$(schedules)
echo "cluster-test: $before workflows before down"
"$bin" stack down
# Data whose shard count is not on record is refused, with nothing left running.
shards="$TAXFLOW_RUN_DIR/data/temporal.shards"
mv "$shards" "$shards.aside"
if out=$("$bin" stack up 2>&1); then
  echo "cluster-test: up started Temporal data without its shard count on record" >&2; exit 1
fi
echo "$out" | grep -q "no record of its history shard count" || { echo "cluster-test: unexpected refusal: $out" >&2; exit 1; }
if "$bin" stack status | grep -q running; then
  echo "cluster-test: the refused up left services running" >&2; "$bin" stack status >&2; exit 1
fi
mv "$shards.aside" "$shards"
echo "cluster-test: up without the shard count on record refused, nothing left running"
"$bin" stack up
after=$(count)
sched_after=$(schedules)
echo "cluster-test: $after workflows after down and up again"
if [ -z "$before" ] || [ "$before" -eq 0 ] || [ "$after" -lt "$before" ]; then
  echo "cluster-test: the second up lost workflows ($before before, $after after)" >&2
  exit 1
fi
if [ "$sched_before" != "$sched_after" ] || [ -z "$sched_after" ]; then
  echo "cluster-test: the schedules changed across down and up:" >&2
  diff <(echo "$sched_before") <(echo "$sched_after") >&2 || true
  exit 1
fi
echo "cluster-test: the same $(echo "$sched_after" | wc -l) schedules after down and up"
echo "cluster-test: ok"
