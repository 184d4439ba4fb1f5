"""Tests of the arithmetic tokenization example (python/lowp/examples/arith.py):
the chunkings against hand-written cases and their regexes, the data split,
a few training steps of every scheme, and the exported Llama directories run
by lowp (`lowp generate ... --temperature 0`) against PyTorch's greedy answers.

Run (ctest's arith_example_test runs it so):
    LOWP=build/bin/lowp LOWP_TOKENIZE=build/bin/lowp_tokenize \
        /usr/bin/python3 -m pytest tests/python/test_arith.py
It imports arith.py as a file (no lowp extension module needed). Skips without
torch, or (the lowp checks) without the binaries; with LOWP_TORCH_REQUIRED=1,
or under CI (tests/python/conftest.py), those are failures.
"""

import json
import math
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
    import torch  # noqa: F401
else:
    pytest.importorskip("torch")

# Import the example as a file: it needs no lowp extension module.
sys.path.insert(0, os.path.join(ROOT, "python", "lowp", "examples"))
import arith  # noqa: E402

LOWP = os.environ.get("LOWP", os.path.join(ROOT, "build", "bin", "lowp"))

# Hand-written cuts: (digits, left-to-right groups, right-to-left groups).
CASES = [
    ("0", ["0"], ["0"]),
    ("12", ["12"], ["12"]),
    ("123", ["123"], ["123"]),
    ("1234", ["123", "4"], ["1", "234"]),
    ("12345", ["123", "45"], ["12", "345"]),
    ("123456", ["123", "456"], ["123", "456"]),
    ("1234567", ["123", "456", "7"], ["1", "234", "567"]),
    ("1000001", ["100", "000", "1"], ["1", "000", "001"]),
    ("99999999", ["999", "999", "99"], ["99", "999", "999"]),
]


def test_chunks_against_hand_written_cases():
    for digits, l2r, r2l in CASES:
        assert arith.chunk_l2r(digits) == l2r, digits
        assert arith.chunk_r2l(digits) == r2l, digits


def test_chunks_round_trip_and_match_the_regexes():
    texts = [f"{a}+{b}={a + b}" for a, b in arith.make_test_set(300, 8, 7)]
    texts += [f"{d}+{d}=" for d, _, _ in CASES]
    for text in texts:
        for scheme in ("digit", "l2r3", "r2l3"):
            pieces = arith.split_text(scheme, text)
            assert "".join(pieces) == text
            assert re.findall(arith.PATTERNS[scheme], text) == pieces, (scheme, text)
            tok = arith.TokenScheme(scheme)
            assert tok.decode(tok.encode(text)) == text
            assert all(len(p) <= (1 if scheme == "digit" else 3) for p in pieces)


def test_merges_build_every_group():
    """Byte-pair merging with the exported merges leaves every digit group as
    one token, whichever of its pairs ranks first."""
    tok = arith.TokenScheme("r2l3")
    rank = {m: i for i, m in enumerate(tok.merges())}
    for n in range(1000):
        for s in (str(n), f"{n:02d}", f"{n:03d}"):
            parts = list(s)
            while len(parts) > 1:
                pairs = [(rank.get((x, y), 1 << 30), i) for i, (x, y) in
                         enumerate(zip(parts, parts[1:]))]
                r, i = min(pairs)
                assert r < 1 << 30, s
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
            assert parts == [s]


def test_test_set_and_training_stream_are_disjoint():
    test_set = arith.make_test_set(500, 2, 3)
    assert len(set(test_set)) == 500
    stream = arith.TrainStream(2, 4, set(test_set))
    assert not set(stream.batch(2000)) & set(test_set)
    longer = [p for p in test_set if arith.answer_longer(*p)]
    assert longer and len(longer) < len(test_set)
    assert arith.answer_longer(5, 7) and not arith.answer_longer(10, 7)
    assert arith.answer_longer(999, 1) and not arith.answer_longer(998, 1)


def test_accuracy_split():
    acc = arith.accuracy([(5, 7), (10, 7), (1, 1)], ["12", "17", "3"])
    assert acc["all"] == {"correct": 2, "n": 3, "acc": 2 / 3}
    assert acc["longer"]["n"] == 1 and acc["longer"]["correct"] == 1
    assert acc["not_longer"]["n"] == 2 and acc["not_longer"]["correct"] == 1


def test_fone_features_and_digits():
    import torch
    cfg = arith.ModelConfig(4, 16, 32, 1, 2, 8)
    m = arith.FoneModel(cfg, 3, torch.Generator().manual_seed(0))
    f = m.features(torch.tensor([123, 7]))
    # (cos, sin)(2 pi x / 10^k): 123 -> angles 2pi*3/10, 2pi*23/100, 2pi*123/1000.
    for row, x in zip(f.tolist(), (123, 7)):
        for k in range(3):
            a = 2 * math.pi * (x % 10 ** (k + 1)) / 10 ** (k + 1)
            assert abs(row[2 * k] - math.cos(a)) < 1e-6
            assert abs(row[2 * k + 1] - math.sin(a)) < 1e-6
    assert arith.digit_targets([1234], 5).tolist() == [[4, 3, 2, 1, 0]]


def lowp_or_skip():
    if not os.path.exists(LOWP):
        if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
            pytest.fail(f"the lowp CLI {LOWP} is not built")
        pytest.skip(f"the lowp CLI {LOWP} is not built")
    return LOWP


def test_smoke_every_scheme_and_lowp_agrees(tmp_path):
    """A few steps of each scheme; each exported token model, run by lowp,
    generates what PyTorch generates greedily (the models are barely trained:
    agreement is what is tested)."""
    lowp = lowp_or_skip()
    results = arith.main(["--smoke", "--seeds", "1", "--export", str(tmp_path),
                          "--lowp", lowp, "--lowp-prompts", "6", "--out", str(tmp_path)])
    assert [r["scheme"] for r in results] == list(arith.SCHEMES)
    for r in results:
        assert r["test"]["all"]["n"] == 200
        if r["scheme"] != "fone":
            assert r["lowp_agree"] == {"same": 6, "n": 6}, r
            d = tmp_path / f"{r['scheme']}-seed1"
            cfg = json.loads((d / "config.json").read_text())
            assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert json.loads((tmp_path / "results.json").read_text())["results"]


def test_lowp_tokenizes_as_python(tmp_path):
    """lowp's tokenizer (lowp_tokenize, the test driver over lowp::nn::Tokenizer)
    reads each exported tokenizer.json and cuts texts of every shape into the
    ids the Python scheme gives."""
    exe = os.environ.get("LOWP_TOKENIZE", os.path.join(ROOT, "build", "bin", "lowp_tokenize"))
    if not os.path.exists(exe):
        if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
            pytest.fail(f"{exe} is not built")
        pytest.skip(f"{exe} is not built")
    import subprocess
    texts = [f"{a}+{b}={a + b}" for a, b in arith.make_test_set(200, 8, 11)]
    texts += [f"{d}+{d}=" for d, _, _ in CASES] + ["0+0=0", "1000+1=1001", "+=", "12=+3"]
    units = tmp_path / "units.json"
    units.write_text(json.dumps(texts))
    for scheme in ("digit", "l2r3", "r2l3"):
        tok = arith.TokenScheme(scheme)
        d = tmp_path / scheme
        d.mkdir()
        (d / "tokenizer.json").write_text(json.dumps(tok.tokenizer_json()))
        (d / "tokenizer_config.json").write_text(json.dumps(tok.tokenizer_config()))
        out = tmp_path / f"{scheme}.json"
        subprocess.run([exe, "encode", str(d / "tokenizer.json"), str(units), str(out)],
                       check=True)
        got = json.loads(out.read_text())
        for text, ids in zip(texts, got):
            assert ids == tok.encode(text), (scheme, text)


def test_export_reads_back(tmp_path):
    import torch
    args = arith.parse_args(["--smoke"])
    for scheme in ("digit", "r2l3"):
        model, tok = arith.build_model(scheme, args, 3)
        arith.export(model, tok, str(tmp_path / scheme), {})
        back, tok2 = arith.load_exported(str(tmp_path / scheme))
        assert tok2.name == scheme
        a, b = model.state_dict(), back.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
