#!/usr/bin/env bash
# Builds lowp and runs every test: the Release build runs all tiers (fast and the
# exhaustive "slow" tier), then an ASan+UBSan build runs the fast tier, then the
# fuzz targets run for a bounded time. Usage: scripts/test.sh [--fast]
#   --fast  skip the slow tier and the fuzzing (for quick local iterations)
#
# Skips: outside CI a test may skip when something optional is missing (the
# real model that scripts/fetch-models.sh fetches, the Python package, torch,
# OpenBLAS); every skip is listed by name at the end. Under CI (CI=true, set by
# .ci/run) nothing may pass by skipping: a failed model fetch or a missing
# optional dependency fails the run, the tests themselves fail instead of
# skipping (tests/ci.h, tests/python/conftest.py), and any skip that still
# shows up fails the run after the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
[[ "${1:-}" == "--fast" ]] && fast=1
jobs=$(nproc)
ci=0
[[ "${CI:-}" == "true" || "${CI:-}" == "1" ]] && ci=1

# Each section's heading says when it began, in seconds since the start.
section() { printf '\n==== %s (at %d s) ====\n' "$*" "$SECONDS"; }

# ---- skips: collected here, listed at exit ----
skips=()     # "where: what: why", from this script
reports=()   # "label:junit.xml:skip-log", one per ctest run
# A missing prerequisite: fatal under CI, else listed as a skip.
skip_or_fail() {
  if ((ci)); then
    echo "error: $1 (CI=true: a missing prerequisite fails the run)" >&2
    exit 1
  fi
  echo "warning: $1" >&2
  skips+=("$1")
}
# ctest with a JUnit report (the tests ctest saw skip: a GoogleTest GTEST_SKIP,
# exit code 77) and a skip log that the Python tests append to (tests skipped
# inside one ctest test: pytest's and unittest's).
run_ctest() {
  local label=$1 dir=$2
  shift 2
  local junit="$PWD/$dir/junit-$label.xml" log="$PWD/$dir/skips-$label.txt"
  rm -f "$junit"
  : >"$log"
  reports+=("$label:$junit:$log")
  LOWP_SKIP_LOG="$log" ctest "$@" -j "$jobs" --output-junit "$junit"
}
summary() {
  local status=$?
  local lines=("${skips[@]}")
  for r in "${reports[@]}"; do
    IFS=: read -r label junit log <<<"$r"
    [[ -f "$junit" ]] && while IFS= read -r line; do lines+=("[$label] $line"); done < <(
      python3 - "$junit" <<'EOF'
# The skipped test cases of a ctest JUnit report, with the reason each gave.
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    skipped = case.find("skipped")
    if skipped is None and case.get("status") != "disabled":
        continue
    out = (case.findtext("system-out") or "").splitlines()
    why = skipped.get("message", "") if skipped is not None else "disabled"
    for i, line in enumerate(out):
        if line.endswith(": Skipped") and i + 1 < len(out):  # GoogleTest's GTEST_SKIP
            why = out[i + 1].strip()
            break
        if line.startswith("SKIP: "):  # a script exiting 77
            why = line[len("SKIP: "):].strip()
            break
    print(f"{case.get('name')}: {why}")
EOF
    )
    [[ -s "$log" ]] && while IFS= read -r line; do lines+=("[$label] $line"); done <"$log"
  done
  section "skipped tests"
  if ((${#lines[@]} == 0)); then
    echo "none"
  else
    printf '  %s\n' "${lines[@]}"
  fi
  ((fast)) && echo "(--fast: the slow tier, the ASan build and the fuzzing were not run)"
  if ((ci && status == 0 && ${#lines[@]} > 0)); then
    echo "error: ${#lines[@]} skipped under CI=true, where nothing may pass by skipping" >&2
    status=1
  fi
  ((status == 0)) && section "all tests passed"
  exit "$status"
}
trap summary EXIT

scripts/deps.sh

section "Format (clang-format)"
# Every tracked C++ file, except those listed in .clang-format-ignore (not yet
# formatted; clang-format 18+ reads that file itself): formatted per .clang-format.
mapfile -t cpp_files < <(git ls-files '*.cc' '*.h')
mapfile -t unformatted < <(grep -v -e '^#' -e '^[[:space:]]*$' .clang-format-ignore 2>/dev/null || true)
format_bad=()
format_ok_listed=()
for f in "${cpp_files[@]}"; do
  listed=0
  for u in "${unformatted[@]}"; do [[ "$f" == "$u" ]] && listed=1 && break; done
  if clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    ((listed)) && format_ok_listed+=("$f")
  elif ((!listed)); then
    format_bad+=("$f")
  fi
done
echo "${#cpp_files[@]} files, ${#unformatted[@]} listed in .clang-format-ignore"
if ((${#format_ok_listed[@]})); then
  echo "formatted now, remove from .clang-format-ignore: ${format_ok_listed[*]}"
fi
if ((${#format_bad[@]})); then
  echo "error: not formatted per .clang-format (clang-format -i FILE):" >&2
  printf '  %s\n' "${format_bad[@]}" >&2
  exit 1
fi

section "Real models"
# Once per machine (cached in build/models); the real-model tests skip without it.
scripts/fetch-models.sh build/models ||
  skip_or_fail "could not fetch the real models (scripts/fetch-models.sh) that the real-model tests read"

section "Release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"

# Optional parts the configure step leaves out when their dependency is missing.
cache_has() { grep -q "^$1" build/CMakeCache.txt; }
cache_has "LOWP_PYTHON:BOOL=ON" ||
  skip_or_fail "python_test: not built (LOWP_PYTHON=OFF: needs pybind11-dev, python3-dev, python3-numpy)"
cache_has "LOWP_TORCH:BOOL=ON" ||
  skip_or_fail "torch_test: not built (LOWP_TORCH=OFF: needs libtorch-dev)"
cache_has "OPENBLAS_FOUND:INTERNAL=1" ||
  skip_or_fail "lowp bench gemv: built without its OpenBLAS peer (needs libopenblas-dev)"

if ((fast)); then
  section "Release tests (fast tier)"
  run_ctest fast build --preset fast
  exit 0
fi

section "Release tests (all tiers)"
run_ctest release build --preset release

section "ASan + UBSan build, fast tier"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
run_ctest asan build-asan --preset asan

if [[ -x scripts/fuzz.sh ]]; then
  section "Fuzzing (bounded)"
  scripts/fuzz.sh "${LOWP_FUZZ_SECONDS:-20}"
fi
