#!/usr/bin/env bash
# Installs the Debian packages Parley needs to build and test, if missing.
# As root it runs apt-get; otherwise sudo; otherwise it prints the command.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libwebsockets-dev libsodium-dev libsqlite3-dev libcereal-dev rapidjson-dev
  libfmt-dev doctest-dev libcli11-dev libedit-dev
  python3 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive "${cmd[@]}"
else
  echo "deps: missing packages; run as root:" >&2
  echo "  apt-get update && ${cmd[*]}" >&2
  exit 1
fi
