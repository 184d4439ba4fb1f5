"""A unit-scaled CharLM for static-scale FP8 training (muS, "µnit Scaling",
Narayan et al. 2025): every hidden linear layer runs its matmuls in FP8 with
scale 1 -- no amax, no history -- because weights, activations and gradients
are kept near unit variance by construction:

  * hidden linear layers hold W ~ N(0, 1) and compute y = (x W^T) / sqrt(fan_in)
    (a static multiplier applied after the FP8 matmul, in fp32);
  * each residual branch is normalized after the branch (res-post-LayerNorm)
    and mixed with a fixed variance-preserving weight:
        x <- sqrt(1 - tau) x + sqrt(tau) LN(f(x)),   tau = UnitConfig.tau;
  * the loss gradient is scaled statically by the tokens per step (the
    cross-entropy sum instead of the mean in the backward pass), so the
    gradients entering the FP8 E5M2 casts are O(1); the optimizer sees the
    mean's gradient (the scale is divided out before clipping);
  * Adam's learning rate for a unit-scaled weight is the base rate times
    sqrt(fan_in), which gives the same updates relative to the weight as the
    standard parametrization's base rate.

The embeddings, the LayerNorms, the attention (softmax, q k^T, att v) and the
output head stay fp32, as in the paper, which casts the hidden linear layers
only. Inputs and weights are cast to E4M3, gradients to E5M2, with
saturation (lowp.torch.QuantSpec(saturate=True)).

The tau value and the 1/sqrt(d_head) attention scale are this module's
choices, not taken from the paper.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

import lowp.torch as lt

try:
    from . import charlm
except ImportError:  # run as a script
    import charlm

UNIT_FP8 = lt.LinearSpec(
    weight=lt.QuantSpec("fp8_e4m3", saturate=True),
    input=lt.QuantSpec("fp8_e4m3", saturate=True),
    grad_output=lt.QuantSpec("fp8_e5m2", saturate=True),
    weight_bwd=lt.QuantSpec("fp8_e4m3", saturate=True),
    input_bwd=lt.QuantSpec("fp8_e4m3", saturate=True),
    name="unit-fp8")


@dataclass
class UnitConfig(charlm.Config):
    """CharLM's shape (tied_head is not used) and the residual mix tau."""
    tau: float = 0.2


class UnitLinear(nn.Module):
    """y = Q(x) Q(W)^T / sqrt(fan_in) + b with W ~ N(0, 1): the quantized
    matmul of lowp.torch with a static output multiplier."""

    def __init__(self, fan_in, fan_out, spec, bias=True, name=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in))
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None
        self.spec = lt.recipe(spec)
        self.alpha = 1.0 / math.sqrt(fan_in)
        self.name = name
        self.unit_scaled = True

    def forward(self, x):
        y = lt.quantized_linear(x, self.weight, None, self.spec, self.name) * self.alpha
        return y if self.bias is None else y + self.bias


class UnitBlock(nn.Module):
    def __init__(self, cfg, spec, i):
        super().__init__()
        d = cfg.d_model
        self.n_head = cfg.n_head
        self.c_attn = UnitLinear(d, 3 * d, spec, name=f"h.{i}.attn.c_attn")
        self.c_proj = UnitLinear(d, d, spec, name=f"h.{i}.attn.c_proj")
        self.c_fc = UnitLinear(d, cfg.d_ff, spec, name=f"h.{i}.mlp.c_fc")
        self.c_proj2 = UnitLinear(cfg.d_ff, d, spec, name=f"h.{i}.mlp.c_proj")
        self.ln_attn = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.ln_mlp = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.keep = math.sqrt(1.0 - cfg.tau)
        self.mix = math.sqrt(cfg.tau)
        mask = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)

    def attn(self, x):
        return self.c_proj(charlm.causal_self_attention(self.c_attn(x), self.n_head, self.mask))

    def forward(self, x):
        x = self.keep * x + self.mix * self.ln_attn(self.attn(x))
        return self.keep * x + self.mix * self.ln_mlp(self.c_proj2(F.gelu(self.c_fc(x))))


class UnitCharLM(nn.Module):
    """CharLM's shape (byte vocabulary, learned positions, n_layer blocks of
    attention and GELU MLP) with unit scaling; `spec` is the hidden layers'
    lowp.torch spec (UNIT_FP8 for the muS recipe, "fp32" for its baseline)."""

    def __init__(self, cfg: UnitConfig, spec=UNIT_FP8):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)   # N(0, 1)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.h = nn.ModuleList([UnitBlock(cfg, spec, i) for i in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = (self.wte(idx) + self.wpe(pos)) / math.sqrt(2.0)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def param_groups(self, lr, weight_decay):
        """AdamW groups: unit-scaled weights at lr * sqrt(fan_in) (decay
        weight_decay / sqrt(fan_in)),
        the other matrices at lr (with decay), vectors at lr (no decay)."""
        groups = {}
        for m in self.modules():
            if getattr(m, "unit_scaled", False):
                fan_in = m.weight.shape[1]
                groups.setdefault(fan_in, []).append(m.weight)
        unit = {id(p) for ps in groups.values() for p in ps}
        rest = [p for p in self.parameters() if id(p) not in unit]
        # AdamW decays by lr * weight_decay per step: dividing the decay by the
        # lr multiplier keeps the relative decay of the standard parametrization.
        out = [{"params": ps, "lr_scale": math.sqrt(fan_in),
                "weight_decay": weight_decay / math.sqrt(fan_in)}
               for fan_in, ps in sorted(groups.items())]
        out.append({"params": [p for p in rest if p.dim() >= 2], "lr_scale": 1.0,
                    "weight_decay": weight_decay})
        out.append({"params": [p for p in rest if p.dim() < 2], "lr_scale": 1.0,
                    "weight_decay": 0.0})
        for g in out:
            g["lr"] = lr * g["lr_scale"]
        return out
