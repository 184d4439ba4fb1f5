"""Quantization specs for lowp.torch's linear layers: how each operand of each
matmul is quantized, in the spirit of microxcaling's mx_specs, and the named
training recipes."""

from dataclasses import dataclass, replace
from typing import Optional

from .ops import fake_quant, fake_quant_per_tensor


@dataclass(frozen=True)
class QuantSpec:
    """How one matmul operand is quantized.

    format: a lowp format name. A block format (mxfp8_e4m3, mxfp6_e3m2, mxfp4,
        nvfp4, mx:<element>:<k>, ...) puts its blocks along the reduction
        dimension of the matmul the operand enters; a scalar format is a plain
        cast, or a per-tensor scaled cast when per_tensor is set.
    per_tensor: scale the tensor by max_finite(format) / amax first (the
        "dynamic" scaling of FP8 training); scalar formats only.
    scale_rule, rounding, seed: as in lowp.torch.fake_quant.
    """
    format: str
    per_tensor: bool = False
    scale_rule: str = "floor"
    rounding: str = "rne"
    seed: int = 0

    def __call__(self, x, axis, name=None):
        """x quantized with this spec; `axis` is the reduction dimension; `name`
        names x in errors."""
        if self.per_tensor:
            return fake_quant_per_tensor(x, self.format, self.rounding, self.seed, name)
        return fake_quant(x, self.format, axis, self.scale_rule, self.rounding, self.seed)


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
        grad_output  dy [N, out],  blocks along N
        input_bwd    x  [N, in],   blocks along N
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

    def is_identity(self):
        return all(s is None for s in (self.weight, self.input, self.grad_output,
                                       self.weight_bwd, self.input_bwd))


def _uniform(name, forward, backward_grad, per_tensor=False):
    fwd = QuantSpec(forward, per_tensor=per_tensor)
    grad = QuantSpec(backward_grad, per_tensor=per_tensor)
    return LinearSpec(weight=fwd, input=fwd, grad_output=grad, weight_bwd=fwd, input_bwd=fwd,
                      name=name)


# The named recipes. Weights and activations keep their forward format when
# they enter the backward matmuls; gradients take the backward format.
RECIPES = {
    "fp32": LinearSpec(name="fp32"),
    # MX paper / microxcaling: E4M3 weights and activations, E5M2 gradients.
    "mxfp8": _uniform("mxfp8", "mxfp8_e4m3", "mxfp8_e5m2"),
    # The MX paper's sub-8-bit training: E3M2 for every operand.
    "mxfp6": _uniform("mxfp6", "mxfp6_e3m2", "mxfp6_e3m2"),
    # E2M1 for every operand.
    "mxfp4": _uniform("mxfp4", "mxfp4", "mxfp4"),
    # FP8 with per-tensor scales from the current amax: E4M3 forward, E5M2 gradients.
    "fp8-dynamic": _uniform("fp8-dynamic", "fp8_e4m3", "fp8_e5m2", per_tensor=True),
}


def recipe(spec):
    """A LinearSpec from a recipe name, a LinearSpec (returned as is) or None (fp32)."""
    if spec is None:
        return RECIPES["fp32"]
    if isinstance(spec, LinearSpec):
        return spec
    if isinstance(spec, str):
        if spec not in RECIPES:
            raise ValueError(f"lowp.torch: unknown recipe {spec!r} (expected one of "
                             f"{', '.join(RECIPES)} or a LinearSpec)")
        return RECIPES[spec]
    raise TypeError(f"lowp.torch: a spec is a recipe name or a LinearSpec, not "
                    f"{type(spec).__name__}")


def with_options(spec, scale_rule=None, rounding=None, seed=None):
    """A copy of a recipe or LinearSpec whose every quantizer uses the given
    scale rule, rounding and/or seed (None: unchanged)."""
    spec = recipe(spec)
    changes = {k: v for k, v in (("scale_rule", scale_rule), ("rounding", rounding),
                                 ("seed", seed)) if v is not None}
    roles = {r: (None if getattr(spec, r) is None else replace(getattr(spec, r), **changes))
             for r in ("weight", "input", "grad_output", "weight_bwd", "input_bwd")}
    return replace(spec, **roles)
