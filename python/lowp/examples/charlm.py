"""The small byte-level GPT that lowp's runtime (src/nn) executes.

Pure PyTorch, no lowp import: the embedded-model training script
(scripts/train_kjv.py) and the MX training example share this definition, and
the C++ runtime follows it operation for operation.

Architecture (decoder-only, GPT-2 style):
  tokens are bytes (vocab 256); x = wte[tok] + wpe[pos]
  per block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    attn: qkv = c_attn(h) (q, k, v concatenated in that order along the
          output), n_head heads, causal softmax(q k^T / sqrt(d_head)) v, c_proj
    mlp:  c_proj(gelu(c_fc(h)))   (exact erf GELU)
  logits = lm_head(ln_f(x))  (lm_head has no bias; when tied, its weight is
          wte.weight, one parameter, and the checkpoint has no lm_head.weight)
LayerNorm eps 1e-5. Linear weights are [out, in] as in nn.Linear.

Tensor names in the checkpoint (safetensors, fp32):
  wte.weight [vocab, d]  wpe.weight [n_ctx, d]
  h.{i}.ln_1.{weight,bias}  h.{i}.attn.c_attn.{weight,bias} [3d, d]
  h.{i}.attn.c_proj.{weight,bias} [d, d]  h.{i}.ln_2.{weight,bias}
  h.{i}.mlp.c_fc.{weight,bias} [d_ff, d]  h.{i}.mlp.c_proj.{weight,bias} [d, d_ff]
  ln_f.{weight,bias}  lm_head.weight [vocab, d] (untied only)
The safetensors __metadata__ holds the hyperparameters as strings:
  "lowp.arch": "gpt", "vocab_size", "n_ctx", "d_model", "n_head", "n_layer",
  "d_ff", "tied_head" ("0"/"1"), "ln_eps".
"""

import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 256
    n_ctx: int = 128
    d_model: int = 128
    n_head: int = 4
    n_layer: int = 5
    d_ff: int = 512
    tied_head: bool = False
    ln_eps: float = 1e-5

    def metadata(self):
        m = {"lowp.arch": "gpt"}
        for k, v in asdict(self).items():
            m[k] = str(int(v)) if isinstance(v, bool) else str(v)
        return m


class Attention(nn.Module):
    def __init__(self, cfg, linear=nn.Linear):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = linear(cfg.d_model, 3 * cfg.d_model)
        self.c_proj = linear(cfg.d_model, cfg.d_model)
        mask = torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool))
        self.register_buffer("mask", mask, persistent=False)
        # The attention products q k^T and att v: torch.matmul unless a module
        # taking (a, b) is set here (lowp.torch.Matmul for quantized attention).
        self.qk_matmul = None
        self.av_matmul = None

    def forward(self, x):
        return self.c_proj(causal_self_attention(self.c_attn(x), self.n_head, self.mask,
                                                 self.qk_matmul, self.av_matmul))


def causal_self_attention(qkv, n_head, mask, qk_matmul=None, av_matmul=None):
    """Causal multi-head attention of CharLM: qkv [b, t, 3d] holds q, k, v
    concatenated along the last axis; softmax(q k^T / sqrt(d_head)) v with
    the future masked by `mask` (a [n_ctx, n_ctx] lower-triangular bool);
    returns [b, t, d], the heads concatenated (before the output projection).
    qk_matmul, av_matmul: what computes q k^T and att v (None: torch.matmul)."""
    b, t, d3 = qkv.shape
    d = d3 // 3
    q, k, v = qkv.split(d, dim=2)
    hd = d // n_head
    q = q.view(b, t, n_head, hd).transpose(1, 2)
    k = k.view(b, t, n_head, hd).transpose(1, 2)
    v = v.view(b, t, n_head, hd).transpose(1, 2)
    att = (qk_matmul or torch.matmul)(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
    att = att.masked_fill(~mask[:t, :t], float("-inf"))
    att = F.softmax(att, dim=-1)
    return (av_matmul or torch.matmul)(att, v).transpose(1, 2).contiguous().view(b, t, d)


class Mlp(nn.Module):
    def __init__(self, cfg, linear=nn.Linear):
        super().__init__()
        self.c_fc = linear(cfg.d_model, cfg.d_ff)
        self.c_proj = linear(cfg.d_ff, cfg.d_model)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg, linear=nn.Linear):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.attn = Attention(cfg, linear)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.mlp = Mlp(cfg, linear)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CharLM(nn.Module):
    """`linear` lets a caller build the model from another Linear class
    (e.g. lowp.torch.Linear) with the same parameter names."""

    def __init__(self, cfg: Config, linear=nn.Linear):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.h = nn.ModuleList([Block(cfg, linear) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        if cfg.tied_head:
            # A `linear` like the others (so that a quantized Linear class, or
            # lowp.torch.convert, quantizes the output projection too) whose
            # weight is wte's. Built without drawing from the random generator,
            # and kept out of state_dict: a tied model initialises and saves as
            # if it had no head of its own.
            with torch.random.fork_rng(devices=[]):
                self.lm_head = linear(cfg.d_model, cfg.vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight
            self._register_state_dict_hook(_drop_tied_head)
            self._register_load_state_dict_pre_hook(_check_tied_head)
        else:
            self.lm_head = linear(cfg.d_model, cfg.vocab_size, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def _drop_tied_head(module, state_dict, prefix, local_metadata):
    state_dict.pop(prefix + "lm_head.weight", None)  # it is wte.weight, saved under that name


def _check_tied_head(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                     error_msgs):
    key = prefix + "lm_head.weight"
    if key in state_dict:
        error_msgs.append(f"Unexpected key {key!r}: the head is tied to {prefix}wte.weight.")
    elif prefix + "wte.weight" in state_dict:
        state_dict[key] = state_dict[prefix + "wte.weight"]


def load_kjv(val_first_book, who):
    """The King James Bible as (train, val) bytes: `bible -f gen1:1-rev22:21`
    (Debian bible-kjv) with each verse's reference stripped, one verse per line;
    the validation split starts at the book abbreviated `val_first_book` (as
    bible prints it, e.g. "Rom", "Heb") and runs to the end. Errors name `who`."""
    import re
    import subprocess

    try:
        out = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], check=True,
                             stdout=subprocess.PIPE).stdout.decode("ascii")
    except FileNotFoundError:
        raise SystemExit(f"{who}: the `bible` program is missing (Debian: apt-get install bible-kjv)")
    ref = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
    train, val = [], []
    dest = train
    for line in out.splitlines():
        if not line.strip():
            continue
        m = ref.match(line)
        if not m:
            raise SystemExit(f"{who}: unexpected line from bible: {line[:60]!r}")
        if m.group(1) == val_first_book:
            dest = val
        dest.append(m.group(4).strip() + "\n")
    if not val:
        raise SystemExit(f"{who}: the validation book {val_first_book!r} was not found in bible's output")
    return "".join(train).encode("ascii"), "".join(val).encode("ascii")


def save_safetensors(model: CharLM, path):
    """Writes the model's parameters (fp32, little-endian) as safetensors."""
    import json
    import struct

    tensors = {k: v.detach().to(torch.float32).contiguous().cpu()
               for k, v in model.state_dict().items()}
    header = {"__metadata__": model.cfg.metadata()}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        t = tensors[name]
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path, linear=nn.Linear):
    """Reads a checkpoint written by save_safetensors (or by lowp) into a CharLM."""
    import json
    import struct

    import numpy as np

    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    cfg = Config(**{k: (type(getattr(Config, k))(float(meta[k])) if k != "tied_head"
                        else meta[k] == "1")
                    for k in Config.__dataclass_fields__ if k in meta})
    model = CharLM(cfg, linear)
    state = {}
    base = 8 + n
    for name, info in header.items():
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(info["shape"])
        state[name] = torch.from_numpy(arr.copy())
    model.load_state_dict(state)
    return model
