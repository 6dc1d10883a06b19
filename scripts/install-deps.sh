#!/usr/bin/env bash
# Installs the Debian packages regionmove needs to build and test. Idempotent: when every
# package is present it prints nothing and touches nothing.
set -euo pipefail

pkgs=(
  cmake ninja-build g++ ccache pkg-config
  libsqlite3-dev sqlite3 libssl-dev libzstd-dev zstd
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq >/dev/null
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
