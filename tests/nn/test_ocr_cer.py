"""What weight quantization costs a real model, judged by ONNX Runtime.

Runs scripts/ocr-cer.sh on a small set: 40 KJV lines rendered by
scripts/ocr_render.py, read by PaddleOCR's PP-OCRv4 text recognizer
(scripts/fetch-models.sh) in ONNX Runtime (tests/judges/ocr_cer.mjs), FP32 and
fake-quantized by `lowp quantize --fake` to mxfp8_e4m3 and mxfp4 with
--method rtn and mse. Prints the table and asserts:

  * FP32 reads the rendered lines almost perfectly (CER <= FP32_MAX_CER): the
    preprocessing and decoding are PaddleOCR's and the rendering suits the
    model (measured: 0 errors in 200 lines);
  * every block format quantized all 47 weights (38 convolutions along their
    rows, 9 MatMul weights along axis 0);
  * mxfp8_e4m3 costs at most MXFP8_MAX_DELTA in CER against FP32 (measured on
    these 40 lines: +0 rtn, +0.16 pp mse);
  * mxfp4 with rtn breaks the model (CER >= MXFP4_MIN_CER; measured 100%):
    the quantized weights do reach the judge, so the mxfp8 bound is not
    passed by a pipeline that runs FP32 everywhere.

Env: LOWP (the CLI), LOWP_SOURCE_DIR, LOWP_MODELS_DIR, LOWP_OCR_DIR (where the
set is rendered and cached), NODE (default node), LOWP_JUDGE_THREADS (default
2). The interpreter running this file must import PIL (python3-pil). Exits 77
(ctest SKIP_RETURN_CODE) when the model, the judges or the renderer's
dependencies are missing, and fails instead under CI (CI=true).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SOURCE = os.environ.get("LOWP_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODELS = os.environ.get("LOWP_MODELS_DIR", os.path.join(SOURCE, "build", "models"))
OUT = os.environ.get("LOWP_OCR_DIR", os.path.join(SOURCE, "build", "ocr"))
LOWP = os.environ.get("LOWP", os.path.join(SOURCE, "build", "bin", "lowp"))
NODE = os.environ.get("NODE") or shutil.which("node") or "node"
THREADS = os.environ.get("LOWP_JUDGE_THREADS", "2")
UNDER_CI = os.environ.get("CI") in ("true", "1")

LINES = 40
FORMATS = ["mxfp8_e4m3", "mxfp4"]
METHODS = ["rtn", "mse"]
ALL_WEIGHTS = 2_669_672  # parameters in the model's 47 rank-2+ float tensors
FP32_MAX_CER = 0.01
MXFP8_MAX_DELTA = 0.01
MXFP4_MIN_CER = 0.3


def skip_or_fail(why):
    if UNDER_CI:
        print(f"FAIL: {why} (CI=true: skipping is not allowed)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(77)


def check_prerequisites():
    for name in ("ch_PP-OCRv4_rec_infer.onnx", "ppocr_keys_v1.txt"):
        if not os.path.exists(os.path.join(MODELS, name)):
            skip_or_fail(f"{MODELS}/{name} missing (scripts/fetch-models.sh)")
    if not shutil.which(NODE):
        skip_or_fail(f"node not found ({NODE})")
    if not os.path.exists(os.path.join(SOURCE, "tests", "judges", "node_modules",
                                       "onnxruntime-node", "package.json")):
        skip_or_fail("onnxruntime-node not installed (scripts/deps.sh: tests/judges npm ci)")
    if importlib.util.find_spec("PIL") is None:
        skip_or_fail(f"{sys.executable} cannot import PIL (python3-pil)")
    if not os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        skip_or_fail("DejaVu Sans not found (fonts-dejavu-core)")
    if not shutil.which("bible"):
        skip_or_fail("bible not found (bible-kjv)")


def main():
    check_prerequisites()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = os.path.join(tmp, "rows.json")
        env = dict(os.environ, NODE=NODE, LOWP_PYTHON=sys.executable)
        start = time.monotonic()
        run = subprocess.run(
            ["bash", os.path.join(SOURCE, "scripts", "ocr-cer.sh"), "--lines", str(LINES),
             "--formats", ",".join(FORMATS), "--methods", ",".join(METHODS),
             "--threads", THREADS, "--lowp", LOWP, "--models", MODELS, "--out", OUT,
             "--json", rows_path],
            env=env, capture_output=True, text=True)
        seconds = time.monotonic() - start
        sys.stderr.write(run.stderr)
        print(run.stdout, end="")
        if run.returncode != 0:
            print(f"FAIL: scripts/ocr-cer.sh exited {run.returncode}")
            sys.exit(1)
        with open(rows_path) as f:
            rows = {(r["format"], r["method"]): r for r in json.load(f)}
    print(f"({seconds:.1f} s)")

    fp32 = rows[("fp32", "-")]["cer"]
    if fp32 > FP32_MAX_CER:
        failures.append(f"FP32 CER {fp32:.4f} > {FP32_MAX_CER}")
    for fmt in FORMATS:
        for method in METHODS:
            row = rows[(fmt, method)]
            if row["scope"] != f"all {ALL_WEIGHTS}":
                failures.append(f"{fmt} {method}: quantized '{row['scope']}', expected all "
                                f"{ALL_WEIGHTS} weight parameters")
    for method in METHODS:
        delta = rows[("mxfp8_e4m3", method)]["delta_cer"]
        if delta > MXFP8_MAX_DELTA:
            failures.append(f"mxfp8_e4m3 {method}: ΔCER {delta:+.4f} > {MXFP8_MAX_DELTA}")
    mxfp4 = rows[("mxfp4", "rtn")]["cer"]
    if mxfp4 < MXFP4_MIN_CER:
        failures.append(f"mxfp4 rtn: CER {mxfp4:.4f} < {MXFP4_MIN_CER}: did the quantized "
                        "weights reach the judge? (measured: 100%)")
    for failure in failures:
        print(f"FAIL: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
