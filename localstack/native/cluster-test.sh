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

before=$(count)
echo "cluster-test: $before workflows before down"
"$bin" stack down
"$bin" stack up
after=$(count)
echo "cluster-test: $after workflows after down and up again"
if [ -z "$before" ] || [ "$before" -eq 0 ] || [ "$after" -lt "$before" ]; then
  echo "cluster-test: the second up lost workflows ($before before, $after after)" >&2
  exit 1
fi
"$bin" schedules list >/dev/null
echo "cluster-test: ok"
