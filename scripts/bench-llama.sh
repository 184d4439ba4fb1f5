#!/usr/bin/env bash
# scripts/bench-llama.sh [MODEL_DIR_OR_GGUF_PREFIX] — lowp's transformer runtime
# against llama.cpp on the same GGUF files: prompt processing (a 128-token
# prompt in one pass) and decode (one token at a time), for F32, Q8_0 and
# MXFP4 weights on 1 and 2 threads. For every case it runs `lowp bench llama`
# and tests/judges/llama_bench.mjs (llama.cpp through node-llama-cpp)
# alternately, ROUNDS times each, so that both see the same machine load, and
# prints the medians in tokens/s and the ratios lowp / llama.cpp.
#
#   PREFIX: GGUFs PREFIX-fp32.gguf, PREFIX-q8_0.gguf, PREFIX-mxfp4.gguf
#           (default /tmp/hfm/big; make them with
#           `lowp quantize MODEL_DIR -o PREFIX-q8_0.gguf -f q8_0` and so on)
# Environment: LOWP (default build/bin/lowp), THREADS ("1 2"), FORMATS
#   ("fp32 q8_0 mxfp4"), PROMPT (128), DECODE (32), REPS (per run, 2),
#   ROUNDS (alternations, 2), LOWP_FLAGS (extra flags for lowp bench llama).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/tmp/hfm/big}
lowp=${LOWP:-build/bin/lowp}
threads_list=${THREADS:-"1 2"}
formats=${FORMATS:-"fp32 q8_0 mxfp4"}
prompt=${PROMPT:-128}
decode=${DECODE:-32}
reps=${REPS:-2}
rounds=${ROUNDS:-2}
read -r -a lowp_flags <<<"${LOWP_FLAGS:-}"

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%-6s %3s | %9s %9s %6s | %9s %9s %6s\n' format thr "lowp pp" "lcpp pp" ratio \
  "lowp tg" "lcpp tg" ratio
for fmt in $formats; do
  gguf="$prefix-$fmt.gguf"
  [[ -f $gguf ]] || { echo "missing $gguf" >&2; continue; }
  fflag=()
  [[ $fmt != fp32 ]] && fflag=(-f "$fmt")
  for t in $threads_list; do
    lpp=() ltg=() cpp=() ctg=()
    for ((r = 0; r < rounds; r++)); do
      j=$("$lowp" bench llama "$gguf" "${fflag[@]}" "${lowp_flags[@]}" --threads "$t" \
        --prompt "$prompt" --decode "$decode" --reps "$reps" --json)
      lpp+=("$(jq -r .prompt_tokens_per_second <<<"$j")")
      ltg+=("$(jq -r .decode_tokens_per_second <<<"$j")")
      j=$(cd tests/judges && node llama_bench.mjs "$gguf" "$t" "$prompt" "$decode" "$reps")
      cpp+=("$(jq -r .pp <<<"$j")")
      ctg+=("$(jq -r .tg <<<"$j")")
    done
    a=$(printf '%s\n' "${lpp[@]}" | median) b=$(printf '%s\n' "${cpp[@]}" | median)
    c=$(printf '%s\n' "${ltg[@]}" | median) d=$(printf '%s\n' "${ctg[@]}" | median)
    printf '%-6s %3s | %9.1f %9.1f %6.2f | %9.1f %9.1f %6.2f\n' "$fmt" "$t" "$a" "$b" \
      "$(awk "BEGIN {print $a / $b}")" "$c" "$d" "$(awk "BEGIN {print $c / $d}")"
  done
done
