"""Quantization specs for lowp.torch's linear layers: how each operand of each
matmul is quantized, in the spirit of microxcaling's mx_specs, and the named
training recipes."""

import itertools
import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch

from .ops import fake_quant, fake_quant_per_tensor, fake_quant_tiles, format_max
from . import stats as _stats

SAME = "same"  # LinearSpec.grad_output_tokens: the grad_output spec
_SR_CALLS = itertools.count()


def reset_stochastic_stream(start=0):
    """Restarts the counter that gives each stochastically rounded quantization
    its own seed (QuantSpec.seed + counter), e.g. to replay a step exactly."""
    global _SR_CALLS
    _SR_CALLS = itertools.count(start)


@dataclass(frozen=True)
class QuantSpec:
    """How one matmul operand is quantized.

    format: a lowp format name. A block format (mxfp8_e4m3, mxfp6_e3m2, mxfp4,
        nvfp4, mx:<element>:<k>, ...) puts its blocks along the reduction
        dimension of the matmul the operand enters; a scalar format is a plain
        cast, or a scaled cast with per_tensor, history or tile.
    per_tensor: scale the tensor by max_finite(format) / amax first and cast
        with saturation ("current" scaling of FP8 training); scalar formats.
    history: delayed scaling: the scale comes from the largest amax of this
        operand's last `history` uses (before this one) instead of the current
        amax; values beyond it saturate. Needs the state a lowp.torch.Linear
        keeps; per_tensor must be set. history_reduce "max" or "recent" (the
        newest amax only).
    tile: fine-grained scaling (DeepSeek-V3's FP8, NVFP4's 2-D weight blocks):
        one fp32 scale max_finite / amax per tile of (rows, cols) elements,
        cols along the reduction dimension, rows across it; e.g. (1, 128) for
        activations and (128, 128) for weights. format "nvfp4" with a tile
        gives NVFP4's two-level scale per tile (E4M3 tile scale x fp32 tensor
        scale) instead of 1 x 16 blocks. 2-D operands only.
    saturate: plain scalar casts only: clamp overflow to the largest finite
        value (the static casts of unit scaling) instead of Inf/NaN.
    scale_rule, rounding, seed: as in lowp.torch.fake_quant. With rounding
        "stochastic" every call draws fresh bits: its seed is seed plus a
        process-wide call counter (reset_stochastic_stream()).
    """
    format: str
    per_tensor: bool = False
    scale_rule: str = "floor"
    rounding: str = "rne"
    seed: int = 0
    history: int = 0
    history_reduce: str = "max"
    tile: Optional[Tuple[int, int]] = None
    saturate: bool = False

    def _seed(self):
        if self.rounding != "stochastic":
            return self.seed
        return (self.seed + next(_SR_CALLS) * 0x9E3779B97F4A7C15) & 0x7FFFFFFFFFFFFFFF

    def __call__(self, x, axis, name=None, state=None):
        """x quantized with this spec; `axis` is the reduction dimension; `name`
        names x in errors and statistics; `state` is the dict where delayed
        scaling keeps its amax history (one per operand)."""
        seed = self._seed()
        if self.tile is not None:
            q = fake_quant_tiles(x, self.format, axis, self.tile, self.rounding, seed, name)
        elif self.history:
            q = _delayed(self, x, state, name, seed)
        elif self.per_tensor:
            q = fake_quant_per_tensor(x, self.format, self.rounding, seed, name)
        else:
            q = fake_quant(x, self.format, axis, self.scale_rule, self.rounding, seed,
                           self.saturate)
        if _stats.active():
            _stats.record(self, x, q, axis, name)
        return q


def _delayed(spec, x, state, name, seed):
    if not spec.per_tensor:
        raise ValueError("lowp.torch: delayed scaling (history) needs per_tensor=True")
    if spec.history_reduce not in ("max", "recent"):
        raise ValueError(f"lowp.torch: history_reduce is 'max' or 'recent', not "
                         f"{spec.history_reduce!r}")
    x = x.detach()
    amax_now = x.abs().max().to(torch.float32) if x.numel() else torch.tensor(0.0)
    if not torch.isfinite(amax_now):
        what = f"tensor {name!r}" if name else "the tensor"
        raise ValueError(f"lowp.torch: {what} holds Inf or NaN (amax {amax_now.item()}): "
                         f"no delayed {spec.format} scale")
    hist = None if state is None else state.setdefault(name or "operand", [])
    if hist:
        amax = max(hist) if spec.history_reduce == "max" else hist[-1]
    else:
        amax = amax_now.item()  # the first use: nothing recorded yet
    if hist is not None:
        hist.append(amax_now.item())
        del hist[:-spec.history]
    scale = torch.tensor(format_max(spec.format) / amax if amax > 0 else 1.0,
                         dtype=torch.float32)
    xf = x.to(torch.float32)
    q = torch.ops.lowp.fake_quant(xf * scale, str(spec.format), -1, "floor", str(spec.rounding),
                                  int(seed), True)
    return (q / scale).to(x.dtype)


ROLES = ("weight", "input", "grad_output", "grad_output_tokens", "weight_bwd", "input_bwd")


@dataclass(frozen=True)
class LinearSpec:
    """Per-role specs of a quantized linear layer y = x W^T + b (None: fp32).

    Forward (reduction over in_features):
        weight       W  [out, in], blocks along in
        input        x  [N, in],   blocks along in
    Backward, grad_input = dy W (reduction over out_features):
        grad_output  dy [N, out],  blocks along out
        weight_bwd   W  [out, in], blocks along out
    Backward, grad_weight = dy^T x (reduction over the N tokens):
        grad_output_tokens  dy [N, out],  blocks along N ("same": grad_output)
        input_bwd           x  [N, in],   blocks along N
    wgrad_hadamard: k > 0 multiplies dy and x along the tokens by the same
        random orthogonal k x k Hadamard transform (H D / sqrt(k), D random
        signs from hadamard_seed) before they are quantized for grad_weight
        (NVFP4 training's random Hadamard transform); dy^T x is unchanged in
        exact arithmetic, the outliers are spread over k tokens.
    accumulator: a lowp.torch.Accumulator: all three matmuls sum their
        products in that accumulator (lowp.torch.matmul_acc: a narrow
        significand, truncation, fp32 promotion every P products) instead of
        torch.matmul; an emulation, about 30x slower than torch.matmul.
    The quantizers are straight-through: the gradient of a quantized operand
    is taken to be the gradient of the operand. The backward matmuls quantize
    the original fp32 x and W (not their forward-quantized copies). The bias
    and its gradient stay in full precision.
    """
    weight: Optional[QuantSpec] = None
    input: Optional[QuantSpec] = None
    grad_output: Optional[QuantSpec] = None
    weight_bwd: Optional[QuantSpec] = None
    input_bwd: Optional[QuantSpec] = None
    name: str = "custom"
    grad_output_tokens: object = SAME
    wgrad_hadamard: int = 0
    hadamard_seed: int = 0
    accumulator: object = None

    def role(self, role):
        """The QuantSpec (or None) of a role, "same" resolved."""
        spec = getattr(self, role)
        return self.grad_output if role == "grad_output_tokens" and spec == SAME else spec

    def is_identity(self):
        return (all(self.role(r) is None for r in ROLES) and not self.wgrad_hadamard
                and self.accumulator is None)


def _uniform(name, forward, backward_grad, per_tensor=False, **kw):
    fwd = QuantSpec(forward, per_tensor=per_tensor, **kw)
    grad = QuantSpec(backward_grad, per_tensor=per_tensor, **kw)
    return LinearSpec(weight=fwd, input=fwd, grad_output=grad, weight_bwd=fwd, input_bwd=fwd,
                      name=name)


def _tiled(name, fmt, grad_fmt, act_tile, weight_tile, grad_rounding="rne", **kw):
    act = QuantSpec(fmt, tile=act_tile)
    wt = QuantSpec(fmt, tile=weight_tile)
    grad = QuantSpec(grad_fmt, tile=act_tile, rounding=grad_rounding)
    return LinearSpec(weight=wt, input=act, grad_output=grad, weight_bwd=wt, input_bwd=act,
                      name=name, **kw)


def _with_grad_rounding(spec, rounding, name):
    g = replace(spec.grad_output, rounding=rounding)
    return replace(spec, grad_output=g, name=name)


# The named recipes. Weights and activations keep their forward format when
# they enter the backward matmuls; gradients take the backward format. The MX
# recipes with 8- and 6-bit elements use the rceil scale rule (the block's
# largest value never clips; docs/training.md measures why), the MXFP4 ones the
# OCP floor rule (better for E2M1 in the same measurements); "<recipe>/floor"
# or "<recipe>/rceil" selects the other.
RCEIL = {"scale_rule": "rceil"}
RECIPES = {
    "fp32": LinearSpec(name="fp32"),
    # MX paper / microxcaling: E4M3 weights and activations, E5M2 gradients.
    "mxfp8": _uniform("mxfp8", "mxfp8_e4m3", "mxfp8_e5m2", **RCEIL),
    # E4M3 for every operand, gradients included (NVIDIA's MXFP8 pre-training recipe).
    "mxfp8-e4m3": _uniform("mxfp8-e4m3", "mxfp8_e4m3", "mxfp8_e4m3", **RCEIL),
    # The MX paper's sub-8-bit training: E3M2 for every operand.
    "mxfp6": _uniform("mxfp6", "mxfp6_e3m2", "mxfp6_e3m2", **RCEIL),
    # The other FP6 element: E2M3 for every operand.
    "mxfp6-e2m3": _uniform("mxfp6-e2m3", "mxfp6_e2m3", "mxfp6_e2m3", **RCEIL),
    # E2M3 weights and activations (the finer grid), E3M2 gradients (the wider
    # range): the split mxfp8 makes between E4M3 and E5M2.
    "mxfp6-hybrid": _uniform("mxfp6-hybrid", "mxfp6_e2m3", "mxfp6_e3m2", **RCEIL),
    # E2M1 for every operand.
    "mxfp4": _uniform("mxfp4", "mxfp4", "mxfp4"),
    # FP8 with per-tensor scales from the current amax: E4M3 forward, E5M2 gradients.
    "fp8-dynamic": _uniform("fp8-dynamic", "fp8_e4m3", "fp8_e5m2", per_tensor=True),
    # Delayed scaling (Transformer Engine's default): the scale from the largest
    # amax of the last 16 uses of each operand.
    "fp8-delayed": _uniform("fp8-delayed", "fp8_e4m3", "fp8_e5m2", per_tensor=True,
                            history=16),
    # DeepSeek-V3's fine-grained FP8: E4M3 everywhere, 1 x 128 tiles for
    # activations and gradients, 128 x 128 for weights, fp32 scales.
    "fp8-blockwise": _tiled("fp8-blockwise", "fp8_e4m3", "fp8_e4m3", (1, 128), (128, 128)),
    # NVFP4 training (NVIDIA 2025): 1 x 16 blocks with E4M3 scales and an fp32
    # tensor scale, 16 x 16 blocks for weights, stochastic rounding of the
    # gradients, a 16-point random Hadamard transform on the grad_weight inputs.
    "nvfp4": _tiled("nvfp4", "nvfp4", "nvfp4", (1, 16), (16, 16), grad_rounding="stochastic",
                    wgrad_hadamard=16),
}
RECIPES["fp8-current"] = replace(RECIPES["fp8-dynamic"], name="fp8-current")
RECIPES["mxfp4-sr"] = _with_grad_rounding(RECIPES["mxfp4"], "stochastic", "mxfp4-sr")


def recipe(spec):
    """A LinearSpec from a recipe name, a LinearSpec (returned as is) or None (fp32).

    A name may carry a role ablation, "<recipe>:<role>[+<role>...]": only
    those roles quantized (e.g. "mxfp8:grad_output_tokens"), and an MX scale
    rule, "<recipe>/<rule>" (e.g. "mxfp8/rceil")."""
    if spec is None:
        return RECIPES["fp32"]
    if isinstance(spec, LinearSpec):
        return spec
    if isinstance(spec, str):
        base, rule = spec, None
        if "/" in base:
            base, rule = base.split("/", 1)
        base, roles = (base.split(":", 1) + [None])[:2]
        if base not in RECIPES:
            raise ValueError(f"lowp.torch: unknown recipe {base!r} (expected one of "
                             f"{', '.join(RECIPES)} or a LinearSpec)")
        out = RECIPES[base]
        if roles is not None:
            keep = roles.split("+")
            bad = [r for r in keep if r not in ROLES]
            if bad:
                raise ValueError(f"lowp.torch: unknown role {bad[0]!r} in {spec!r} (roles: "
                                 f"{', '.join(ROLES)})")
            out = replace(out, **{r: (out.role(r) if r in keep else None) for r in ROLES})
        if rule is not None:
            out = with_options(out, scale_rule=rule)
        return replace(out, name=spec) if out.name != spec else out
    raise TypeError(f"lowp.torch: a spec is a recipe name or a LinearSpec, not "
                    f"{type(spec).__name__}")


def with_options(spec, scale_rule=None, rounding=None, seed=None):
    """A copy of a recipe or LinearSpec whose every quantizer uses the given
    scale rule, rounding and/or seed (None: unchanged)."""
    spec = recipe(spec)
    if scale_rule is not None and scale_rule not in ("floor", "rceil", "ceil", "even"):
        raise ValueError(f"lowp.torch: unknown scale rule {scale_rule!r} (floor, rceil, ceil, "
                         "even)")
    changes = {k: v for k, v in (("scale_rule", scale_rule), ("rounding", rounding),
                                 ("seed", seed)) if v is not None}
    roles = {}
    for r in ROLES:
        s = getattr(spec, r)
        roles[r] = s if s is None or s == SAME else replace(s, **changes)
    return replace(spec, **roles)
