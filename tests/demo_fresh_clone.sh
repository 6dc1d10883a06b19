#!/usr/bin/env bash
# `make demo` as a newcomer runs it: in a fresh clone, with no build cache to reuse (ccache off).
# Passes when the demo completes and prints how long it took (the README's figure comes from
# here), and `make install PREFIX=...` then installs a working binary.
set -euo pipefail
src="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
git clone -q "$src" "$dir/regionmove"
cd "$dir/regionmove"
CCACHE_DISABLE=1 make demo > "$dir/demo.log" 2>&1 || { cat "$dir/demo.log"; echo "make demo failed"; exit 1; }
grep -q "replica state: torn_down" "$dir/demo.log" || { cat "$dir/demo.log"; echo "the demo did not finish"; exit 1; }
line="$(grep -E '^make demo took [0-9]+ s: [0-9]+ s to install and build, [0-9]+ s of demo$' "$dir/demo.log")" ||
  { cat "$dir/demo.log"; echo "make demo did not print its time"; exit 1; }
echo "$line"
# And `make install` puts that binary on a PATH.
make --no-print-directory install PREFIX="$dir/prefix" > /dev/null
"$dir/prefix/bin/regionmove" --version | grep -q '^regionmove [0-9]' || { echo "make install failed"; exit 1; }
