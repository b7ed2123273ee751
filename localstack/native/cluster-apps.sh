#!/usr/bin/env bash
# Two worker processes and two API processes against the running stack (any back end; made for
# `taxflow stack up --temporal server`): cluster-apps.sh up|down. The APIs listen on
# TAXFLOW_APPS_API_PORTS (default "8081 8082"); clients spread over them (no balancer: each API
# is stateless, every request may go to either). The workers run the build's deployment version
# as `taxflow worker` always does; their metrics listeners are off (two would share a port).
# Pids and logs: <run dir>/apps/. `up` waits until each API is ready and the task queue has a
# poller from each worker process; `down` stops them (SIGTERM: the workers drain their tasks).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/bin/taxflow"
eval "$("$bin" stack env)"
run=${TAXFLOW_RUN_DIR:-$root/.run/dev}
dir="$run/apps"
ports=(${TAXFLOW_APPS_API_PORTS:-8081 8082})
temporal="${TAXFLOW_TOOLS:-$root/.tools}/bin/temporal"
mkdir -p "$dir"

stop_all() {
  local f pid
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "cluster-apps: stopped $(basename "$f" .pid) (pid $pid)"
    rm -f "$f"
  done
}

case "${1:-}" in
down) stop_all; exit 0 ;;
up) ;;
*) echo "usage: cluster-apps.sh up|down" >&2; exit 2 ;;
esac

trap 'rc=$?; [ $rc -eq 0 ] || { echo "cluster-apps: start failed; stopping what it started" >&2; stop_all; }; exit $rc' EXIT
for i in 1 2; do
  if [ -e "$dir/worker-$i.pid" ] && kill -0 "$(cat "$dir/worker-$i.pid")" 2>/dev/null; then echo "cluster-apps: worker-$i already running"; continue; fi
  TAXFLOW_METRICS_ADDR=off setsid "$bin" worker >>"$dir/worker-$i.log" 2>&1 &
  echo $! >"$dir/worker-$i.pid"
done
for i in 1 2; do
  port=${ports[$((i - 1))]}
  if [ -e "$dir/api-$i.pid" ] && kill -0 "$(cat "$dir/api-$i.pid")" 2>/dev/null; then echo "cluster-apps: api-$i already running"; continue; fi
  if ! python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',$port))" 2>/dev/null; then
    echo "cluster-apps: port $port of api-$i is in use: set TAXFLOW_APPS_API_PORTS" >&2; exit 1
  fi
  TAXFLOW_API_ADDR=127.0.0.1:$port TAXFLOW_API_METRICS_ADDR=off setsid "$bin" api >>"$dir/api-$i.log" 2>&1 &
  echo $! >"$dir/api-$i.pid"
done
for i in 1 2; do
  port=${ports[$((i - 1))]}
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; kill -0 "$(cat "$dir/api-$i.pid")" || { echo "cluster-apps: api-$i exited; see $dir/api-$i.log" >&2; exit 1; }; sleep 0.2; done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "cluster-apps: api-$i not ready; see $dir/api-$i.log" >&2; exit 1; }
  echo "cluster-apps: api-$i ready at http://127.0.0.1:$port (pid $(cat "$dir/api-$i.pid"))"
done
queue=${TAXFLOW_TASK_QUEUE:-taxflow}
for _ in $(seq 1 150); do
  n=0
  for i in 1 2; do
    pid=$(cat "$dir/worker-$i.pid")
    kill -0 "$pid" || { echo "cluster-apps: worker-$i exited; see $dir/worker-$i.log" >&2; exit 1; }
    "$temporal" task-queue describe --address "$TEMPORAL_ADDRESS" --namespace "$TEMPORAL_NAMESPACE" --task-queue "$queue" 2>/dev/null | grep -q "$pid@" && n=$((n + 1))
  done
  [ "$n" -eq 2 ] && break
  sleep 0.2
done
[ "$n" -eq 2 ] || { echo "cluster-apps: task queue $queue has pollers from $n of the 2 worker processes" >&2; exit 1; }
echo "cluster-apps: worker-1 (pid $(cat "$dir/worker-1.pid")) and worker-2 (pid $(cat "$dir/worker-2.pid")) poll task queue $queue"
