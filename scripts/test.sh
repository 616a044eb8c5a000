#!/usr/bin/env bash
# Installs what is missing, builds with the default preset, runs every test
# through ctest. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh default
ctest --test-dir build --output-on-failure -j2 "$@"
