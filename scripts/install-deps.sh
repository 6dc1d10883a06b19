#!/usr/bin/env bash
# Installs the Debian packages regionmove needs to build (and, with --test, to run its tests:
# the PostgreSQL 15 server, nginx, Chromium, Node.js and the node test clients; with --bench, also
# the peers of bench/run). Idempotent: when everything is present it prints nothing and
# touches nothing.
set -euo pipefail
with_tests=0
with_bench=0
[ "${1:-}" = "--test" ] && with_tests=1
[ "${1:-}" = "--bench" ] && with_tests=1 && with_bench=1

pkgs=(
  cmake ninja-build g++ ccache pkg-config
  libsqlite3-dev sqlite3 libssl-dev libzstd-dev zstd libxxhash-dev libcurl4-openssl-dev
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format
  libpq-dev postgresql-client-15  # the PostgreSQL engine: libpq, pg_dump and psql
)

if [ $with_tests = 1 ]; then
  pkgs+=(clang libclang-rt-14-dev)  # libFuzzer for the fuzz targets
  pkgs+=(postgresql-15)             # the server of the PostgreSQL tests (scripts/pg-regions)
  pkgs+=(nginx-light)               # the edge of the routing-feed tests (tests/node/edge.test.mjs)
  pkgs+=(chromium fonts-dejavu-core) # the browser of the dashboard tests (tests/node/dashboard.test.mjs)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi
if [ $with_bench = 1 ]; then pkgs+=(pgcopydb time wrk); fi  # the peers of bench/run from Debian

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq >/dev/null
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ $with_tests = 1 ] || exit 0

# The official MCP TypeScript SDK, playwright-core and axe-core (the dashboard tests drive Debian's
# chromium; no browser is downloaded) for the tests in tests/node, pinned by its package-lock.json.
root="$(cd "$(dirname "$0")/.." && pwd)"
lock="$root/tests/node/package-lock.json"
stamp="$root/tests/node/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "installing the node test clients (npm ci in tests/node)"
  npm ci --prefix "$root/tests/node" --no-audit --no-fund --loglevel=error >/dev/null
fi
