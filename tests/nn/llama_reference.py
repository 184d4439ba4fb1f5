#!/usr/bin/python3
"""Float64 plain-torch reference forward for Hugging Face Llama-family checkpoints.

    llama_reference.py MODEL_DIR --tokens IDS [--out LOGITS.npy] [--eval] [--top K]

MODEL_DIR holds config.json and model.safetensors (or model.safetensors.index.json
with its shards); tensors stored as F32, F16, BF16 or F64 are upcast to float64
and the whole forward runs in float64. IDS is a JSON file holding a list of
token ids, or the ids inline ("1,2,3" or "[1,2,3]"); they occupy positions
0..n-1. --out saves the logits [n, vocab_size] as a float64 .npy; --eval prints
as JSON the mean cross-entropy (nats/token) of ids[1:] given their prefixes;
--top K (default 5 when neither --out nor --eval) prints each position's top-K
ids and logits.

The forward is LlamaForCausalLM's (transformers): embed_tokens; per layer
x += o_proj(attn(input_layernorm(x))), x += down_proj(silu(gate_proj(h)) *
up_proj(h)) with h = post_attention_layernorm(x); final norm; lm_head. RMSNorm
is x * rsqrt(mean(x^2) + eps) * weight; RoPE in the rotate_half convention
(inv_freq = theta^(-2i/d), cos/sin of pos * inv_freq concatenated twice); causal
softmax attention with scale 1/sqrt(head_dim). Also handled:
  * GQA / MQA (num_key_value_heads < num_attention_heads), explicit head_dim;
  * biases wherever the checkpoint has them (q/k/v for Qwen2, which always has
    them; o_proj with attention_bias; MLP with mlp_bias); a bias the config
    requires but the checkpoint lacks is an error;
  * Qwen3's per-head q_norm / k_norm (RMSNorm over head_dim, before RoPE);
  * rope_scaling {"rope_type"|"type": "linear" | "llama3" | "default"};
  * tied embeddings (tie_word_embeddings, or lm_head.weight absent).
By default cos/sin are computed in float64; --rope-fp32 computes inv_freq and
pos * inv_freq in float32 as transformers does, then cos/sin.

Independent of lowp (and of transformers): needs python3-torch and python3-numpy.
Exit 2 on a usage or input error, with one line on stderr.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

SUPPORTED = {"llama", "mistral", "qwen2", "qwen3"}


def fail(msg):
    print(f"llama_reference: {msg}", file=sys.stderr)
    sys.exit(2)


# ------------------------------------------------------------------ loading

def _read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = blob[base + a:base + b]
        dt, shape = info["dtype"], info["shape"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F64":
            arr = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def load_checkpoint(model_dir):
    """(config dict, {name: float64 tensor})."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        weights = _read_safetensors(single)
    elif os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        weights = {}
        for s in shards:
            weights.update(_read_safetensors(os.path.join(model_dir, s)))
    else:
        raise ValueError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    return cfg, weights


# ------------------------------------------------------------------ forward

def inv_freq(cfg, head_dim, fp32=False):
    theta = float(cfg.get("rope_theta", 10000.0))
    dt = torch.float32 if fp32 else torch.float64
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(dt) / head_dim))
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / float(rs["factor"])
    if kind == "llama3":
        factor = float(rs["factor"])
        low, high = float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
        old = float(rs["original_max_position_embeddings"])
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        out = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, out)
    raise ValueError(f"rope_scaling type {kind!r} is not supported (linear, llama3, default)")


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(cfg, W, ids, rope_fp32=False):
    """Logits [n, vocab] (float64 tensor) for token ids at positions 0..n-1."""
    mt = cfg.get("model_type", "llama")
    if mt not in SUPPORTED:
        raise ValueError(f"model_type {mt!r} is not supported ({', '.join(sorted(SUPPORTED))})")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {cfg['hidden_act']!r} is not supported (silu)")
    E = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H
    D = cfg.get("head_dim") or E // H
    L = cfg["num_hidden_layers"]
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    n = len(ids)
    if cfg.get("use_sliding_window") and cfg.get("sliding_window") and n > cfg["sliding_window"]:
        raise ValueError("sequences longer than the sliding window are not supported")
    if H % KV:
        raise ValueError(f"num_attention_heads {H} is not a multiple of num_key_value_heads {KV}")
    vocab = cfg["vocab_size"]
    if any(t < 0 or t >= vocab for t in ids):
        raise ValueError(f"token id out of range [0, {vocab})")

    def w(name):
        if name not in W:
            raise ValueError(f"tensor {name} missing from the checkpoint")
        return W[name]

    def linear(x, prefix, need_bias=False):
        y = x @ w(prefix + ".weight").T
        b = W.get(prefix + ".bias")
        if b is None and need_bias:
            raise ValueError(f"tensor {prefix}.bias missing (the config requires biases)")
        return y if b is None else y + b

    qkv_bias = mt == "qwen2" or bool(cfg.get("attention_bias", False))
    o_bias = mt != "qwen2" and bool(cfg.get("attention_bias", False))
    mlp_bias = bool(cfg.get("mlp_bias", False))

    inv = inv_freq(cfg, D, rope_fp32)
    pos = torch.arange(n, dtype=inv.dtype)
    ang = torch.outer(pos, inv)
    emb = torch.cat((ang, ang), dim=-1).to(torch.float64)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((n, n), float("-inf"), dtype=torch.float64).triu(1)

    x = w("model.embed_tokens.weight")[torch.tensor(ids, dtype=torch.long)]
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w(p + "input_layernorm.weight"), eps)
        q = linear(h, p + "self_attn.q_proj", qkv_bias).view(n, H, D)
        k = linear(h, p + "self_attn.k_proj", qkv_bias).view(n, KV, D)
        v = linear(h, p + "self_attn.v_proj", qkv_bias).view(n, KV, D)
        if p + "self_attn.q_norm.weight" in W or mt == "qwen3":
            q = rms_norm(q, w(p + "self_attn.q_norm.weight"), eps)
            k = rms_norm(k, w(p + "self_attn.k_norm.weight"), eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, n, D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D) + mask, dim=-1)
        y = (att @ v).transpose(0, 1).reshape(n, H * D)
        x = x + linear(y, p + "self_attn.o_proj", o_bias)
        h = rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        g = linear(h, p + "mlp.gate_proj", mlp_bias)
        u = linear(h, p + "mlp.up_proj", mlp_bias)
        x = x + linear(torch.nn.functional.silu(g) * u, p + "mlp.down_proj", mlp_bias)
    x = rms_norm(x, w("model.norm.weight"), eps)
    tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in W
    head = w("model.embed_tokens.weight") if tied else W["lm_head.weight"]
    return x @ head.T


def parse_ids(arg):
    if os.path.exists(arg):
        with open(arg) as f:
            ids = json.load(f)
    else:
        s = arg.strip()
        ids = json.loads(s) if s.startswith("[") else [int(t) for t in s.split(",") if t.strip()]
    if not isinstance(ids, list) or not ids or not all(isinstance(t, int) for t in ids):
        raise ValueError("--tokens: expected a non-empty list of integer ids")
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--tokens", required=True, help="JSON file of ids, or ids inline")
    ap.add_argument("--out", help="save logits [n, vocab] as float64 .npy")
    ap.add_argument("--eval", action="store_true", help="print the mean cross-entropy of ids[1:]")
    ap.add_argument("--top", type=int, default=None, help="print each position's top-K logits")
    ap.add_argument("--rope-fp32", action="store_true",
                    help="inv_freq and pos*inv_freq in float32, as transformers computes them")
    args = ap.parse_args()
    try:
        ids = parse_ids(args.tokens)
        cfg, W = load_checkpoint(args.model_dir)
        with torch.no_grad():
            logits = forward(cfg, W, ids, args.rope_fp32)
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as e:
        fail(str(e))
    if args.out:
        np.save(args.out, logits.numpy())
    if args.eval:
        if len(ids) < 2:
            fail("--eval needs at least 2 ids")
        lp = torch.log_softmax(logits[:-1], dim=-1)
        nll = -lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
        print(json.dumps({"tokens": len(ids) - 1, "nats_per_token": nll.mean().item()}))
    top = args.top if args.top is not None else (5 if not (args.out or args.eval) else 0)
    for i in range(len(ids)) if top else ():
        v, j = torch.topk(logits[i], min(top, logits.shape[1]))
        print(json.dumps({"pos": i, "id": ids[i], "top": [[int(a), round(float(b), 6)]
                                                           for a, b in zip(j, v)]}))


if __name__ == "__main__":
    main()
