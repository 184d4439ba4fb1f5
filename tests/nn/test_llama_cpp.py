"""lowp's Llama runtime and GGUF files against llama.cpp (the judge in tests/judges).

For each model (a small random Llama-architecture Hugging Face directory built
here; also models/kjv-llama, or $LOWP_LLAMA_MODEL, when present):

  * judge check (random model): llama.cpp on a GGUF converted by ggml's own
    code (tests/judges/ggml_gguf.py --from-hf) against a float64 numpy forward
    pass written from the Llama definition; this checks the judge itself
    (exact ids, no BOS, untruncated softmax);
  * lowp on the Hugging Face directory itself against llama.cpp on that GGUF;
  * lowp's exporter: `lowp quantize DIR -o X.gguf -f T` for T in fp32, fp16,
    bf16, q8_0, q4_0, q4_k, mxfp4, nvfp4, then llama.cpp and lowp (lowp_gpt_logits)
    on the same file;
  * GGUFs written by ggml (ggml_gguf.py, ggml_quantize_chunk) from lowp's F32
    export in Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4, F16, BF16: lowp
    reads ggml's file and agrees with llama.cpp on it.

Agreement: per-position KL(llama.cpp || lowp) in float64 over the full
next-token distributions, mean over positions <= 1e-4 for 8 bits and wider,
<= 1e-3 below; perplexities of the ids within 0.3%. Prints a table.

Env: LOWP (the CLI), LOWP_GPT_LOGITS, LOWP_SOURCE_DIR, NODE (default node),
LOWP_LLAMA_MODEL (a model directory to add), LOWP_JUDGE_THREADS (default 2).
Exits 77 (ctest SKIP_RETURN_CODE) when the judges (node, tests/judges/
node_modules) are missing, and fails instead under CI (CI=true).
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

SOURCE = os.environ.get("LOWP_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
JUDGES = os.path.join(SOURCE, "tests", "judges")
sys.path.insert(0, JUDGES)

NODE = os.environ.get("NODE") or shutil.which("node") or "node"
THREADS = os.environ.get("LOWP_JUDGE_THREADS", "2")
UNDER_CI = os.environ.get("CI") in ("true", "1")

LOWP_TYPES = ["fp32", "fp16", "bf16", "q8_0", "q4_0", "q4_k", "mxfp4", "nvfp4"]
GGML_TYPES = ["Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "MXFP4", "F16", "BF16"]
WIDE = {"FP16", "BF16", "Q8_0", "F16"}
PPL_TOLERANCE = 3e-3
# lowp against llama.cpp where both run the same F32 weights in float32 (an F32
# file, or llama.cpp on ggml's F32 decoding of a quantized file): only the
# order of float32 sums differs (measured: a few 1e-12 on the random model).
EXACT_KL = 1e-7
# lowp against llama.cpp on the file itself: (mean KL for 8 bits and wider,
# mean KL below 8 bits, perplexity). llama.cpp's CPU backend rounds the
# activations to the weights' dot-product type (Q8_0 for Q8_0/Q4_0/MXFP4/IQ4_NL,
# Q8_K for K-quants, BF16 for BF16), which lowp does not; on a trained model
# that costs little, on the random one (whose distributions are sharper
# functions of the activations) up to a few 1e-3, so its limits are wider.
DIRECT_LIMITS = (1e-4, 1e-3, 3e-3)
RANDOM_DIRECT_LIMITS = (2e-3, 5e-3, 2e-2)

# Genesis 1:1-5 (KJV, public domain): the text a real model's ids come from.
TEXT = ("In the beginning God created the heaven and the earth. And the earth was "
        "without form, and void; and darkness was upon the face of the deep. And the "
        "Spirit of God moved upon the face of the waters. And God said, Let there be "
        "light: and there was light. And God saw the light, that it was good: and God "
        "divided the light from the darkness.\n")


def skip_or_fail(why):
    if UNDER_CI:
        print(f"FAIL: {why} (CI=true: skipping is not allowed)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(77)


def judges_present():
    if shutil.which(NODE) is None and not os.path.exists(NODE):
        skip_or_fail("node is not installed (the llama.cpp judge runs under node)")
    for path in ("node_modules/node-llama-cpp/package.json",
                 "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"):
        if not os.path.exists(os.path.join(JUDGES, path)):
            skip_or_fail(f"tests/judges/{path} is missing (run scripts/deps.sh)")


# ---------------------------------------------------------------------------
# A random Llama directory and a float64 reference forward pass.

CONFIG = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=512,
              hidden_size=256, intermediate_size=512, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
              hidden_act="silu", torch_dtype="float32")


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, v in tensors.items():
        b = np.ascontiguousarray(v, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(v.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def random_llama(directory, seed=0):
    """A 2-layer GQA Llama (vocab 512, d 256, 4 heads, 2 KV heads, d_ff 512) with
    weights large enough that attention and the distributions are far from
    uniform, and a byte-level BPE tokenizer.json of exactly 512 tokens."""
    import ggml_gguf
    os.makedirs(directory, exist_ok=True)
    c = CONFIG
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = d // c["num_attention_heads"]
    rng = np.random.default_rng(seed)
    t = {"model.embed_tokens.weight": rng.normal(0, 1, (v, d)),
         "model.norm.weight": 1 + 0.1 * rng.normal(size=d),
         "lm_head.weight": rng.normal(0, 0.1, (v, d))}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * rng.normal(size=d)
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.normal(size=d)
        t[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.15, (c["num_attention_heads"] * hd, d))
        t[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.15, (c["num_key_value_heads"] * hd, d))
        t[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.06, (c["num_key_value_heads"] * hd, d))
        t[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.06, (d, c["num_attention_heads"] * hd))
        t[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.06, (f, d))
        t[p + "mlp.up_proj.weight"] = rng.normal(0, 0.06, (f, d))
        t[p + "mlp.down_proj.weight"] = rng.normal(0, 0.05, (d, f))
    write_safetensors(os.path.join(directory, "model.safetensors"), t)
    with open(os.path.join(directory, "config.json"), "w") as fh:
        json.dump(c, fh, indent=1)
    with open(os.path.join(directory, "tokenizer.json"), "w") as fh:
        json.dump(ggml_gguf.byte_level_tokenizer(v), fh)
    return [int(x) for x in rng.integers(0, v, 128)]


def reference_logits(directory, ids):
    """Llama's forward pass (HF's modeling_llama) in float64 numpy."""
    import ggml_gguf
    with open(os.path.join(directory, "config.json")) as fh:
        c = json.load(fh)
    w = {k: v.astype(np.float64)
         for k, v in ggml_gguf.read_safetensors(os.path.join(directory,
                                                             "model.safetensors")).items()}
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // nh
    eps = c["rms_norm_eps"]
    n = len(ids)

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    inv = c["rope_theta"] ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(n)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))

    def rope(x):  # [heads, n, hd]
        rot = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], -1)
        return x * cos + rot * sin

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(n, nh, hd).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(n, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, 0), np.repeat(v, nh // nkv, 0)
        s = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = x + a.transpose(1, 0, 2).reshape(n, nh * hd) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ head.T


# ---------------------------------------------------------------------------
# Running the judges and lowp.

def run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r.stdout


def llama_probs(gguf, ids_path, tmp, text=None):
    out = os.path.join(tmp, "llama.f32")
    cmd = [NODE, os.path.join(JUDGES, "llama_eval.mjs"), gguf, ids_path, out,
           "--threads", THREADS]
    if text is not None:
        cmd += ["--text", text]
    info = json.loads(run(cmd, f"llama_eval.mjs {os.path.basename(gguf)}").strip().splitlines()[-1])
    p = np.fromfile(out, dtype="<f4").astype(np.float64)
    p = p.reshape(info["n_tokens"], info["n_vocab"])
    return p / p.sum(-1, keepdims=True)  # float32 rows sum to 1 only to ~1e-6


def lowp_logits(model, ids_path, tmp):
    out = os.path.join(tmp, "lowp.npy")
    run([os.environ["LOWP_GPT_LOGITS"], model, out, "--tokens", ids_path, "--threads", THREADS],
        f"lowp_gpt_logits {os.path.basename(model)}")
    return np.load(out).astype(np.float64)


def log_softmax(logits):
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def compare(p, logits, ids):
    """Per-position KL(p || softmax(logits)) and both perplexities of ids[1:]."""
    if p.shape != logits.shape:
        raise RuntimeError(f"llama.cpp gives {p.shape}, lowp {logits.shape}")
    logq = log_softmax(logits)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - logq), 0.0)
    kl = terms.sum(-1)
    nxt = np.asarray(ids[1:])
    rows = np.arange(len(nxt))
    ppl_p = float(np.exp(-np.mean(np.log(p[rows, nxt]))))
    ppl_q = float(np.exp(-np.mean(logq[rows, nxt])))
    return float(kl.mean()), float(kl.max()), ppl_p, ppl_q


class Table:
    """One row per GGUF: llama.cpp and lowp on the same file (the "direct" KL,
    which includes llama.cpp's own quantization of activations for quantized
    weights: Q8_0/Q8_K/BF16 dot products), and for a quantized file also
    llama.cpp on the file decoded to F32 by ggml's to_float (the "decoded" KL:
    does lowp read every weight as ggml does?)."""

    def __init__(self, direct_limits):
        self.rows, self.failures = [], []
        self.direct_limits = direct_limits  # (kl wide, kl narrow, perplexity)

    def add(self, model, kind, name, ids, logits, p, p_decoded=None):
        mean, worst, ppl_p, ppl_q = compare(p, logits, ids)
        kl_wide, kl_narrow, ppl_tol = self.direct_limits
        base = name.split("/")[0].upper()
        limit = EXACT_KL if base in ("F32", "FP32") else kl_wide if base in WIDE else kl_narrow
        problems = []
        if mean > limit:
            problems.append(f"mean KL {mean:.3e} > {limit:g}")
        if abs(ppl_q / ppl_p - 1) > ppl_tol:
            problems.append(f"perplexity {ppl_q:.6g} vs llama.cpp's {ppl_p:.6g} "
                            f"({abs(ppl_q / ppl_p - 1):.2%} > {ppl_tol:.1%})")
        dmean = dworst = float("nan")
        if p_decoded is not None:
            dmean, dworst, ppl_d, _ = compare(p_decoded, logits, ids)
            if dmean > EXACT_KL:
                problems.append(f"mean KL against ggml's decoding {dmean:.3e} > {EXACT_KL:g}")
            if abs(ppl_q / ppl_d - 1) > PPL_TOLERANCE:
                problems.append(f"perplexity {ppl_q:.6g} vs {ppl_d:.6g} on ggml's decoding")
        status = "ok" if not problems else "FAIL"
        self.rows.append((model, kind, name, mean, worst, dmean, dworst, ppl_p, ppl_q, status))
        print(f"{model:10} {kind:15} {name:8} KL {mean:.2e} (max {worst:.2e})  "
              f"decoded KL {dmean:.2e} (max {dworst:.2e})  ppl llama.cpp {ppl_p:.4f} "
              f"lowp {ppl_q:.4f}  {status}", flush=True)
        if problems:
            self.failures.append(f"{model} {kind} {name}: " + "; ".join(problems))

    def error(self, model, kind, name, e):
        nan = float("nan")
        self.rows.append((model, kind, name, nan, nan, nan, nan, nan, nan, "ERROR"))
        print(f"{model:10} {kind:15} {name:8} ERROR: {e}", flush=True)
        self.failures.append(f"{model} {kind} {name}: {e}")

    def print(self):
        print("\n| model | GGUF written by | type | mean KL | max KL | mean KL, ggml-decoded "
              "| max KL, ggml-decoded | ppl llama.cpp | ppl lowp | |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for m, k, n, mean, worst, dmean, dworst, pp, pq, st in self.rows:
            print(f"| {m} | {k} | {n} | {mean:.2e} | {worst:.2e} | {dmean:.2e} | {dworst:.2e} "
                  f"| {pp:.4f} | {pq:.4f} | {st} |")


def check_file(table, label, kind, name, gguf, ids, ids_path, tmp, text=None, n_ctx=None):
    """llama.cpp and lowp on one GGUF (and llama.cpp on ggml's F32 decoding of it
    when it holds quantized weights). Returns the ids (tokenized from `text` by
    llama.cpp when given, at most n_ctx of them)."""
    import ggml_gguf
    try:
        if text is not None:
            p = llama_probs(gguf, ids_path, tmp, text=text)
            with open(ids_path) as fh:
                ids = json.load(fh)[:n_ctx]
            p = p[:len(ids)]  # causal: the first n_ctx rows do not see the rest
            with open(ids_path, "w") as fh:
                json.dump(ids, fh)
        else:
            p = llama_probs(gguf, ids_path, tmp)
        decoded = None
        if name.split("/")[0].upper() not in ("F32", "FP32"):
            dec = gguf + ".decoded.gguf"
            ggml_gguf.quantize_gguf(gguf, dec, "DEQUANT", log=None)
            decoded = llama_probs(dec, ids_path, tmp)
        table.add(label, kind, name, ids, lowp_logits(gguf, ids_path, tmp), p, decoded)
    except (RuntimeError, ValueError) as e:
        table.error(label, kind, name, e)
    return ids


def check_model(label, directory, ids, tmp, table, random_model):
    import ggml_gguf
    ids_path = os.path.join(tmp, f"{label}_ids.json")
    with open(os.path.join(directory, "config.json")) as fh:
        n_ctx = json.load(fh).get("max_position_embeddings")
    text = None
    if ids is None:  # a real model: llama.cpp tokenizes held-out text
        text = os.path.join(tmp, "text.txt")
        with open(text, "w") as fh:
            fh.write(held_out_text())
    else:
        with open(ids_path, "w") as fh:
            json.dump(ids, fh)

    # A GGUF converted from the directory by ggml's code (byte-level BPE only).
    converted = os.path.join(tmp, f"{label}_ggml_convert_F32.gguf")
    try:
        ggml_gguf.hf_to_gguf(directory, converted, "F32")
    except (ValueError, KeyError, OSError) as e:
        print(f"{label}: ggml_gguf.py --from-hf does not convert it ({e}); skipping those rows")
        converted = None

    # lowp's exporter on the directory.
    lowp_f32 = None
    for t in LOWP_TYPES:
        gguf = os.path.join(tmp, f"{label}_lowp_{t}.gguf")
        kind = "lowp"
        try:
            run([os.environ["LOWP"], "quantize", directory, "-o", gguf, "-f", t],
                f"lowp quantize DIR -f {t}")
        except RuntimeError as e:
            table.error(label, kind, t, e)
            continue
        if t == "fp32":
            lowp_f32 = gguf
        ids = check_file(table, label, kind, t, gguf, ids, ids_path, tmp,
                         text if ids is None else None, n_ctx)

    # GPTQ's matrices written into ggml's blocks as they are (a real model:
    # calibrated on held-out text past the part the comparison reads).
    if not random_model:
        calib = os.path.join(tmp, "calib.txt")
        with open(os.path.join(SOURCE, "models", "kjv-char", "val.txt"), encoding="utf-8") as fh:
            with open(calib, "w") as out:
                out.write(fh.read()[8000:])
        for t in ("q4_0", "mxfp4"):
            gguf = os.path.join(tmp, f"{label}_lowp_gptq_{t}.gguf")
            try:
                run([os.environ["LOWP"], "quantize", directory, "-o", gguf, "-f", t, "--method",
                     "gptq", "--calib", calib, "--calib-tokens", "2048", "--threads", THREADS, "-q"],
                    f"lowp quantize DIR -f {t} --method gptq")
            except RuntimeError as e:
                table.error(label, "lowp gptq", t, e)
                continue
            ids = check_file(table, label, "lowp gptq", t, gguf, ids, ids_path, tmp,
                             text if ids is None else None, n_ctx)

    if converted is not None:
        ids = check_file(table, label, "ggml convert", "F32", converted, ids, ids_path, tmp,
                         text if ids is None else None, n_ctx)
        try:
            p = llama_probs(converted, ids_path, tmp)
            if random_model:  # the judge itself against the model's definition
                table.add(label, "numpy float64", "F32/ref", ids,
                          reference_logits(directory, ids), p)
            # lowp on the Hugging Face directory itself
            table.add(label, "HF directory", "F32/HF", ids,
                      lowp_logits(directory, ids_path, tmp), p)
        except RuntimeError as e:
            table.error(label, "HF directory", "F32", e)

    source = lowp_f32 or converted
    if source is None or ids is None:
        return
    kind = "ggml from lowp" if lowp_f32 else "ggml convert"
    for t in GGML_TYPES:
        gguf = os.path.join(tmp, f"{label}_ggml_{t}.gguf")
        try:
            ggml_gguf.quantize_gguf(source, gguf, t, log=None)
        except (RuntimeError, ValueError) as e:
            table.error(label, kind, t, e)
            continue
        check_file(table, label, kind, t, gguf, ids, ids_path, tmp)

    if not random_model:
        report_runs(label, directory, tmp)


def held_out_text():
    """Romans 1 on (models/kjv-char/val.txt, the books both KJV models hold out
    from training), a few thousand bytes: more than n_ctx tokens."""
    path = os.path.join(SOURCE, "models", "kjv-char", "val.txt")
    if not os.path.exists(path):
        return TEXT
    with open(path, encoding="utf-8") as fh:
        return fh.read(4000)


def report_runs(label, directory, tmp):
    """`lowp report` on the directory, on lowp's Q4_K export of it and on the
    Q4_K file ggml's own quantizer wrote: each runs, and the fp32 rows (each
    file's own weights) order as the files' precision does."""
    text = os.path.join(tmp, "report.txt")
    with open(text, "w") as fh:
        fh.write(held_out_text())
    results = {}
    for name, model in (("directory", directory),
                        ("lowp Q4_K export", os.path.join(tmp, f"{label}_lowp_q4_k.gguf")),
                        ("ggml Q4_K file", os.path.join(tmp, f"{label}_ggml_Q4_K.gguf"))):
        out = run([os.environ["LOWP"], "report", model, "--text", text, "--formats",
                   "fp32,mxfp4", "--json", "--no-svg", "--threads", THREADS], f"lowp report {name}")
        rows = json.loads(out)["rows"]
        results[name] = rows[0]["bits_per_byte"]
        print(f"lowp report on the {label} {name}: fp32 {rows[0]['bits_per_byte']:.4f}, "
              f"mxfp4 {rows[1]['bits_per_byte']:.4f} bits/byte")
    base = results["directory"]
    for name, bpb in results.items():
        if not abs(bpb - base) <= 0.05 * base:
            raise SystemExit(f"FAIL: lowp report on the {name}: {bpb:.4f} bits/byte, "
                             f"the directory's {base:.4f}")


def main():
    judges_present()
    for var in ("LOWP", "LOWP_GPT_LOGITS"):
        if var not in os.environ:
            print(f"FAIL: ${var} is not set")
            return 1
    start = time.time()
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = os.path.join(tmp, "random-llama")
        ids = random_llama(directory)
        tables.append(Table(RANDOM_DIRECT_LIMITS))
        check_model("random", directory, ids, tmp, tables[-1], random_model=True)
        real = os.environ.get("LOWP_LLAMA_MODEL") or os.path.join(SOURCE, "models", "kjv-llama")
        if os.path.exists(os.path.join(real, "config.json")):
            tables.append(Table(DIRECT_LIMITS))
            check_model(os.path.basename(os.path.normpath(real)), real, None, tmp, tables[-1],
                        random_model=False)
        else:
            print(f"{real}: not present; only the random model was checked")
    failures = []
    for table in tables:
        table.print()
        failures += table.failures
    print(f"\n{sum(len(t.rows) for t in tables)} comparisons in {time.time() - start:.0f} s")
    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
