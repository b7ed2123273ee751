#!/usr/bin/env bash
# Runs a command against a fresh local stack and stops the stack whatever happens.
# Usage: with-stack.sh [VAR=value ...] -- command [args...]
#   VAR=value: the stack's run directory and ports (TAXFLOW_RUN_DIR, TAXFLOW_*_PORT)
set -euo pipefail
while [ $# -gt 0 ] && [ "$1" != "--" ]; do export "${1?}"; shift; done
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin/taxflow"
rm -rf "${TAXFLOW_RUN_DIR:?}"
trap '"$bin" stack down >/dev/null || true' EXIT
"$bin" stack up
eval "$("$bin" stack env)"
cd "$root"
"$@"
