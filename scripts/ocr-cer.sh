#!/usr/bin/env bash
# What weight quantization costs PaddleOCR's PP-OCRv4 text recognizer, as a
# character error rate (CER) measured by ONNX Runtime (tests/judges/ocr_cer.mjs)
# on KJV text lines rendered by scripts/ocr_render.py.
#
#   scripts/ocr-cer.sh [--lines N] [--formats F,F,...] [--methods rtn,mse]
#                      [--threads N] [--lowp PATH] [--models DIR] [--out DIR]
#                      [--json FILE]
#
# Needs build/bin/lowp, scripts/fetch-models.sh build/models (the model and
# ppocr_keys_v1.txt), node with tests/judges/node_modules (scripts/deps.sh) and
# python3-pil with fonts-dejavu-core ($LOWP_PYTHON, default /usr/bin/python3,
# must import PIL); exits 3 when one is missing. The rendered set is cached in
# OUT/set-N (OUT default build/ocr); the fake-quantized models are written to a
# temporary folder under OUT and removed.
#
# Which axis each weight is quantized along: the model's 38 convolutions are
# [out, in, kh, kw], whose block view [out, in·kh·kw] has the reduction along
# its rows (lowp's default axis); its 9 MatMul weights (linear_*) are Paddle's
# [in, out], whose reduction is axis 0. So block formats take two passes of
# `lowp quantize --fake`: conv2d_* with the default axis, then linear_* with
# --axis 0. Scaled matrix formats (int8:channel, int4:group32, ...) scale along
# each row of the view only, so their linear_* pass is refused by lowp: the
# table says so and gives the CER with only the convolutions quantized.
# Scalar formats (fp8_e4m3) have no axis and no scale to search (method mse
# is n/a).
#
# Prints a table: format, method, what was quantized, CER, ΔCER against FP32
# (percentage points). --json FILE also writes the rows as a JSON array.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lines=200
formats="fp8_e4m3,mxfp8_e4m3,mxfp6_e3m2,mxfp6_e2m3,mxfp4,nvfp4,int8:channel,int4:group32"
methods="rtn,mse"
threads=2
lowp="$root/build/bin/lowp"
models="$root/build/models"
json=""
out="$root/build/ocr"
while (($#)); do
  case "$1" in
    --lines) lines="$2"; shift 2 ;;
    --formats) formats="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --lowp) lowp="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ocr-cer: unknown argument: $1" >&2; exit 2 ;;
  esac
done

model="$models/ch_PP-OCRv4_rec_infer.onnx"
dict="$models/ppocr_keys_v1.txt"
judges="$root/tests/judges"
node="${NODE:-node}"
# Debian's python3-pil lives in the system interpreter, which need not be the
# first python3 on PATH.
python="${LOWP_PYTHON:-}"
[[ -n "$python" ]] || { [[ -x /usr/bin/python3 ]] && python=/usr/bin/python3 || python=python3; }
for f in "$lowp" "$model" "$dict" "$judges/node_modules/onnxruntime-node/package.json"; do
  [[ -e "$f" ]] || { echo "ocr-cer: missing $f (build lowp, scripts/fetch-models.sh, scripts/deps.sh)" >&2; exit 3; }
done
"$python" -c "import PIL" 2>/dev/null || { echo "ocr-cer: $python cannot import PIL (python3-pil)" >&2; exit 3; }

# 1. The labelled set, rendered once per renderer version and line count.
mkdir -p "$out"
set_dir="$out/set-$lines"
stamp="$(sha256sum "$root/scripts/ocr_render.py" | cut -c1-16)-$lines"
if [[ "$(cat "$set_dir/stamp" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$set_dir"
  "$python" "$root/scripts/ocr_render.py" "$set_dir" --lines "$lines" >&2
  echo "$stamp" >"$set_dir/stamp"
fi

work="$(mktemp -d "$out/run.XXXXXX")"
trap 'rm -rf "$work"' EXIT

judge() {  # MODEL -> the judge's JSON line
  "$node" "$judges/ocr_cer.mjs" "$1" "$dict" "$set_dir" --threads "$threads"
}
field() {  # JSON FIELD
  "$python" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}
quantized() {  # lowp's summary -> parameters quantized
  sed -n 's/.*: [0-9]* tensors, \([0-9]*\) of [0-9]* parameters quantized.*/\1/p' <<<"$1"
}

rows=()
add_row() {  # format method scope cer seconds
  rows+=("$1|$2|$3|$4|$5")
}

start=$SECONDS
result="$(judge "$model")"
fp32_cer="$(field "$result" cer)"
echo "ocr-cer: fp32: $result" >&2
add_row fp32 - "none" "$fp32_cer" "$(field "$result" seconds)"

IFS=, read -ra format_list <<<"$formats"
IFS=, read -ra method_list <<<"$methods"
for format in "${format_list[@]}"; do
  for method in "${method_list[@]}"; do
    q="$work/q.onnx"
    conv="$work/conv.onnx"
    base=("$lowp" quantize --fake -f "$format" --method "$method" --threads "$threads")
    # Scalar formats: one pass, no axis. Else convolutions along their rows.
    if ! log="$("${base[@]}" "$model" -o "$conv" --include 'conv2d_*' 2>&1)"; then
      if [[ "$log" == *"--method mse chooses scales"* ]]; then
        add_row "$format" "$method" "n/a (no scale to search)" "" ""
        continue
      fi
      echo "$log" >&2
      exit 1
    fi
    n_conv="$(quantized "$log")"
    if log="$("${base[@]}" "$conv" -o "$q" --axis 0 --include 'linear_*' 2>&1)"; then
      n="$((n_conv + $(quantized "$log")))"
      scope="all $n"
    elif [[ "$log" == *"--axis 0 does not apply"* ]]; then
      n="$n_conv"
      scope="conv2d_* only, $n: linear_* skipped (no axis 0)"
      q="$conv"
    else
      echo "$log" >&2
      exit 1
    fi
    result="$(judge "$q")"
    echo "ocr-cer: $format $method ($n parameters quantized): $result" >&2
    add_row "$format" "$method" "$scope" "$(field "$result" cer)" "$(field "$result" seconds)"
    rm -f "$work"/*.onnx
  done
done

"$python" - "$fp32_cer" "$lines" "$json" "${rows[@]}" <<'PY'
import json, sys
fp32, lines, json_path, rows = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
print(f"PP-OCRv4 rec, {lines} KJV lines (scripts/ocr_render.py), ONNX Runtime judge")
print("| format | method | weights quantized | CER | ΔCER |")
print("|---|---|---|---|---|")
out = []
for row in rows:
    fmt, method, scope, cer, seconds = row.split("|")
    if cer:
        c = float(cer)
        delta = "" if fmt == "fp32" else f"{100 * (c - fp32):+.2f} pp"
        print(f"| `{fmt}` | {method} | {scope} | {100 * c:.2f}% | {delta} |")
        out.append({"format": fmt, "method": method, "scope": scope, "cer": c,
                    "delta_cer": c - fp32, "seconds": float(seconds)})
    else:
        print(f"| `{fmt}` | {method} | {scope} | | |")
        out.append({"format": fmt, "method": method, "scope": scope, "cer": None})
if json_path:
    with open(json_path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
PY
echo "ocr-cer: $((SECONDS - start)) s" >&2
