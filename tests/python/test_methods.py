"""lowp.quantize_matrix's methods against references written here in numpy
float64 from the papers, never calling lowp:

- mse: the clip grid of lowp/storage/segment_quantizer.h searched by brute
  force, bit for bit (a deterministic path);
- gptq: GPTQ as Frantar et al. state it (Cholesky of H^-1, one column at a
  time, unblocked), which lowp's blocked, tiled solver must reproduce up to
  rare rounding-boundary flips; and its per-layer objective tr(dW H dW^T)
  must beat round to nearest on random and real layers.
"""
import os

import numpy as np
import pytest

import lowp

SOURCE_DIR = os.path.join(os.path.dirname(__file__), "..", "..")


def correlated_inputs(tokens, cols, seed):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((4, cols))
    z = rng.standard_normal((tokens, 4))
    x = z @ mix + 0.5 * rng.standard_normal((tokens, cols))
    x[:, ::7] *= 5.0  # a few loud channels, as real activations have
    return x.astype(np.float32)


def hessian(x):
    x64 = x.astype(np.float64)
    return x64.T @ x64


def int_quant(w, scale, qmax):
    """Symmetric integer round to nearest even, saturating; 0 where scale is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(scale > 0, np.clip(np.round(w / scale), -qmax, qmax), 0.0)
    return q


def fp16_scale(amax, qmax):
    return np.float64(np.float16(np.float32(amax) / np.float32(qmax)))


def reference_mse_group(w, group, qmax, steps=50, min_clip=0.5):
    """Per group of each row: the FP16 scale among clips 1, 1 - 0.5/50, ... of
    amax / qmax with the least squared error (the first on ties)."""
    out = np.zeros_like(w, dtype=np.float64)
    for r in range(w.shape[0]):
        for g in range(0, w.shape[1], group):
            v = w[r, g:g + group].astype(np.float64)
            amax = np.float32(np.max(np.abs(w[r, g:g + group])))
            best, best_q = None, None
            for i in range(steps + 1):
                ratio = np.float32(1.0 - (1.0 - min_clip) * i / steps)
                s = fp16_scale(np.float32(ratio * amax), qmax)
                q = int_quant(np.float32(v) / np.float32(s), 1.0, qmax) * np.float32(s) if s > 0 else 0 * v
                err = np.sum((v - q) ** 2)
                if best is None or err < best:
                    best, best_q = err, q
            out[r, g:g + group] = best_q
    return out


def test_mse_search_matches_a_brute_force_reference_bit_for_bit():
    rng = np.random.default_rng(1)
    w = (0.02 * rng.standard_t(3, size=(6, 96))).astype(np.float32)
    got = lowp.quantize_matrix(w, "int4:group32", method="mse").dequantize()
    want = reference_mse_group(w, 32, 7)
    np.testing.assert_array_equal(got, want.astype(np.float32))
    rtn = lowp.quantize_matrix(w, "int4:group32").dequantize()
    assert np.sum((w - got) ** 2) < np.sum((w - rtn) ** 2)


def reference_gptq(w, h, damp, group=None, qmax=7):
    """GPTQ (unblocked) with symmetric int scales: per row (group=None) from
    the original weights, or per group of `group` columns from the weights as
    updated when the loop enters the group."""
    w = w.astype(np.float64).copy()
    rows, cols = w.shape
    h = h.copy()
    h[np.diag_indices(cols)] += damp * np.mean(np.diag(h))
    hinv = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: H^-1 = U^T U
    q = np.zeros_like(w)
    if group is None:
        scale = np.float32(np.max(np.abs(w.astype(np.float32)), axis=1)) / np.float32(qmax)
        scale = scale[:, None].astype(np.float32) * np.ones((1, cols), np.float32)
    else:
        scale = np.zeros((rows, cols), np.float32)
    for j in range(cols):
        if group is not None and j % group == 0:
            amax = np.max(np.abs(w[:, j:j + group].astype(np.float32)), axis=1)
            scale[:, j:j + group] = np.array([fp16_scale(a, qmax) for a in amax], np.float32)[:, None]
        s = scale[:, j]
        col = w[:, j].astype(np.float32)
        qj = (int_quant(col / s, 1.0, qmax).astype(np.float32) * s).astype(np.float64)
        q[:, j] = qj
        err = (w[:, j] - qj) / hinv[j, j]
        w[:, j + 1:] -= np.outer(err, hinv[j, j + 1:])
    return q


def objective(w, q, h):
    d = w.astype(np.float64) - q.astype(np.float64)
    return float(np.einsum("ij,jk,ik->", d, h, d))


@pytest.mark.parametrize("fmt,group", [("int4:channel", None), ("int4:group32", 32)])
def test_gptq_matches_an_unblocked_numpy_reference(fmt, group):
    rng = np.random.default_rng(2)
    w = (0.05 * rng.standard_normal((16, 64))).astype(np.float32)
    h = hessian(correlated_inputs(512, 64, 3))
    got = lowp.quantize_matrix(w, fmt, method="gptq", hessian=h, damp=0.01, block=16,
                               mse_scales=False, threads=2).dequantize()
    want = reference_gptq(w, h, 0.01, group)
    differ = np.count_nonzero(got != want.astype(np.float32))
    assert differ <= w.size // 100, f"{differ} of {w.size} values differ"
    rtn = lowp.quantize_matrix(w, fmt).dequantize()
    assert objective(w, got, h) < objective(w, rtn, h)
    assert abs(objective(w, got, h) - objective(w, want, h)) <= 0.02 * objective(w, want, h)


def test_gptq_on_a_real_layer_beats_round_to_nearest_in_every_4_bit_format():
    m = lowp.open_model(os.path.join(SOURCE_DIR, "models", "kjv-char", "model.safetensors"))
    name = [t["name"] for t in m.tensors if t["name"].endswith("fc.weight")][0]
    w = np.ascontiguousarray(m[name], dtype=np.float32)  # [512, 128]
    h = hessian(correlated_inputs(2048, w.shape[1], 4))
    for fmt in ("mxfp4", "nvfp4", "int4:group32", "int4:group32:asym", "mx:int4:32"):
        rtn = objective(w, lowp.quantize_matrix(w, fmt).dequantize(), h)
        for act_order in (False, True):
            g = lowp.quantize_matrix(w, fmt, method="gptq", hessian=h, act_order=act_order, threads=2)
            assert g.format == lowp.quantize_matrix(w, fmt).format
            assert objective(w, g.dequantize(), h) < rtn, (fmt, act_order)


def test_bad_method_input():
    w = np.ones((2, 32), np.float32)
    with pytest.raises(lowp.Error, match="calibration"):
        lowp.quantize_matrix(w, "int4:group32", method="gptq")
    with pytest.raises(lowp.Error, match="awq"):
        lowp.quantize_matrix(w, "int4:group32", method="awq")
    with pytest.raises(lowp.Error, match="hessian"):
        lowp.quantize_matrix(w, "int4:group32", method="gptq", hessian=np.eye(16))
    asym = np.eye(32)
    asym[0, 1] = 1.0
    with pytest.raises(lowp.Error, match="symmetric"):
        lowp.quantize_matrix(w, "int4:group32", method="gptq", hessian=asym)


FP4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def fp4_round(x):
    """Round to the FP4 E2M1 grid (ties to the even code), saturating, in float64."""
    a = np.minimum(np.abs(x), 6.0)
    idx = np.searchsorted(FP4, a)
    lo = FP4[np.clip(idx - 1, 0, 7)]
    hi = FP4[np.clip(idx, 0, 7)]
    lo_code, hi_code = np.clip(idx - 1, 0, 7), np.clip(idx, 0, 7)
    pick_hi = (hi - a < a - lo) | ((hi - a == a - lo) & (hi_code % 2 == 0))
    return np.sign(x) * np.where(pick_hi, hi, lo)


def test_afpq_two_scales_match_a_float64_reference():
    # fp4_e2m1:group32:asym: per group s+ = fp16(max(w)/6), s- = fp16(max(-w)/6).
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((6, 96)) + 0.4).astype(np.float32)
    w[1, :32] = np.abs(w[1, :32])  # a group with no negative value
    m = lowp.quantize_matrix(w, "fp4_e2m1:group32:asym")
    assert m.bits_per_weight == 5.0
    g = m.scales()["group"].astype(np.float64).reshape(6, 3, 2)
    ref = np.empty_like(w, dtype=np.float64)
    for r in range(6):
        for k in range(3):
            v = w[r, 32 * k:32 * (k + 1)].astype(np.float64)
            sp = np.float64(np.float16(max(v.max(), 0.0) / 6.0))
            sn = np.float64(np.float16(max((-v).max(), 0.0) / 6.0))
            assert (g[r, k, 0], g[r, k, 1]) == (sp, sn)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(v < 0, fp4_round(v / sn) * sn if sn > 0 else 0.0, fp4_round(v / sp) * sp)
            ref[r, 32 * k:32 * (k + 1)] = q
    assert g[1, 0, 1] == 0.0
    np.testing.assert_array_equal(m.dequantize(), ref.astype(np.float32))
    # The searches and GPTQ take the same format.
    x = correlated_inputs(512, 96, 4)
    rtn = lowp.quantize_matrix(w, "fp4_e2m1:group32:asym")
    gq = lowp.quantize_matrix(w, "fp4_e2m1:group32:asym", method="gptq", hessian=hessian(x))
    err = lambda q: np.trace((w - q.dequantize()) @ hessian(x) @ (w - q.dequantize()).T)
    assert err(gq) < err(rtn)


def test_split_search_names_the_chosen_element():
    rng = np.random.default_rng(5)
    uniform = rng.uniform(-1, 1, (8, 128)).astype(np.float32)
    heavy = rng.standard_t(2, (8, 128)).astype(np.float32)
    assert lowp.quantize_matrix(uniform, "fp4_e2m1:channel", method="fpvote").format == "e1m2fin:channel"
    assert lowp.quantize_matrix(heavy, "fp4_e2m1:channel", method="fpsearch").format == "e3m0fin:channel"
    with pytest.raises(Exception, match="not a scaled float format"):
        lowp.quantize_matrix(uniform, "int8:channel", method="fpvote")


def test_power_quantize_and_lorc():
    rng = np.random.default_rng(7)
    w = rng.laplace(size=(16, 64)).astype(np.float32)
    p = lowp.power_quantize(w, "int4:group32")
    a = p["exponent"]
    assert 0.25 <= a < 1.0
    assert len(p["errors"]) == 16 and min(p["errors"]) == p["errors"][round((a - 0.25) / 0.05)]
    t = p["stored"].dequantize().astype(np.float64)
    np.testing.assert_array_equal(p["weights"], (np.sign(t) * np.abs(t) ** (1.0 / a)).astype(np.float32))
    assert p["bytes"] == p["stored"].bytes + 4
    # LoRC: q + u v^T from the stored int8 factors, less error than q.
    q = lowp.quantize_matrix(w, "int4:group32")
    c = lowp.low_rank_compensation(w, q, 4)
    u, v = c["u"].dequantize().astype(np.float64), c["v"].dequantize().astype(np.float64)
    want = (q.dequantize().astype(np.float64) + u @ v.T).astype(np.float32)
    np.testing.assert_allclose(c["weights"], want, rtol=0, atol=1e-6)
    assert ((c["weights"] - w) ** 2).sum() < ((q.dequantize() - w) ** 2).sum()
    assert c["bytes"] == q.bytes + c["u"].bytes + c["v"].bytes
    with pytest.raises(Exception, match="--lorc-rank 65"):
        lowp.low_rank_compensation(w, q, 65)


def test_vector_quantize():
    rng = np.random.default_rng(9)
    w = rng.standard_normal((32, 64)).astype(np.float32)
    r = lowp.vector_quantize(w, "int2:group32", dim=2)
    assert r["indices"].shape == (32, 32) and len(r["codebooks"]) == 2
    for row in range(32):
        for j in range(0, 64, 2):
            cb = r["codebooks"][j // 32]
            np.testing.assert_array_equal(r["weights"][row, j:j + 2], cb[r["indices"][row, j // 2]])
    assert r["bytes"] == 32 * (32 * 4 // 8) + 2 * (16 * 2 + 2)
    x = correlated_inputs(256, 64, 2)
    g = lowp.vector_quantize(w, "int2:group32", dim=2, hessian=hessian(x))
    err = lambda q: np.trace((w - q) @ hessian(x) @ (w - q).T)
    assert err(g["weights"]) < err(r["weights"])
    with pytest.raises(lowp.Error, match="does not give vector quantization"):
        lowp.vector_quantize(w, "mxfp4")
    with pytest.raises(lowp.Error, match="--vq-dim 3"):
        lowp.vector_quantize(w, "int2:group32", dim=3)


def numpy_slice(codes_i8, bits, unsigned):
    """Matryoshka slicing of int8 codes in numpy: round half to even, clamp."""
    step = 2.0 ** (8 - bits)
    q = codes_i8.astype(np.float64)
    if unsigned:
        t = np.clip(np.round(q / step), 0, 2**bits - 1)
    else:
        top = 0 if bits == 1 else 2 ** (bits - 1) - 1
        t = np.clip(np.round(q / step), -top, top)
    return t * step


def test_matgptq_slices_and_their_joint_objective():
    x = correlated_inputs(600, 64, 11)
    h = hessian(x)
    w = (0.05 * np.random.default_rng(12).standard_t(4, (24, 64))).astype(np.float32)
    g = lowp.quantize_matrix(w, "int8:channel", method="gptq", hessian=h)
    m = lowp.quantize_matrix(w, "int8:channel", method="matgptq", hessian=h, slices=[8, 4, 2])
    only8 = lowp.quantize_matrix(w, "int8:channel", method="matgptq", hessian=h, slices=[8])
    np.testing.assert_array_equal(only8.codes(), g.codes())

    def objective(q):
        d = w.astype(np.float64) - q.dequantize().astype(np.float64)
        return float(np.einsum("ij,jk,ik->", d, h, d))

    for q in (g, m):
        codes = q.codes().view(np.int8)
        for bits in (4, 2):
            s = lowp.matryoshka_slice(q, bits)
            np.testing.assert_array_equal(s.codes().view(np.int8), numpy_slice(codes, bits, False))
            # The same scales: values are the sliced codes times the row scale.
            np.testing.assert_array_equal(
                s.dequantize(),
                (s.codes().view(np.int8).astype(np.float32) * q.scales()["row"][:, None]))
    joint = [sum(objective(lowp.matryoshka_slice(q, b)) for b in (4, 2)) + objective(q)
             for q in (g, m)]
    assert joint[1] < joint[0]
    with pytest.raises(lowp.Error, match="matgptq"):
        lowp.quantize_matrix(w, "int4:channel", method="matgptq", hessian=h)
    with pytest.raises(lowp.Error, match="weights"):
        lowp.quantize_matrix(w, "int8:channel", method="matgptq", hessian=h,
                             slice_weights=[1.0])
    with pytest.raises(lowp.Error, match="int8"):
        lowp.matryoshka_slice(lowp.quantize_matrix(w, "int4:group32"), 2)


def test_nupes_refines_the_power_exponent_on_the_output_error():
    x = correlated_inputs(500, 48, 21)
    h = hessian(x)
    w = (0.05 * np.random.default_rng(22).laplace(size=(16, 48))).astype(np.float32)
    free = lowp.power_quantize(w, "int3:channel")
    data = lowp.power_quantize(w, "int3:channel", hessian=h)
    for r in (free, data):
        d = w.astype(np.float64) - r["weights"].astype(np.float64)
        r["output"] = float(np.einsum("ij,jk,ik->", d, h, d))
    np.testing.assert_allclose(data["error"], data["output"], rtol=1e-9)
    assert data["output"] <= free["output"] * (1 + 1e-12)
    assert data["error"] <= min(data["errors"])
    with pytest.raises(lowp.Error, match="hessian"):
        lowp.power_quantize(w, "int3:channel", hessian=np.eye(3))
