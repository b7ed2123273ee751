#!/usr/bin/env bash
# Runs a command against a fresh local stack and stops the stack whatever happens.
# Usage: with-stack.sh [VAR=value ...] -- command [args...]
#   VAR=value: the stack's run directory and ports (TAXFLOW_RUN_DIR, TAXFLOW_*_PORT)
# Afterwards it fails if the stack or the command left a new untracked file in the
# repository: every run file belongs under the run directory.
set -euo pipefail
while [ $# -gt 0 ] && [ "$1" != "--" ]; do export "${1?}"; shift; done
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin/taxflow"
untracked() { git -C "$root" ls-files --others --exclude-standard 2>/dev/null | sort || true; }
before=$(untracked)
finish() {
  local rc=$?
  "$bin" stack down >/dev/null || true
  local new
  new=$(comm -13 <(echo "$before") <(untracked))
  if [ -n "$new" ]; then
    echo "with-stack: new files in the repository (every run file belongs under $TAXFLOW_RUN_DIR):" >&2
    echo "$new" >&2
    [ "$rc" -ne 0 ] || rc=1
  fi
  exit "$rc"
}
trap finish EXIT
rm -rf "${TAXFLOW_RUN_DIR:?}"
"$bin" stack up
eval "$("$bin" stack env)"
cd "$root"
"$@"
