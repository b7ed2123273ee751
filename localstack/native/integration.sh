#!/usr/bin/env bash
# Runs the integration tests on a fresh local stack and stops it whatever happens.
# Usage: integration.sh [VAR=value ...]   (the test stack's run directory and ports)
set -euo pipefail
for kv in "$@"; do export "${kv?}"; done
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin/taxflow"
rm -rf "${TAXFLOW_RUN_DIR:?}"
trap '"$bin" stack down >/dev/null || true' EXIT
"$bin" stack up
eval "$("$bin" stack env)"
cd "$root"
go test -tags integration -count=1 -timeout 20m -v ./internal/e2e/...
