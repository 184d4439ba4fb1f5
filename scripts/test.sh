#!/usr/bin/env bash
# Builds lowp and runs every test: the Release build runs all tiers (fast and the
# exhaustive "slow" tier), then an ASan+UBSan build runs the fast tier, then the
# fuzz targets run for a bounded time. Usage: scripts/test.sh [--fast]
#   --fast  skip the slow tier and the fuzzing (for quick local iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[[ "${1:-}" == "--fast" ]] && fast=1
jobs=$(nproc)

scripts/deps.sh

section() { printf '\n==== %s ====\n' "$*"; }

section "Real models"
# Once per machine (cached in build/models); the real-model tests skip without it.
scripts/fetch-models.sh build/models ||
  echo "warning: could not fetch the real models; the real-model tests will skip" >&2

section "Release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"

if ((fast)); then
  section "Release tests (fast tier)"
  ctest --preset fast -j "$jobs"
  exit 0
fi

section "Release tests (all tiers)"
ctest --preset release -j "$jobs"

section "ASan + UBSan build, fast tier"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"

if [[ -x scripts/fuzz.sh ]]; then
  section "Fuzzing (bounded)"
  scripts/fuzz.sh "${LOWP_FUZZ_SECONDS:-30}"
fi
section "all tests passed"
