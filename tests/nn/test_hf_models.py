"""The runtime on the model families people ship, against a float64 numpy
implementation of each written here from Hugging Face's definitions
(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM,
GPT2LMHeadModel), on random model directories (hf_fixtures.py) covering GQA,
q/k/v biases, Qwen3's q/k norms and head_dim, tied heads, RoPE scaling
(linear, llama3), GPT-2's Conv1D layout with and without the "transformer."
prefix, shards and F16/BF16 storage. Then each directory goes through
`lowp quantize DIR -o X.gguf -f fp32` (llama.cpp's layout: q/k interleaved for
llama) and must give the same logits back from the GGUF; and bad directories
fail with one line naming the file and key.

Env: LOWP (the CLI), LOWP_GPT_LOGITS (lowp_gpt_logits)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import hf_fixtures  # noqa: E402

LOWP = os.environ["LOWP"]
LOGITS = os.environ["LOWP_GPT_LOGITS"]
TOLERANCE = 1e-4  # max |lowp - ref| / max |ref|


def load_safetensors(directory):
    out = {}
    files = [f for f in os.listdir(directory) if f.endswith(".safetensors")]
    for name in files:
        with open(os.path.join(directory, name), "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            data = f.read()
        for k, v in header.items():
            if k == "__metadata__":
                continue
            a, b = v["data_offsets"]
            raw = data[a:b]
            if v["dtype"] == "F32":
                arr = np.frombuffer(raw, "<f4")
            elif v["dtype"] == "F16":
                arr = np.frombuffer(raw, "<f2")
            else:  # BF16
                arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            out[k] = arr.astype(np.float64).reshape(v["shape"])
    return out


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def layer_norm(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def inv_freq(cfg, dh):
    f = 1.0 / cfg.get("rope_theta", 10000.0) ** (np.arange(0, dh, 2) / dh)
    s = cfg.get("rope_scaling")
    if not s:
        return f
    kind = s.get("rope_type", s.get("type"))
    if kind == "linear":
        return f / s["factor"]
    assert kind == "llama3"
    old, lo, hi, fac = (s["original_max_position_embeddings"], s["low_freq_factor"],
                        s["high_freq_factor"], s["factor"])
    wl = 2 * np.pi / f
    out = np.where(wl > old / lo, f / fac, f)
    smooth = (old / wl - lo) / (hi - lo)
    medium = ~(wl < old / hi) & ~(wl > old / lo)
    return np.where(medium, (1 - smooth) * out / fac + smooth * out, out)


def attention(q, k, v):
    """q [h, n, dh], k/v [h, n, dh] (already repeated for GQA)."""
    n, dh = q.shape[1], q.shape[2]
    s = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
    s = s + np.triu(np.full((n, n), -np.inf), 1)
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    return s @ v


def llama_logits(cfg, t, ids, family):
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", h)
    dh = cfg.get("head_dim", d // h)
    eps = cfg["rms_norm_eps"]
    n = len(ids)
    x = t["model.embed_tokens.weight"][ids]
    ang = np.arange(n)[:, None] * inv_freq(cfg, dh)[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))

    def rope(a):  # [heads, n, dh]
        half = dh // 2
        rot = np.concatenate([-a[..., half:], a[..., :half]], -1)
        return a * cos + rot * sin

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        g = lambda name: t.get(p + name)
        hh = rms(x, g("input_layernorm.weight"), eps)
        proj = lambda name, a: a @ g(name + ".weight").T + (g(name + ".bias") if g(name + ".bias") is not None else 0)
        q = proj("self_attn.q_proj", hh).reshape(n, h, dh).transpose(1, 0, 2)
        k = proj("self_attn.k_proj", hh).reshape(n, kv, dh).transpose(1, 0, 2)
        v = proj("self_attn.v_proj", hh).reshape(n, kv, dh).transpose(1, 0, 2)
        if family == "qwen3":
            q = rms(q, g("self_attn.q_norm.weight"), eps)
            k = rms(k, g("self_attn.k_norm.weight"), eps)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, h // kv, 0), np.repeat(v, h // kv, 0)
        a = attention(q, k, v).transpose(1, 0, 2).reshape(n, h * dh)
        x = x + proj("self_attn.o_proj", a)
        hh = rms(x, g("post_attention_layernorm.weight"), eps)
        gate, up = proj("mlp.gate_proj", hh), proj("mlp.up_proj", hh)
        x = x + proj("mlp.down_proj", gate / (1 + np.exp(-gate)) * up)
    x = rms(x, t["model.norm.weight"], eps)
    head = t["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else t["lm_head.weight"]
    return x @ head.T


def gpt2_logits(cfg, t, ids):
    pre = "transformer." if "transformer.wte.weight" in t else ""
    d, h = cfg["n_embd"], cfg["n_head"]
    dh, n, eps = d // h, len(ids), cfg["layer_norm_epsilon"]
    x = t[pre + "wte.weight"][ids] + t[pre + "wpe.weight"][:n]
    gelu = lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))
    for i in range(cfg["n_layer"]):
        p = f"{pre}h.{i}."
        g = lambda name: t[p + name]
        hh = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"), eps)
        qkv = hh @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(n, h, dh).transpose(1, 0, 2) for j in range(3))
        a = attention(q, k, v).transpose(1, 0, 2).reshape(n, d)
        x = x + a @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        hh = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"), eps)
        x = x + gelu(hh @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias")) @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = layer_norm(x, t[pre + "ln_f.weight"], t[pre + "ln_f.bias"], eps)
    return x @ t[pre + "wte.weight"].T


def lowp_logits(model, ids, tmp, tag):
    text = os.path.join(tmp, f"{tag}.bin")
    with open(text, "wb") as f:
        f.write(bytes(ids))
    out = os.path.join(tmp, f"{tag}.npy")
    subprocess.run([LOGITS, model, text, out, "--length", str(len(ids))], check=True)
    return np.load(out).astype(np.float64)


CASES = [
    ("llama", dict()),
    ("llama", dict(num_key_value_heads=4, tie_word_embeddings=True, attention_bias=True)),
    ("llama", dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 32}, rope_theta=500000.0)),
    ("llama", dict(rope_scaling={"type": "linear", "factor": 4.0}, num_key_value_heads=1)),
    ("mistral", dict(dtype="F16")),
    ("qwen2", dict(tie_word_embeddings=True, shards=3, dtype="BF16")),
    ("qwen3", dict()),
    ("gpt2", dict()),
    ("gpt2", dict(gpt2_prefix="", shards=2)),
]


def main():
    rng = np.random.default_rng(7)
    ids = [int(i) for i in rng.integers(0, 256, size=40)]
    tmp = tempfile.mkdtemp()
    try:
        for n, (family, opts) in enumerate(CASES):
            d = os.path.join(tmp, f"m{n}")
            cfg = hf_fixtures.make_model(d, family, seed=n, **opts)
            t = load_safetensors(d)
            want = gpt2_logits(cfg, t, ids) if family == "gpt2" else llama_logits(cfg, t, ids, family)
            got = lowp_logits(d, ids, tmp, f"m{n}")
            err = np.abs(got - want).max() / np.abs(want).max()
            label = f"{family} {opts}"
            print(f"{label}: relative error {err:.3g}")
            assert err <= TOLERANCE, f"{label}: relative error {err:.3g} > {TOLERANCE}"
            # Through llama.cpp's GGUF layout and back.
            gguf = os.path.join(tmp, f"m{n}.gguf")
            subprocess.run([LOWP, "quantize", d, "-o", gguf, "-f", "fp32", "--quiet"], check=True)
            back = lowp_logits(gguf, ids, tmp, f"m{n}g")
            gerr = np.abs(back - got).max() / np.abs(got).max()
            print(f"  GGUF export: relative difference {gerr:.3g}")
            assert gerr <= 1e-6, f"{label}: GGUF export changed the logits by {gerr:.3g}"
        check_cli(tmp)
        check_errors(tmp)
    finally:
        shutil.rmtree(tmp)


def check_cli(tmp):
    """report, generate and bench llama on a directory and on its GGUF export."""
    d = os.path.join(tmp, "cli")
    hf_fixtures.make_model(d, "llama", seed=11)
    gguf = os.path.join(tmp, "cli.gguf")
    subprocess.run([LOWP, "quantize", d, "-o", gguf, "-f", "q8_0", "--quiet"], check=True)
    text = os.path.join(tmp, "text.txt")
    with open(text, "w") as f:
        f.write("In the beginning God created the heaven and the earth. " * 6)
    reports = {}
    for name, model in (("dir", d), ("gguf", gguf)):
        r = subprocess.run([LOWP, "report", model, "--text", text, "--formats", "fp32,q8_0,mxfp4",
                            "--json", "--no-svg", "--threads", "2", "--ctx", "64"],
                           capture_output=True, text=True, check=True)
        reports[name] = json.loads(r.stdout)
        rows = reports[name]["rows"]
        assert [row["format"] for row in rows] == ["fp32", "q8_0", "mxfp4"], rows
        for row in rows:
            assert np.isfinite(row["bits_per_byte"]) and row["tokens"] > 0, row
        print(f"report on the {name}: " + ", ".join(
            f"{row['format']} {row['bits_per_byte']:.4f} bits/byte" for row in rows))
    # The byte tokenizer: one token per byte, every window predicted from BOS-less
    # windows of 64 tokens.
    assert reports["dir"]["rows"][0]["tokens"] == reports["gguf"]["rows"][0]["tokens"]
    # The GGUF holds Q8_0 matrices (the token embedding too, as llama.cpp
    # quantizes it): its fp32 row runs the dequantized file, and re-packing
    # that in lowp's q8_0 (ggml's rule) gives the same codes, so the same loss.
    gguf_fp32 = reports["gguf"]["rows"][0]["bits_per_byte"]
    gguf_q8 = reports["gguf"]["rows"][1]["bits_per_byte"]
    assert gguf_q8 == gguf_fp32, (gguf_q8, gguf_fp32)
    dir_q8 = reports["dir"]["rows"][1]["bits_per_byte"]
    assert abs(dir_q8 - gguf_fp32) <= 1e-3 * abs(dir_q8), (dir_q8, gguf_fp32)
    for model in (d, gguf):
        r = subprocess.run([LOWP, "generate", model, "In the", "-n", "8", "--temperature", "0"],
                           capture_output=True, check=True)
        assert r.stdout.startswith(b"In the"), r.stdout
        r = subprocess.run([LOWP, "bench", "llama", model, "--prompt", "16", "--decode", "4",
                            "--reps", "1", "--json"], capture_output=True, text=True, check=True)
        assert json.loads(r.stdout)["decode_tokens_per_second"] > 0


def run_err(args):
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode != 0, f"{args} succeeded"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def check_errors(tmp):
    """Bad directories: one line naming the file and the key or tensor."""
    text = os.path.join(tmp, "t.bin")
    with open(text, "wb") as f:
        f.write(b"abcdef")

    def model_with(name, family, edit=None, **opts):
        d = os.path.join(tmp, name)
        hf_fixtures.make_model(d, family, **opts)
        if edit:
            edit(d)
        return d

    def edit_config(**kv):
        def f(d):
            path = os.path.join(d, "config.json")
            cfg = json.load(open(path))
            for k, v in kv.items():
                if v is None:
                    cfg.pop(k, None)
                else:
                    cfg[k] = v
            json.dump(cfg, open(path, "w"))
        return f

    out = os.path.join(tmp, "e.npy")
    cases = [
        (model_with("e1", "llama", edit_config(architectures=["MixtralForCausalLM"])),
         "architecture 'MixtralForCausalLM' is not supported"),
        (model_with("e2", "llama", edit_config(num_local_experts=8)),
         "mixture-of-experts models are not supported"),
        (model_with("e3", "llama", edit_config(rope_scaling={"rope_type": "yarn", "factor": 4.0})),
         "rope_scaling type 'yarn' is not supported"),
        (model_with("e4", "llama", edit_config(hidden_size=None)), "key 'hidden_size' is missing"),
        (model_with("e5", "llama", edit_config(intermediate_size=128)),
         "has shape [96, 64], expected [128, 64]"),
        (model_with("e6", "llama", edit_config(hidden_act="gelu")), "hidden_act 'gelu'"),
    ]
    trunc = model_with("e7", "qwen2", shards=2)
    shard = os.path.join(trunc, "model-00002-of-00002.safetensors")
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 100)
    cases.append((trunc, "model-00002-of-00002.safetensors"))
    bad_json = model_with("e8", "llama")
    with open(os.path.join(bad_json, "config.json"), "w") as f:
        f.write("{not json")
    cases.append((bad_json, "config.json: not valid JSON"))
    for d, want in cases:
        line = run_err([LOGITS, d, text, out])
        assert want in line, f"{d}: {line!r} lacks {want!r}"
        print(f"error ok: {line}")
    assert not os.path.exists(out)


if __name__ == "__main__":
    main()
