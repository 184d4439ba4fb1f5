"""Fake quantization of torch tensors through lowp's C++ ops (torch.ops.lowp.*)."""

import torch

_SCALE_RULES = ("floor", "rceil", "ceil", "even")
_ROUNDINGS = ("rne", "away", "zero", "stochastic")


def _check_tensor(x, what):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lowp.torch.{what}: expected a torch.Tensor, got {type(x).__name__}")


def fake_quant(x, format, axis=-1, scale_rule="floor", rounding="rne", seed=0, saturate=False):
    """Quantizes `x` to `format` and back: a tensor of the same shape and dtype.

    x: a CPU float32 or bfloat16 tensor (bfloat16 is computed in fp32 and the
       result rounded back to bfloat16).
    format: any lowp format name. Scalar formats (fp8_e4m3, fp8_e5m2, fp6_e3m2,
       fp4_e2m1, int8, e3m4, ...) are a plain cast; `axis` and `scale_rule` do
       not apply. Block formats (mxfp8_e4m3, mxfp8_e5m2, mxfp6_e3m2,
       mxfp6_e2m3, mxfp4, mxint8, nvfp4, mx:<element>:<k>) share a scale per
       block of k consecutive elements along `axis`.
    scale_rule: MX shared-scale rule: floor (OCP), rceil (NVIDIA), ceil, even.
    rounding: rne, away, zero or stochastic. Stochastic rounding depends only
       on `seed` and each element's position, never on the thread count.
    saturate: scalar formats only: clamp overflow to the largest finite value
       instead of Inf/NaN (block formats always saturate).

    The values are bit for bit those of `lowp fake-quant` on the same array.
    The result carries no gradient (see lowp.torch.Linear for training).
    Raises ValueError for an unknown format, rounding or scale rule, or an
    axis out of range; TypeError for a dtype other than float32/bfloat16 or a
    tensor that is not on the CPU.
    """
    _check_tensor(x, "fake_quant")
    return torch.ops.lowp.fake_quant(x.detach(), str(format), int(axis), str(scale_rule),
                                     str(rounding), int(seed), bool(saturate))


def format_max(format):
    """The largest finite value of a scalar format (448.0 for fp8_e4m3)."""
    return torch.ops.lowp.format_max(str(format))


def fake_quant_per_tensor(x, format, rounding="rne", seed=0, name=None):
    """Per-tensor scaled cast, as in FP8 training recipes ("dynamic" scaling):
    s = max_finite(format) / amax(x) from the tensor's current largest
    magnitude, y = fake_quant(x * s, format, saturate=True) / s. An all-zero
    (or empty) tensor gets s = 1. A tensor holding Inf or NaN has no scale:
    ValueError, naming the tensor by `name` when given (lowp.torch.Linear
    passes its name and the operand's role, e.g. "h.0.mlp.c_fc grad_output").
    """
    _check_tensor(x, "fake_quant_per_tensor")
    x = x.detach()
    amax = x.abs().max().to(torch.float32) if x.numel() else torch.tensor(0.0)
    if not torch.isfinite(amax):
        what = f"tensor {name!r}" if name else "the tensor"
        raise ValueError(f"lowp.torch.fake_quant_per_tensor: {what} holds Inf or NaN "
                         f"(amax {amax.item()}): no per-tensor {format} scale")
    limit = format_max(format)
    if amax > 0:
        scale = (limit / amax).to(torch.float32)
    else:
        scale = torch.tensor(1.0)
    xf = x.to(torch.float32)
    q = torch.ops.lowp.fake_quant(xf * scale, str(format), -1, "floor", str(rounding), int(seed),
                                  True)
    return (q / scale).to(x.dtype)
