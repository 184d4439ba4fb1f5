#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/tokenizer_fuzz.cc: small tokenizer.json
files of each supported shape (byte-level BPE with the GPT-2 and Llama-3
regexes, NFC; SentencePiece-style BPE with byte fallback), some followed by a
NUL and a text to encode."""
import json
import os

out = os.path.join(os.path.dirname(__file__), "tokenizer")
os.makedirs(out, exist_ok=True)


def byte_chars():
    chars, n = [], 256
    for b in range(256):
        printable = 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE
        chars.append(chr(b if printable else n))
        n += 0 if printable else 1
    return chars


def byte_level(pre, normalizer=None, pair_merges=False, ignore_merges=False):
    vocab = {c: i for i, c in enumerate(byte_chars())}
    for t in ["he", "hel", "hell", "\u0120w", "\u0120wo"]:
        vocab[t] = len(vocab)
    merges = [["h", "e"], ["he", "l"], ["hel", "l"], ["\u0120", "w"], ["\u0120w", "o"]]
    return {"model": {"type": "BPE", "vocab": vocab, "ignore_merges": ignore_merges,
                      "merges": merges if pair_merges else [" ".join(m) for m in merges]},
            "added_tokens": [{"id": len(vocab), "content": "<|eot|>", "special": True}],
            "normalizer": normalizer, "pre_tokenizer": pre, "decoder": {"type": "ByteLevel"}}


LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
seeds = {
    "gpt2.json": byte_level({"type": "ByteLevel", "add_prefix_space": False}),
    "llama3.json": byte_level({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": LLAMA3}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "use_regex": False}]}, ignore_merges=True),
    "qwen.json": byte_level({"type": "ByteLevel"}, {"type": "NFC"}, pair_merges=True),
}
meta = "\u2581"
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
for p in [meta, "a", "b", meta + "a", "ab", meta + "ab"]:
    vocab[p] = len(vocab)
seeds["spm.json"] = {
    "model": {"type": "BPE", "vocab": vocab, "unk_token": "<unk>", "byte_fallback": True,
              "merges": [meta + " a", "a b", meta + "a b"]},
    "added_tokens": [{"id": i, "content": c, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": meta},
                                                       {"type": "Replace", "pattern": {"String": " "}, "content": meta}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                               {"Sequence": {"id": "A", "type_id": 0}}]}}
for name, j in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(json.dumps(j, ensure_ascii=False).encode())
    with open(os.path.join(out, name.replace(".json", "-text.json")), "wb") as f:
        f.write(json.dumps(j).encode() + b"\0hello world ab <|eot|> \xff\xfe\xc3 \xe2\x96\x81abab")
