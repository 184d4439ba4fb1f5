"""Tests of lowp.torch.matmul_acc and Accumulator: the op against an exact
reference in pure Python (fractions.Fraction sums, rounding by integer
division, numpy float32 for the promotions), bit for bit, on small shapes;
batch shapes; thread-count independence; bad input; a smoke run of
lowp.examples.accum_eval.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_accum.py
(ctest runs it with that set). Skips when numpy, torch or the op library is
missing, except under ctest (LOWP_TORCH_REQUIRED=1).
"""

import json
import math
import os
from fractions import Fraction

import pytest

if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
    import numpy as np
    import torch
    import lowp.torch as lt
else:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    lt = pytest.importorskip("lowp.torch", reason="lowp.torch (its op library) is not built")


# ---- the reference ----

def round_to_accumulator(x, mantissa_bits, rounding):
    """The exact rational x rounded to mantissa_bits explicit bits with fp32's
    exponent range; returns a Python float (exactly an fp32 value, or +-inf).
    x == 0 is not handled here (its sign depends on the addends)."""
    sign = -1.0 if x < 0 else 1.0
    v = abs(x)
    lead = v.numerator.bit_length() - v.denominator.bit_length()  # 2^lead <= v < 2^(lead+2)
    if Fraction(2) ** lead > v:
        lead -= 1
    if Fraction(2) ** (lead + 1) <= v:
        lead += 1
    if lead > 127:
        return sign * (math.inf if rounding == "rne" else (2 - 2.0 ** -mantissa_bits) * 2.0 ** 127)
    quantum = Fraction(2) ** (max(lead, -126) - mantissa_bits)
    n, rest = divmod(v, quantum)  # n integral, 0 <= rest < quantum
    if rounding == "rne" and (2 * rest > quantum or (2 * rest == quantum and n % 2 == 1)):
        n += 1
    value = n * quantum
    if value >= 2 ** 128:
        return sign * math.inf
    return math.copysign(float(value), sign)  # a sum that rounds to 0 keeps its sign


def reference_dot(a, b, acc):
    """One output: a, b lists of Python floats (fp32 values)."""
    k = len(a)
    chunk = acc.promote_every or k
    total = None
    for p0 in range(0, k, chunk):
        s = 0.0
        for x, y in zip(a[p0:p0 + chunk], b[p0:p0 + chunk]):
            exact = Fraction(s) + Fraction(x) * Fraction(y)
            if exact == 0:
                product_negative = math.copysign(1.0, x) * math.copysign(1.0, y) < 0
                s = -0.0 if (math.copysign(1.0, s) < 0 and product_negative) else 0.0
            else:
                s = round_to_accumulator(exact, acc.mantissa_bits, acc.rounding)
        # Promotion: numpy's float32 addition (nearest-even) of the partial sums.
        total = np.float32(s) if total is None else np.float32(total) + np.float32(s)
    return 0.0 if total is None else float(total)


def reference_matmul(a, b, acc):
    a2 = a.reshape(-1, a.shape[-1]).tolist()
    b2 = b.tolist()
    out = [[reference_dot(row, col, acc) for col in b2] for row in a2]
    return torch.tensor(out, dtype=torch.float32).reshape(*a.shape[:-1], b.shape[0])


def same_bits(x, y):
    return x.shape == y.shape and torch.equal(x.contiguous().view(torch.int32),
                                              y.contiguous().view(torch.int32))


def mx_operands(m, n, k, seed):
    """a [m, k] and b [n, k] fake-quantized to MXFP8 E4M3 along k, as the
    accumulator study feeds the op."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=g) * torch.exp(torch.randn(m, 1, generator=g))
    b = torch.randn(n, k, generator=g) * 0.1
    return (lt.fake_quant(a, "mxfp8_e4m3", axis=-1), lt.fake_quant(b, "mxfp8_e4m3", axis=-1))


ACCUMULATORS = [lt.Accumulator(bits, promote, rounding)
                for bits in (1, 4, 7, 10, 13, 16, 23)
                for promote in (0, 1, 5, 32)
                for rounding in ("rne", "zero")]


@pytest.mark.parametrize("acc", ACCUMULATORS, ids=str)
def test_mxfp8_operands_match_the_exact_reference(acc):
    a, b = mx_operands(6, 5, 70, seed=1)
    assert same_bits(lt.matmul_acc(a, b, acc), reference_matmul(a, b, acc))


@pytest.mark.parametrize("acc", [lt.Accumulator(b, p, r) for b in (3, 13, 23) for p in (0, 4)
                                 for r in ("rne", "zero")], ids=str)
def test_wide_range_operands_match_the_exact_reference(acc):
    # Full 24-bit significands over a wide exponent range, subnormal fp32
    # products and accumulator underflow included.
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 37, generator=g) * torch.exp2(torch.randint(-70, 40, (4, 37), generator=g))
    b = torch.randn(3, 37, generator=g) * torch.exp2(torch.randint(-80, 30, (3, 37), generator=g))
    assert same_bits(lt.matmul_acc(a, b, acc), reference_matmul(a, b, acc))


def test_default_is_the_float32_loop_for_mx_products():
    # MXFP8 products are exact in fp32, so fp32 accumulation is the plain
    # sequential loop s = s + a * b in float32.
    a, b = mx_operands(3, 4, 96, seed=3)
    want = np.zeros((3, 4), dtype=np.float32)
    an, bn = a.numpy(), b.numpy()
    for i in range(3):
        for j in range(4):
            s = np.float32(0)
            for p in range(96):
                s = np.float32(s + an[i, p] * bn[j, p])
            want[i, j] = s
    assert same_bits(lt.matmul_acc(a, b), torch.from_numpy(want))
    assert same_bits(lt.matmul_acc(a, b, lt.Accumulator()), torch.from_numpy(want))


def test_narrow_accumulator_loses_precision():
    # 1 + 2^-10 + ... : an 8-bit significand drops the small products.
    a = torch.tensor([[1.0] + [2.0 ** -10] * 8])
    b = torch.ones(1, 9)
    assert lt.matmul_acc(a, b, lt.Accumulator(7)).item() == 1.0
    assert lt.matmul_acc(a, b, lt.Accumulator(7, promote_every=1)).item() == 1.0 + 8 * 2.0 ** -10
    assert lt.matmul_acc(a, b).item() == 1.0 + 8 * 2.0 ** -10


def test_batch_shapes():
    a, b = mx_operands(12, 7, 40, seed=4)
    acc = lt.Accumulator(10, 16, "zero")
    flat = lt.matmul_acc(a, b, acc)
    assert same_bits(lt.matmul_acc(a.reshape(3, 4, 40), b, acc), flat.reshape(3, 4, 7))
    assert same_bits(lt.matmul_acc(a[5], b, acc), flat[5])
    # A non-contiguous a gives the same values.
    strided = torch.zeros(40, 12).t()
    strided.copy_(a)
    assert not strided.is_contiguous()
    assert same_bits(lt.matmul_acc(strided, b, acc), flat)
    # K = 0: empty sums are +0.
    zero = lt.matmul_acc(torch.zeros(2, 0), torch.zeros(3, 0), acc)
    assert zero.shape == (2, 3) and same_bits(zero, torch.zeros(2, 3))


def test_thread_count_does_not_change_the_result():
    a, b = mx_operands(33, 9, 64, seed=5)
    acc = lt.Accumulator(7, 32, "rne")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = lt.matmul_acc(a, b, acc)
        torch.set_num_threads(2)
        two = lt.matmul_acc(a, b, acc)
    finally:
        torch.set_num_threads(threads)
    assert same_bits(one, two)


def test_bad_input():
    a, b = torch.ones(2, 4), torch.ones(3, 4)
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        lt.matmul_acc([[1.0]], b)
    with pytest.raises(TypeError, match="float32"):
        lt.matmul_acc(a.double(), b)
    with pytest.raises(TypeError, match="float32"):
        lt.matmul_acc(a, b.bfloat16())
    with pytest.raises(TypeError, match="Accumulator"):
        lt.matmul_acc(a, b, 13)
    with pytest.raises(ValueError, match="differs"):
        lt.matmul_acc(a, torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        lt.matmul_acc(a, torch.ones(4))
    with pytest.raises(ValueError, match="at least one dimension"):
        lt.matmul_acc(torch.tensor(1.0), b)
    with pytest.raises(ValueError, match="1..23"):
        lt.Accumulator(0)
    with pytest.raises(ValueError, match="1..23"):
        lt.Accumulator(24)
    with pytest.raises(ValueError, match="negative"):
        lt.Accumulator(13, -1)
    with pytest.raises(ValueError, match="'away' is not supported"):
        lt.Accumulator(13, 0, "away")
    with pytest.raises(TypeError, match="mantissa_bits must be an int"):
        lt.Accumulator(13.0)
    with pytest.raises(TypeError, match="promote_every must be an int"):
        lt.Accumulator(13, True)
    with pytest.raises(TypeError, match="rounding must be a str"):
        lt.Accumulator(13, 0, 1)
    # The op itself checks too.
    with pytest.raises(ValueError, match="rounding away is not supported"):
        torch.ops.lowp.matmul_acc(a, b, 13, 0, "away")
    with pytest.raises(ValueError, match="unknown|rounding"):
        torch.ops.lowp.matmul_acc(a, b, 13, 0, "up")
    with pytest.raises(ValueError, match="1..23"):
        torch.ops.lowp.matmul_acc(a, b, 0, 0, "rne")
    with pytest.raises(ValueError, match="negative"):
        torch.ops.lowp.matmul_acc(a, b, 13, -2, "rne")
    with pytest.raises(ValueError, match="differs"):
        torch.ops.lowp.matmul_acc(a, torch.ones(3, 5), 13, 0, "rne")
    with pytest.raises(TypeError, match="float32"):
        torch.ops.lowp.matmul_acc(a.double(), b, 13, 0, "rne")


def test_accum_eval_smoke(tmp_path):
    # The measurement script on a few windows: the fp32 accumulator is its
    # reference row, and a 7-bit truncating accumulator costs loss.
    from lowp.examples import accum_eval

    out = tmp_path / "accum.json"
    accum_eval.main(["--bytes", "400", "--widths", "23,7", "--promote", "0", "--roundings",
                     "zero", "--timing-repeats", "0", "--threads", "1", "--json", str(out)])
    rows = {row["label"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows[str(lt.Accumulator())]["vs_fp32_acc_percent"] == 0.0
    assert rows[str(lt.Accumulator(7, 0, "zero"))]["loss"] > rows[str(lt.Accumulator())]["loss"]
    assert set(rows) >= {str(lt.Accumulator(23, 0, "zero"))}


def test_accum_eval_training_smoke(tmp_path):
    # Two training steps per accumulator (the KJV text comes from Debian's
    # `bible` program).
    import shutil

    if shutil.which("bible") is None:
        pytest.skip("the `bible` program (Debian bible-kjv) is not installed")
    from lowp.examples import accum_eval

    out = tmp_path / "train.json"
    accum_eval.main(["--bytes", "300", "--skip-eval", "--train-steps", "2", "--train-batch", "2",
                     "--warmup", "1", "--train-accumulators", "23:0:rne,7:0:zero", "--threads",
                     "1", "--json", str(out)])
    rows = json.loads(out.read_text())["training"]["rows"]
    assert [row["accumulator"] for row in rows] == ["e8m23 rne", "e8m7 zero"]
    assert all(math.isfinite(row["val_loss"]) for row in rows)
