"""Fake quantization of torch tensors through lowp's C++ ops (torch.ops.lowp.*)."""

import math

import torch

_SCALE_RULES = ("floor", "rceil", "ceil", "even")
_ROUNDINGS = ("rne", "away", "zero", "stochastic")


def _check_tensor(x, what):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"lowp.torch.{what}: expected a torch.Tensor, got {type(x).__name__}")


def fake_quant(x, format, axis=-1, scale_rule="floor", rounding="rne", seed=0, saturate=False,
               out=None):
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
    out: a contiguous CPU tensor of x's dtype and shape, not overlapping x, to
       receive the result (returned); by default a new tensor.

    The values are bit for bit those of `lowp fake-quant` on the same array.
    The result carries no gradient (see lowp.torch.Linear for training).
    Raises ValueError for an unknown format, rounding or scale rule, or an
    axis out of range; TypeError for a dtype other than float32/bfloat16 or a
    tensor that is not on the CPU.
    """
    _check_tensor(x, "fake_quant")
    args = (x.detach(), str(format), int(axis), str(scale_rule), str(rounding), int(seed),
            bool(saturate))
    if out is None:
        return torch.ops.lowp.fake_quant(*args)
    _check_tensor(out, "fake_quant")
    return torch.ops.lowp.fake_quant.out(*args, out=out)


# Symmetric integers wider than lowp's formats (which stop at 8 bits), for
# integer training with per-tensor scales: format -> largest code.
_WIDE_INTS = {"int16_sym": 32767, "int12_sym": 2047}


def format_max(format):
    """The largest finite value of a scalar format (448.0 for fp8_e4m3)."""
    if format in _WIDE_INTS:
        return float(_WIDE_INTS[format])
    return torch.ops.lowp.format_max(str(format))


def _wide_int_per_tensor(x, format, name):
    """Per-tensor symmetric integer quantization for int12_sym/int16_sym:
    s = qmax / amax, codes round(x s) to nearest-even (exact: |x s| <= qmax <
    2^24), result codes / s."""
    xf = x.to(torch.float32)
    amax = xf.abs().max() if xf.numel() else torch.tensor(0.0)
    if not torch.isfinite(amax):
        what = f"tensor {name!r}" if name else "the tensor"
        raise ValueError(f"lowp.torch.fake_quant_per_tensor: {what} holds Inf or NaN "
                         f"(amax {amax.item()}): no per-tensor {format} scale")
    qmax = float(_WIDE_INTS[format])
    scale = (qmax / amax).to(torch.float32) if amax > 0 else torch.tensor(1.0)
    codes = torch.clamp(torch.round(xf * scale), -qmax, qmax)
    return (codes / scale).to(x.dtype)


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
    if format in _WIDE_INTS:
        return _wide_int_per_tensor(x, format, name)
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


def _tile_view(x, axis, tile):
    """x (2-D) with the reduction axis last, zero-padded to whole tiles and
    viewed as [R/tr, tr, K/tc, tc]; returns (view, unpad) where unpad maps a
    tensor of the view's shape back to x's layout."""
    if x.dim() != 2:
        raise ValueError(f"lowp.torch: tile scaling needs a 2-D operand, got {x.dim()}-D")
    tr, tc = (int(t) for t in tile)
    if tr < 1 or tc < 1:
        raise ValueError(f"lowp.torch: tile {tile} must be positive")
    axis = axis % 2
    xt = x if axis == 1 else x.t()
    r, k = xt.shape
    pr, pk = (-r) % tr, (-k) % tc
    xp = torch.nn.functional.pad(xt, (0, pk, 0, pr)) if pr or pk else xt
    v = xp.reshape((r + pr) // tr, tr, (k + pk) // tc, tc)

    def unpad(t):
        t = t.reshape(r + pr, k + pk)[:r, :k]
        return (t if axis == 1 else t.t()).contiguous()
    return v, unpad


def nvfp4_tensor_scale(x):
    """NVFP4's second-level (per-tensor, fp32) scale: amax / (6 * 448)."""
    amax = x.detach().abs().max().to(torch.float32) if x.numel() else torch.tensor(0.0)
    return amax / 2688.0


def fake_quant_tiles(x, format, axis, tile, rounding="rne", seed=0, name=None):
    """Fine-grained scaled cast: one fp32 scale max_finite(format) / amax per
    tile of (rows, cols) elements of the 2-D tensor x, cols along `axis` (the
    reduction dimension), cast with saturation; as DeepSeek-V3's FP8 recipe
    ((1, 128) activations, (128, 128) weights). format "nvfp4" instead gives
    each tile NVFP4's two-level scale: the tile's amax / 6 relative to the fp32
    tensor scale amax / 2688, rounded to E4M3 and clamped to [2^-6, 448], and
    E2M1 elements; with tile (1, 16) this is fake_quant(x, "nvfp4", axis)
    value for value. A tensor holding Inf or NaN raises ValueError.

    One pass of lowp's tile kernels (torch.ops.lowp.fake_quant_tiles,
    lowp/tile_kernels.h) on the CPU, bit for bit the torch operations of
    _fake_quant_tiles_reference (the definition), stochastic rounding
    included: element (r, c) of x turned so that `axis` is last draws its
    random bits at r * Kp + c, Kp the axis length rounded up to whole tiles
    (its index in the reference's zero-padded tile view). Errors are the
    reference's own (it runs when the op refuses the input)."""
    _check_tensor(x, "fake_quant_tiles")
    try:
        tr, tc = (int(t) for t in tile)
    except (TypeError, ValueError):
        tr = tc = 0
    if x.dim() == 2 and tr >= 1 and tc >= 1 and x.device.type == "cpu":
        try:
            q = torch.ops.lowp.fake_quant_tiles(x.detach().to(torch.float32), str(format),
                                                int(axis) % 2, tr, tc, str(rounding), int(seed))
        except ValueError:
            q = None  # a bad format or rounding, Inf or NaN: the reference's error
        if q is not None:
            return q.to(x.dtype)
    return _fake_quant_tiles_reference(x, format, axis, tile, rounding, seed, name)


def _fake_quant_tiles_reference(x, format, axis, tile, rounding="rne", seed=0, name=None):
    """fake_quant_tiles in torch operations over a zero-padded tile view: the
    definition that the C++ op must match bit for bit (tests/python)."""
    _check_tensor(x, "fake_quant_tiles")
    xd = x.detach().to(torch.float32)
    if xd.numel() and not torch.isfinite(xd).all():
        what = f"tensor {name!r}" if name else "the tensor"
        raise ValueError(f"lowp.torch.fake_quant_tiles: {what} holds Inf or NaN: no {format} "
                         "tile scales")
    v, unpad = _tile_view(xd, axis, tile)
    amax = v.abs().amax(dim=(1, 3), keepdim=True)
    if format == "nvfp4":
        ts = nvfp4_tensor_scale(xd)
        rel = (amax / 6.0) / ts
        rel = torch.where(rel >= 2.0 ** -6, rel,
                          torch.where(rel > 448.0, torch.tensor(448.0), torch.tensor(2.0 ** -6)))
        rel = torch.clamp(rel, max=448.0)
        rel = torch.ops.lowp.fake_quant(rel.contiguous(), "fp8_e4m3", -1, "floor", "rne", 0, True)
        total = ts * rel
        ok = (total > 0) & torch.isfinite(total)
        safe = torch.where(ok, total, torch.ones_like(total))
        e = torch.clamp(v / safe, -6.0, 6.0).contiguous()
        code = torch.ops.lowp.fake_quant(e, "fp4_e2m1", -1, "floor", str(rounding), int(seed), True)
        q = torch.where(ok, code * safe, torch.zeros_like(code))
    else:
        limit = format_max(format)
        scale = torch.where(amax > 0, limit / amax, torch.ones_like(amax))
        c = torch.ops.lowp.fake_quant((v * scale).contiguous(), str(format), -1, "floor",
                                      str(rounding), int(seed), True)
        q = c / scale
    return unpad(q).to(x.dtype)


def hadamard_matrix(k, seed=0):
    """A k x k orthogonal matrix H D / sqrt(k): Sylvester's Hadamard matrix
    times random signs D drawn from `seed` (k a power of two)."""
    if k < 1 or k & (k - 1):
        raise ValueError(f"lowp.torch: a Hadamard size is a power of two, not {k}")
    h = torch.ones(1, 1)
    while h.shape[0] < k:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    g = torch.Generator().manual_seed(int(seed))
    signs = torch.randint(0, 2, (k,), generator=g).to(torch.float32) * 2 - 1
    return h * signs / math.sqrt(k)


def hadamard_rows(x, k, seed=0):
    """x [N, C] with each group of k consecutive rows (zero-padded at the end)
    multiplied by hadamard_matrix(k, seed): a rotation along axis 0."""
    n = x.shape[0]
    pad = (-n) % k
    xp = torch.nn.functional.pad(x, (0, 0, 0, pad)) if pad else x
    m = hadamard_matrix(k, seed).to(x.dtype)
    return torch.einsum("ij,gjc->gic", m, xp.reshape(-1, k, x.shape[1])).reshape(-1, x.shape[1])
