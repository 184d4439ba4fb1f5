#!/usr/bin/env bash
# Installs the Debian 12 packages lowp needs to build and test (as root, or with
# sudo). Does nothing when they are all present already.
set -euo pipefail
packages=(
  cmake ninja-build g++ clang libclang-rt-14-dev clang-format python3
  libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev libhwy-dev
  libpcre2-dev libicu-dev pkg-config  # the tokenizers: split regexes, NFC
  libbenchmark-dev libopenblas-dev libopenblas0-pthread
  libzstd-dev liblz4-dev  # the codecs `lowp bench storage` measures
  # Python: `import lowp` (numpy) and `lowp.torch` (Debian's PyTorch 1.13 and libtorch)
  pybind11-dev python3-dev python3-numpy python3-pytest python3-torch libtorch-dev
  # regex with \p{L} for the Llama-3 pre-tokenizer (scripts/train_kjv_llama.py)
  python3-regex
  # the KJV text for training the embedded model and the MX training example
  bible-kjv
  # the OCR test set (scripts/ocr_render.py): text lines drawn in DejaVu Sans
  python3-pil fonts-dejavu-core
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The judges (tests/judges/package.json): llama.cpp's prebuilt CPU build through
# node-llama-cpp, Hugging Face's tokenizers and ONNX Runtime (onnxruntime-node),
# from npm at pinned versions (package-lock.json). --ignore-scripts: the install
# scripts of node-llama-cpp and onnxruntime-node would try to download or build;
# their prebuilt linux-x64 CPU binaries ship inside the npm packages.
if ! command -v npm >/dev/null; then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
judges="$(dirname "$0")/../tests/judges"
if [[ ! -d "$judges/node_modules" || "$judges/package-lock.json" -nt "$judges/node_modules/.package-lock.json" ]]; then
  (cd "$judges" && npm ci --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error)
fi
