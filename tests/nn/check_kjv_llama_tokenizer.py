#!/usr/bin/python3
"""models/kjv-llama's tokenizer: the Python encoder of scripts/train_kjv_llama.py
against Hugging Face's tokenizer.json semantics (@huggingface/tokenizers, the
pure-JS judge in tests/judges, through tests/judges/hf_tokenize_text.mjs).

    /usr/bin/python3 tests/nn/check_kjv_llama_tokenizer.py [MODEL_DIR]

Encodes the whole KJV validation split (Romans..Revelation) plus a few odd
strings (non-ASCII, digits, contractions, whitespace runs) both ways and
requires identical ids, and BOS in front when special tokens are added.
Exits 77 when torch, python3-regex, node or tests/judges/node_modules is missing
(1 for a missing Python module under CI=true).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "python", "lowp", "examples"))
try:
    import regex  # noqa: F401
    import charlm  # noqa: E402  (torch)
    import train_kjv_llama as T  # noqa: E402
except ImportError as e:
    if os.environ.get("CI") in ("true", "1"):
        print(f"FAIL: {e} (CI=true: skipping is not allowed)")
        sys.exit(1)
    print(f"SKIP: {e} (scripts/deps.sh)")
    sys.exit(77)

model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "kjv-llama")
judge = os.path.join(ROOT, "tests", "judges", "hf_tokenize_text.mjs")
if not shutil.which("node") or not os.path.isdir(os.path.join(ROOT, "tests", "judges",
                                                              "node_modules")):
    print("SKIP: node or tests/judges/node_modules missing (scripts/deps.sh)")
    sys.exit(77)

tok = T.load_tokenizer(os.path.join(model_dir, "tokenizer.json"))
_, val = charlm.load_kjv(T.VAL_FIRST_BOOK, "check_kjv_llama_tokenizer")
texts = {
    "val": val.decode("ascii"),
    "odd": "Héllo wörld — naïve café 北京 🙂\n\n  I'm HE'LL you've 12345 67\t\tx  \r\n end  ",
    "digits": "In 1611, 3 of 10000 men said: 'Let's go!' ...\n\n\n",
}
ok = True
with tempfile.TemporaryDirectory() as d:
    for name, text in texts.items():
        path = os.path.join(d, name + ".txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        mine = tok.encode(text)
        for special in (False, True):
            cmd = ["node", judge, model_dir, path] + (["--special"] if special else [])
            hf = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout)
            want = ([tok.bos_id] if special else []) + mine
            same = hf == want
            ok &= same
            print(f"{name:7s} special={special!s:5s} python {len(want)} ids, hf {len(hf)} ids: "
                  f"{'identical' if same else 'DIFFERENT'}")
            if not same:
                i = next((i for i, (a, b) in enumerate(zip(hf, want)) if a != b),
                         min(len(hf), len(want)))
                print("  first difference at", i, "hf", hf[i:i + 8], "python", want[i:i + 8])
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
