"""Random Hugging Face model directories for the runtime's tests: config.json
and safetensors written with numpy alone, one per supported family and
option (GQA, biases, q/k norms, a head_dim of its own, tied heads, RoPE
scaling, GPT-2's Conv1D layout and "transformer." prefix, shards, F16/BF16).

make_model(directory, family, **options) returns the config dict."""

import json
import os
import struct

import numpy as np


def _bf16_bytes(a):
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # nearest even
    return rounded.astype(np.uint16).tobytes()


def write_safetensors(path, tensors, dtype="F32"):
    """tensors: {name: float array}; stored in dtype F32, F16 or BF16."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        if dtype == "F32":
            blob = a.astype("<f4").tobytes()
        elif dtype == "F16":
            blob = a.astype("<f2").tobytes()
        elif dtype == "BF16":
            blob = _bf16_bytes(a)
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def _llama_tensors(cfg, rng, family):
    d, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    h, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dh = cfg.get("head_dim", d // h)
    w = lambda *s: (rng.standard_normal(s) * 0.3 / np.sqrt(s[-1])).astype(np.float32)
    norm = lambda n: (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    bias = lambda n: (0.1 * rng.standard_normal(n)).astype(np.float32)
    t = {"model.embed_tokens.weight": rng.standard_normal((v, d)).astype(np.float32)}
    qkv_bias = family == "qwen2" or cfg.get("attention_bias", False)
    o_bias = family != "qwen2" and cfg.get("attention_bias", False)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(d)
        t[p + "self_attn.q_proj.weight"] = w(h * dh, d)
        t[p + "self_attn.k_proj.weight"] = w(kv * dh, d)
        t[p + "self_attn.v_proj.weight"] = w(kv * dh, d)
        if qkv_bias:
            t[p + "self_attn.q_proj.bias"] = bias(h * dh)
            t[p + "self_attn.k_proj.bias"] = bias(kv * dh)
            t[p + "self_attn.v_proj.bias"] = bias(kv * dh)
        t[p + "self_attn.o_proj.weight"] = w(d, h * dh)
        if o_bias:
            t[p + "self_attn.o_proj.bias"] = bias(d)
        if family == "qwen3":
            t[p + "self_attn.q_norm.weight"] = norm(dh)
            t[p + "self_attn.k_norm.weight"] = norm(dh)
        t[p + "post_attention_layernorm.weight"] = norm(d)
        t[p + "mlp.gate_proj.weight"] = w(ff, d)
        t[p + "mlp.up_proj.weight"] = w(ff, d)
        t[p + "mlp.down_proj.weight"] = w(d, ff)
    t["model.norm.weight"] = norm(d)
    if not cfg.get("tie_word_embeddings", False):
        t["lm_head.weight"] = w(v, d)
    return t


def _gpt2_tensors(cfg, rng, prefix):
    d, v, n = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    ff = cfg.get("n_inner") or 4 * d
    w = lambda *s: (rng.standard_normal(s) * 0.3 / np.sqrt(s[0])).astype(np.float32)
    vec = lambda n_, s=0.1, o=0.0: (o + s * rng.standard_normal(n_)).astype(np.float32)
    t = {prefix + "wte.weight": rng.standard_normal((v, d)).astype(np.float32),
         prefix + "wpe.weight": (0.3 * rng.standard_normal((n, d))).astype(np.float32)}
    for i in range(cfg["n_layer"]):
        p = f"{prefix}h.{i}."
        t[p + "ln_1.weight"] = vec(d, 0.1, 1.0)
        t[p + "ln_1.bias"] = vec(d)
        t[p + "attn.c_attn.weight"] = w(d, 3 * d)  # Conv1D: [in, out]
        t[p + "attn.c_attn.bias"] = vec(3 * d)
        t[p + "attn.c_proj.weight"] = w(d, d)
        t[p + "attn.c_proj.bias"] = vec(d)
        t[p + "ln_2.weight"] = vec(d, 0.1, 1.0)
        t[p + "ln_2.bias"] = vec(d)
        t[p + "mlp.c_fc.weight"] = w(d, ff)
        t[p + "mlp.c_fc.bias"] = vec(ff)
        t[p + "mlp.c_proj.weight"] = w(ff, d)
        t[p + "mlp.c_proj.bias"] = vec(d)
        # the causal-mask buffer old checkpoints carry
        t[p + "attn.bias"] = np.tril(np.ones((n, n), np.float32))[None, None]
    t[prefix + "ln_f.weight"] = vec(d, 0.1, 1.0)
    t[prefix + "ln_f.bias"] = vec(d)
    return t


def make_model(directory, family, seed=0, dtype="F32", shards=1, **options):
    """Writes a random model of `family` (llama, mistral, qwen2, qwen3, gpt2)
    into `directory`; options override config keys (e.g. num_key_value_heads,
    head_dim, tie_word_embeddings, rope_scaling, attention_bias,
    gpt2_prefix="transformer.")."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    prefix = options.pop("gpt2_prefix", "transformer.")
    if family == "gpt2":
        cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64,
               "n_layer": 2, "n_head": 4, "n_positions": 64, "vocab_size": 300,
               "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
               "bos_token_id": 0, "eos_token_id": 0}
    else:
        arch = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[family]
        cfg = {"architectures": [arch], "model_type": family, "hidden_size": 64,
               "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2,
               "num_hidden_layers": 2, "vocab_size": 300, "max_position_embeddings": 128,
               "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu",
               "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2}
        if family == "qwen3":
            cfg["head_dim"] = 32
        if family == "mistral":
            cfg["sliding_window"] = 4096
    cfg.update(options)
    tensors = (_gpt2_tensors(cfg, rng, prefix) if family == "gpt2"
               else _llama_tensors(cfg, rng, family))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = list(tensors)
    if shards == 1:
        write_safetensors(os.path.join(directory, "model.safetensors"), tensors, dtype)
    else:
        weight_map = {}
        for s in range(shards):
            part = names[s::shards]
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(os.path.join(directory, fname), {n: tensors[n] for n in part}, dtype)
            weight_map.update({n: fname for n in part})
        with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return cfg
