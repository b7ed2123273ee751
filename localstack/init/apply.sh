#!/usr/bin/env bash
# Init hook: provision taxflow's tables, buckets and functions on the endpoint the
# environment names (LocalStack in docker-compose), with the same code as every stack.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./cmd/taxflow infra apply
