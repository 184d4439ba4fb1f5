"""What quantization does to the operands of a training step: per role, the
fraction of elements clipped at the format's largest value, flushed to zero,
of MX blocks whose largest element clips, the relative error, and what the
quantized backward matmuls do to the gradients (their projection on the fp32
gradient: 1 is unbiased in scale, < 1 shrinks it).

    with lowp.torch.stats.QuantStats() as st:
        loss = model(x) ...; loss.backward()
    st.summary()   # {role: {...}}

Only quantizers called while a QuantStats is open are measured; the cost is
a few extra passes over each operand and one fp32 copy of each backward
matmul, so sample a step now and then.
"""

import math

import torch

_STACK = []

# Element formats of the MX block formats: (largest finite, floor(log2 largest)).
_MX_ELEMENTS = {
    "mxfp8_e4m3": (448.0, 8), "mxfp8_e5m2": (57344.0, 15), "mxfp6_e3m2": (28.0, 4),
    "mxfp6_e2m3": (7.5, 2), "mxfp4": (6.0, 2), "mxint8": (127.0 / 64.0, 0),
}


def active():
    return bool(_STACK)


def _role_of(name):
    if not name:
        return "operand"
    parts = name.rsplit(" ", 1)
    return parts[1] if len(parts) == 2 else parts[0]


def _mx_scale(amax, fmt, rule):
    """The block scale X (a power of two) under the floor or rceil rule, or None."""
    largest, emax = _MX_ELEMENTS[fmt]
    if rule == "floor":
        _, e = torch.frexp(amax)              # amax = m 2^e, m in [0.5, 1)
        return torch.ldexp(torch.ones_like(amax), e - 1 - emax)
    if rule == "rceil":
        # 2^ceil(log2 r): e when r = m 2^e is not a power of two, else e - 1.
        m, e = torch.frexp(amax / largest)
        e = torch.where(m == 0.5, e - 1, e)
        return torch.ldexp(torch.ones_like(amax), e)
    return None


class QuantStats:
    """Collects statistics of every lowp.torch quantization made while open
    (a context manager; nested ones all collect)."""

    def __init__(self, by_layer=False):
        """by_layer: keep each layer's operands apart ("h.0.mlp.c_fc input")
        instead of pooling all layers per role."""
        self.by_layer = by_layer
        self.roles = {}
        self.grads = {}

    def __enter__(self):
        _STACK.append(self)
        return self

    def __exit__(self, *exc):
        _STACK.remove(self)
        return False

    def _acc(self, table, key):
        return table.setdefault(key, {})

    def add_operand(self, role, values):
        acc = self._acc(self.roles, role)
        for k, v in values.items():
            acc[k] = acc.get(k, 0.0) + v

    def add_grad(self, which, g_fp32, g_quant):
        a = g_fp32.double().reshape(-1)
        b = g_quant.double().reshape(-1)
        aa = float(a @ a)
        if aa == 0.0:
            return
        acc = self._acc(self.grads, which)
        acc["proj"] = acc.get("proj", 0.0) + float(a @ b) / aa
        acc["cos"] = acc.get("cos", 0.0) + float(a @ b) / math.sqrt(aa * max(float(b @ b), 1e-300))
        acc["rel_err"] = acc.get("rel_err", 0.0) + float((b - a).norm()) / math.sqrt(aa)
        acc["count"] = acc.get("count", 0) + 1

    def summary(self):
        """{role: {clipped, flushed, blocks_clipped, rel_err}} as fractions,
        and {"grad_input"/"grad_weight": {proj, cos, rel_err}} as means over
        the layers and steps measured."""
        out = {}
        for role, a in self.roles.items():
            n, nz = max(a.get("elements", 0), 1), max(a.get("nonzero", 0), 1)
            row = {"elements": int(a.get("elements", 0)),
                   "flushed": a.get("flushed", 0) / nz,
                   "rel_err": math.sqrt(a.get("err2", 0) / max(a.get("sq", 0), 1e-300))}
            if "blocks" in a:
                row["clipped"] = a.get("clipped", 0) / n
                row["blocks_clipped"] = a.get("blocks_clipped", 0) / max(a["blocks"], 1)
            out[role] = row
        for which, a in self.grads.items():
            c = max(a["count"], 1)
            out[which] = {k: a[k] / c for k in ("proj", "cos", "rel_err")}
        return out


def record(spec, x, q, axis, name):
    x = x.detach().to(torch.float32)
    q = q.detach().to(torch.float32)
    nz = x != 0
    values = {"elements": x.numel(), "nonzero": int(nz.sum()),
              "flushed": int(((q == 0) & nz).sum()),
              "err2": float(((q - x).double() ** 2).sum()), "sq": float((x.double() ** 2).sum())}
    fmt = spec.format
    if (fmt in _MX_ELEMENTS and spec.scale_rule in ("floor", "rceil") and spec.tile is None
            and x.dim() >= 1 and x.numel()):
        xt = x.movedim(axis, -1)
        k = xt.shape[-1]
        pad = (-k) % 32
        if pad:
            xt = torch.nn.functional.pad(xt, (0, pad))
        blocks = xt.reshape(-1, 32).abs()
        amax = blocks.amax(-1, keepdim=True)
        live = amax[:, 0] > 0
        blocks, amax = blocks[live], amax[live]
        scale = _mx_scale(amax, fmt, spec.scale_rule)
        largest = _MX_ELEMENTS[fmt][0]
        over = blocks / scale > largest
        values.update(blocks=int(live.sum()), clipped=int(over.sum()),
                      blocks_clipped=int(over.any(-1).sum()))
    for st in _STACK:
        st.add_operand(name if st.by_layer and name else _role_of(name), values)


def record_grad(which, g_fp32, g_quant, layer=None):
    for st in _STACK:
        st.add_grad(f"{layer} {which}" if st.by_layer and layer else which, g_fp32, g_quant)
