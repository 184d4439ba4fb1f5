"""Matrix products summed in a narrow accumulator (torch.ops.lowp.matmul_acc).

    import lowp.torch as lt

    acc = lt.Accumulator(mantissa_bits=13, promote_every=128, rounding="zero")
    y = lt.matmul_acc(x, w, acc)        # x [..., K] @ w[N, K]^T, like F.linear without bias

Each product of a and b is exact; the products are added in order of
ascending k into a partial sum rounded after every addition to a float with
`mantissa_bits` explicit significand bits and fp32's exponent range, by
`rounding` ("rne": nearest, ties to even; "zero": truncation). With
promote_every = P > 0, every P products (and after the last) the partial sum
is added into an fp32 total (nearest-even) and restarts at zero; 0 never
promotes. Accumulator() (23 bits, rne, no promotion) is the sequential fp32
loop s = fma(a, b, s). The full model is in include/lowp/accum_kernels.h;
docs/accumulation.md measures it on the embedded model.
"""

from dataclasses import dataclass

import torch

_ROUNDINGS = ("rne", "zero")


@dataclass(frozen=True)
class Accumulator:
    """An accumulator: significand width, rounding of each addition, and the
    number of products between promotions to fp32 (0: never)."""

    mantissa_bits: int = 23
    promote_every: int = 0
    rounding: str = "rne"

    def __post_init__(self):
        for name in ("mantissa_bits", "promote_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"lowp.torch.Accumulator: {name} must be an int, "
                                f"got {type(value).__name__}")
        if not 1 <= self.mantissa_bits <= 23:
            raise ValueError(f"lowp.torch.Accumulator: mantissa_bits {self.mantissa_bits} is out "
                             "of range: 1..23 (23 is fp32's)")
        if self.promote_every < 0:
            raise ValueError(f"lowp.torch.Accumulator: promote_every {self.promote_every} is "
                             "negative (0: never promote)")
        if not isinstance(self.rounding, str):
            raise TypeError(f"lowp.torch.Accumulator: rounding must be a str, "
                            f"got {type(self.rounding).__name__}")
        if self.rounding not in _ROUNDINGS:
            raise ValueError(f"lowp.torch.Accumulator: rounding {self.rounding!r} is not "
                             f"supported: one of {', '.join(_ROUNDINGS)}")

    def __str__(self):
        promote = f", promote every {self.promote_every}" if self.promote_every else ""
        return f"e8m{self.mantissa_bits} {self.rounding}{promote}"


def matmul_acc(a, b, acc=None):
    """a [..., K] times b [N, K] transposed: a tensor [..., N] (float32, CPU),
    each sum kept in the accumulator `acc` (default Accumulator(): fp32).

    Carries no gradient. Raises TypeError for a non-tensor, a dtype other than
    float32, a tensor not on the CPU or an `acc` that is not an Accumulator;
    ValueError for mismatched shapes (b must be 2-D with b.shape[1] ==
    a.shape[-1]).
    """
    if acc is None:
        acc = Accumulator()
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"lowp.torch.matmul_acc: {name} must be a torch.Tensor, "
                            f"got {type(t).__name__}")
        if t.dtype != torch.float32:
            raise TypeError(f"lowp.torch.matmul_acc: {name} must be float32, got {t.dtype}")
        if t.device.type != "cpu":
            raise TypeError(f"lowp.torch.matmul_acc: {name} must be on the CPU, got {t.device}")
    if not isinstance(acc, Accumulator):
        raise TypeError(f"lowp.torch.matmul_acc: acc must be a lowp.torch.Accumulator, "
                        f"got {type(acc).__name__}")
    if a.dim() < 1:
        raise ValueError("lowp.torch.matmul_acc: a must have at least one dimension [..., K]")
    if b.dim() != 2:
        raise ValueError(f"lowp.torch.matmul_acc: b must be [N, K], got shape {tuple(b.shape)}")
    if a.shape[-1] != b.shape[1]:
        raise ValueError(f"lowp.torch.matmul_acc: a's last dimension ({a.shape[-1]}) differs "
                         f"from b's K ({b.shape[1]}); shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return torch.ops.lowp.matmul_acc(a.detach(), b.detach(), acc.mantissa_bits,
                                     acc.promote_every, acc.rounding)
