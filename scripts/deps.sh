#!/usr/bin/env bash
# Installs the Debian packages Parley needs to build and test, if missing.
# As root it runs apt-get; otherwise sudo; otherwise it prints the command.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libwebsockets-dev libsodium-dev libsqlite3-dev libcereal-dev rapidjson-dev
  libfmt-dev doctest-dev libcli11-dev libedit-dev
  python3 python3-websockets procps
  clang  # the fuzz build (scripts/fuzz.sh); the rest of the build uses gcc
)

# install_missing PACKAGE...: installs those not installed yet.
updated=0
install_missing() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0

  echo "deps: installing ${missing[*]}" >&2
  local cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  if [ "$(id -u)" -eq 0 ]; then
    [ "$updated" -eq 1 ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    [ "$updated" -eq 1 ] || sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
  else
    echo "deps: missing packages; run as root:" >&2
    echo "  apt-get update && ${cmd[*]}" >&2
    exit 1
  fi
  updated=1
}

install_missing "${PACKAGES[@]}"

# libFuzzer and clang's sanitizer runtimes (only recommended by clang, so not
# installed above), and llvm-symbolizer for readable sanitizer reports: Debian
# names them after clang's major version.
clang_major="$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n 1)"
if [ -z "$clang_major" ]; then
  echo "deps: cannot tell the version of clang: $(clang --version | head -n 1)" >&2
  exit 1
fi
install_missing "libclang-rt-$clang_major-dev" "llvm-$clang_major"
