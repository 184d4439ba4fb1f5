#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each one for
# a bounded time over a scratch copy of its seed corpus (the committed corpus
# is never modified).
#
#   scripts/fuzz.sh [SECONDS]     # per target, default 30
#
# Exits non-zero if any target crashes (or fails to build); the crashing input
# is kept as build-fuzz/artifacts/<target>-crash-*. Reproduce with
#   build-fuzz/bin/<target> build-fuzz/artifacts/<target>-crash-...
set -euo pipefail

secs="${1:-30}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "usage: $0 [SECONDS>0]" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"

CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DLOWP_FUZZ=ON -DLOWP_BUILD_TESTS=OFF -DLOWP_PYTHON=OFF -DLOWP_TORCH=OFF -DLOWP_WERROR=ON >/dev/null

targets=()
for src in "$root"/fuzz/*_fuzz.cc; do
  targets+=("$(basename "$src" .cc)")
done
cmake --build "$build" --target "${targets[@]}"

mkdir -p "$build/artifacts"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The targets run side by side, one per core; each one's summary is printed
# when it ends.
fuzz_one() {
  local t=$1 corpus="$work/${1%_fuzz}" seeds="$root/fuzz/corpus/${1%_fuzz}" rc=0
  mkdir -p "$corpus"
  if [ -d "$seeds" ]; then cp -R "$seeds"/. "$corpus"/; fi
  local n_seeds
  n_seeds=$(find "$corpus" -type f | wc -l)
  "$build/bin/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$corpus" 2>"$work/$t.log" || rc=1
  {
    echo "== $t: ${secs}s over $n_seeds seeds"
    if [ "$rc" -ne 0 ]; then echo "!! $t FAILED; log tail:"; tail -n 40 "$work/$t.log"; fi
    grep -E "^(stat::|Done|INFO: Seed|==[0-9]+==ERROR|SUMMARY)" "$work/$t.log" || tail -n 30 "$work/$t.log"
  } >"$work/$t.summary"
  return "$rc"
}

jobs=$(nproc)
status=0
pids=()
names=()
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  pids+=("$!")
  names+=("$t")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    cat "$work/${names[0]}.summary"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
  cat "$work/${names[$i]}.summary"
done
exit "$status"
