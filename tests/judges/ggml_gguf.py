#!/usr/bin/env python3
"""GGUF files written by ggml's own code, as judges for lowp's GGUF reader.

    ggml_gguf.py IN.gguf OUT.gguf TYPE
        Reads IN.gguf (typically an F32 GGUF that lowp wrote) and writes OUT.gguf
        with ggml's GGUF writer: the same metadata (gguf_set_kv), every weight of
        two or more dimensions whose row length is a multiple of TYPE's block
        quantized with ggml_quantize_chunk, everything else kept as it is (F32
        norms and biases). TYPE is a ggml type name: F32, F16, BF16, Q8_0, Q4_0,
        Q4_1, Q5_0, Q5_1, Q2_K ... Q6_K, IQ4_NL, IQ4_XS, MXFP4, ... (types that
        need an importance matrix are refused). TYPE DEQUANT instead decodes
        every tensor to F32 with ggml's own to_float (type traits).

    ggml_gguf.py --from-hf MODEL_DIR OUT.gguf TYPE
        Converts a Hugging Face Llama directory (config.json, model.safetensors,
        tokenizer.json with a byte-level BPE) the way llama.cpp's
        convert_hf_to_gguf.py does (llama architecture, q/k rows interleaved for
        its RoPE, gpt2-style vocabulary), then quantizes as above. A second
        exporter, independent of lowp's, for the llama.cpp comparison.

Only ctypes on the judge's libggml-base.so (node-llama-cpp's prebuilt CPU
build in tests/judges/node_modules) and numpy; nothing of lowp is used.
"""

import ctypes
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(HERE, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64",
                   "libggml-base.so")

# enum gguf_type
GGUF_UINT8, GGUF_INT8, GGUF_UINT16, GGUF_INT16, GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, \
    GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64, GGUF_INT64, GGUF_FLOAT64 = range(13)
GGML_TYPE_F32, GGML_TYPE_F16 = 0, 1

# llama_ftype ("general.file_type") of a file whose weights are mostly one type,
# as llama-quantize writes it (K-quants: the _S variant, all weights one type).
FILE_TYPE = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
             "Q2_K": 10, "Q3_K": 11, "Q4_K": 14, "Q5_K": 16, "Q6_K": 18, "IQ4_NL": 25,
             "IQ4_XS": 30, "BF16": 32, "TQ1_0": 36, "TQ2_0": 37, "MXFP4": 38}
GGML_QNT_VERSION = 2


class GgufInitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.POINTER(ctypes.c_void_p))]


class GgmlInitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p),
                ("no_alloc", ctypes.c_bool)]


TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class GgmlTypeTraits(ctypes.Structure):
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


def _load(path=LIB):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} (run scripts/deps.sh to install the judges)")
    lib = ctypes.CDLL(path)
    P, I64, SZ, S = ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p
    sigs = {
        "gguf_init_from_file": (P, [S, GgufInitParams]),
        "gguf_init_empty": (P, []),
        "gguf_free": (None, [P]),
        "gguf_get_n_kv": (I64, [P]),
        "gguf_get_key": (S, [P, I64]),
        "gguf_get_alignment": (SZ, [P]),
        "gguf_get_data_offset": (SZ, [P]),
        "gguf_get_n_tensors": (I64, [P]),
        "gguf_get_tensor_name": (S, [P, I64]),
        "gguf_get_tensor_offset": (SZ, [P, I64]),
        "gguf_get_tensor_type": (ctypes.c_int, [P, I64]),
        "gguf_get_tensor_size": (SZ, [P, I64]),
        "gguf_set_kv": (None, [P, P]),
        "gguf_set_val_u32": (None, [P, S, ctypes.c_uint32]),
        "gguf_set_val_f32": (None, [P, S, ctypes.c_float]),
        "gguf_set_val_bool": (None, [P, S, ctypes.c_bool]),
        "gguf_set_val_str": (None, [P, S, S]),
        "gguf_set_arr_data": (None, [P, S, ctypes.c_int, P, SZ]),
        "gguf_set_arr_str": (None, [P, S, ctypes.POINTER(S), SZ]),
        "gguf_add_tensor": (None, [P, P]),
        "gguf_set_tensor_type": (None, [P, S, ctypes.c_int]),
        "gguf_set_tensor_data": (None, [P, S, P]),
        "gguf_write_to_file": (ctypes.c_bool, [P, S, ctypes.c_bool]),
        "ggml_init": (P, [GgmlInitParams]),
        "ggml_free": (None, [P]),
        "ggml_tensor_overhead": (SZ, []),
        "ggml_get_tensor": (P, [P, S]),
        "ggml_new_tensor": (P, [P, ctypes.c_int, ctypes.c_int, ctypes.POINTER(I64)]),
        "ggml_set_name": (P, [P, S]),
        "ggml_type_name": (S, [ctypes.c_int]),
        "ggml_type_size": (SZ, [ctypes.c_int]),
        "ggml_blck_size": (I64, [ctypes.c_int]),
        "ggml_row_size": (SZ, [ctypes.c_int, I64]),
        "ggml_quantize_init": (None, [ctypes.c_int]),
        "ggml_quantize_requires_imatrix": (ctypes.c_bool, [ctypes.c_int]),
        "ggml_quantize_chunk": (SZ, [ctypes.c_int, P, P, I64, I64, I64, P]),
        "ggml_get_type_traits": (ctypes.POINTER(GgmlTypeTraits), [ctypes.c_int]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


_lib = None


def lib():
    global _lib
    if _lib is None:
        _lib = _load()
    return _lib


def type_id(name):
    """The ggml_type of a type name (case-insensitive), by ggml's own table."""
    g = lib()
    for t in range(64):
        n = g.ggml_type_name(t)
        if n and n.decode().upper() == name.upper():
            return t
    raise ValueError(f"unknown ggml type {name!r}")


def _tensor_ne(g, meta_ctx, name):
    """ne[0..3] of a tensor in a ggml context (struct ggml_tensor: type, buffer, ne[4], ...)."""
    t = g.ggml_get_tensor(meta_ctx, name.encode())
    if not t:
        raise RuntimeError(f"{name}: not in the ggml context")
    # struct ggml_tensor { enum ggml_type type; struct ggml_backend_buffer * buffer; int64_t ne[4]; ...}
    ne = (ctypes.c_int64 * 4).from_address(t + 16)
    return t, list(ne)


def _quantize(g, qtype, rows):
    """rows: float32 [nrows, n_per_row] -> bytes of ggml's encoding of qtype."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    nrows, n_per_row = rows.shape
    out = np.empty(g.ggml_row_size(qtype, n_per_row) * nrows, dtype=np.uint8)
    written = g.ggml_quantize_chunk(qtype, rows.ctypes.data, out.ctypes.data, 0, nrows, n_per_row,
                                    None)
    if written != out.size:
        raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, expected {out.size}")
    return out


def _dequantize_plain(raw, ttype, count):
    if ttype == GGML_TYPE_F32:
        return np.frombuffer(raw, dtype="<f4", count=count)
    if ttype == GGML_TYPE_F16:
        return np.frombuffer(raw, dtype="<f2", count=count).astype(np.float32)
    if ttype == type_id("BF16"):
        u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
        return u.view(np.float32)
    return None


def _to_float(g, ttype, raw, count):
    """ggml's own decoding (type_traits.to_float) of count values of ttype."""
    plain = _dequantize_plain(raw, ttype, count)
    if plain is not None:
        return plain
    traits = g.ggml_get_type_traits(ttype).contents
    if not traits.to_float:
        raise ValueError(f"ggml type {ttype} has no to_float")
    src = np.frombuffer(raw, dtype=np.uint8).copy()
    out = np.empty(count, dtype=np.float32)
    TO_FLOAT(traits.to_float)(src.ctypes.data, out.ctypes.data, count)
    return out


def _check_type(g, qtype, name):
    if g.ggml_quantize_requires_imatrix(qtype):
        raise ValueError(f"{name} needs an importance matrix; not supported here")
    g.ggml_quantize_init(qtype)


def quantize_gguf(src, dst, type_name, log=sys.stderr):
    """Writes dst: src's metadata and tensors, weights quantized to type_name by ggml."""
    g = lib()
    dequant = type_name.upper() == "DEQUANT"
    qtype = GGML_TYPE_F32 if dequant else type_id(type_name)
    _check_type(g, qtype, type_name)
    blck = g.ggml_blck_size(qtype)
    meta = ctypes.c_void_p()
    gin = g.gguf_init_from_file(src.encode(), GgufInitParams(True, ctypes.pointer(meta)))
    if not gin:
        raise RuntimeError(f"{src}: ggml cannot read it as GGUF")
    gout = g.gguf_init_empty()
    keep = []  # buffers gguf_write_to_file reads
    try:
        g.gguf_set_kv(gout, gin)
        if dequant:
            g.gguf_set_val_u32(gout, b"general.file_type", FILE_TYPE["F32"])
        elif type_name.upper() in FILE_TYPE:
            g.gguf_set_val_u32(gout, b"general.file_type", FILE_TYPE[type_name.upper()])
        g.gguf_set_val_u32(gout, b"general.quantization_version", GGML_QNT_VERSION)
        base = g.gguf_get_data_offset(gin)
        kept = []
        with open(src, "rb") as f:
            for i in range(g.gguf_get_n_tensors(gin)):
                name = g.gguf_get_tensor_name(gin, i).decode()
                ttype = g.gguf_get_tensor_type(gin, i)
                t, ne = _tensor_ne(g, meta.value, name)
                f.seek(base + g.gguf_get_tensor_offset(gin, i))
                raw = f.read(g.gguf_get_tensor_size(gin, i))
                g.gguf_add_tensor(gout, t)
                n_dims = max([d + 1 for d in range(4) if ne[d] > 1] + [1])
                count = int(np.prod(ne))
                if dequant:
                    values = _to_float(g, ttype, raw, count)
                    g.gguf_set_tensor_type(gout, name.encode(), GGML_TYPE_F32)
                    data = values.view(np.uint8)
                    keep.append(data)
                    g.gguf_set_tensor_data(gout, name.encode(), data.ctypes.data)
                    continue
                values = _dequantize_plain(raw, ttype, count)
                if (n_dims >= 2 and name.endswith(".weight") and ne[0] % blck == 0 and
                        values is not None):
                    data = _quantize(g, qtype, values.reshape(-1, ne[0]))
                    g.gguf_set_tensor_type(gout, name.encode(), qtype)
                else:
                    data = np.frombuffer(raw, dtype=np.uint8).copy()
                    kept.append(name)
                keep.append(data)
                g.gguf_set_tensor_data(gout, name.encode(), data.ctypes.data)
        tmp = dst + ".tmp"
        if not g.gguf_write_to_file(gout, tmp.encode(), False):
            raise RuntimeError(f"{dst}: gguf_write_to_file failed")
        os.replace(tmp, dst)
        if log and dequant:
            print(f"ggml_gguf: {dst}: every tensor decoded to F32 by ggml", file=log)
        elif log:
            print(f"ggml_gguf: {dst}: weights {type_name.upper()}, kept as they were: "
                  f"{', '.join(kept) or 'none'}", file=log)
    finally:
        g.gguf_free(gout)
        g.gguf_free(gin)
        if meta.value:
            g.ggml_free(meta.value)


# ---------------------------------------------------------------------------
# Hugging Face Llama directory -> GGUF (convert_hf_to_gguf.py's conventions).

def read_safetensors(path):
    """{name: float32 array} of a safetensors file (F32, F16, BF16)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        dt = info["dtype"]
        if dt == "F32":
            v = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            v = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            v = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {dt} not handled")
        out[name] = v.reshape(info["shape"]).astype(np.float32)
    return out


def _permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute: rotate-half rows -> interleaved."""
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2)
            .reshape(w.shape))


def _bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_level_tokenizer(vocab_size):
    """A minimal Hugging Face tokenizer.json (byte-level BPE, no special tokens)
    with exactly vocab_size tokens: the 256 byte tokens in byte order, then
    merges of lowercase letter pairs ("a"+"a", "a"+"b", ...)."""
    if not 256 <= vocab_size <= 256 + 26 * 26:
        raise ValueError("vocab_size must be in [256, 932]")
    b2u = _bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = []
    letters = "abcdefghijklmnopqrstuvwxyz"
    for a in letters:
        for b in letters:
            if len(vocab) == vocab_size:
                break
            vocab[a + b] = len(vocab)
            merges.append(f"{a} {b}")
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


def hf_to_gguf(model_dir, dst, type_name):
    """Writes dst from a Hugging Face Llama directory, weights in type_name."""
    g = lib()
    qtype = type_id(type_name)
    _check_type(g, qtype, type_name)
    blck = g.ggml_blck_size(qtype)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("architectures") != ["LlamaForCausalLM"]:
        raise ValueError(f"{model_dir}: only LlamaForCausalLM is converted here")
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        tok = json.load(f)
    if tok["model"]["type"] != "BPE" or tok.get("added_tokens"):
        raise ValueError(f"{model_dir}: only a byte-level BPE without added tokens is converted")
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    d, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    head_dim = cfg.get("head_dim", d // n_head)
    n_layer, vocab_size = cfg["num_hidden_layers"], cfg["vocab_size"]

    tensors = [("token_embd.weight", w["model.embed_tokens.weight"]),
               ("output_norm.weight", w["model.norm.weight"])]
    if not cfg.get("tie_word_embeddings", False):
        tensors.append(("output.weight", w["lm_head.weight"]))
    for i in range(n_layer):
        p = f"model.layers.{i}."
        tensors += [
            (f"blk.{i}.attn_norm.weight", w[p + "input_layernorm.weight"]),
            (f"blk.{i}.attn_q.weight", _permute(w[p + "self_attn.q_proj.weight"], n_head)),
            (f"blk.{i}.attn_k.weight", _permute(w[p + "self_attn.k_proj.weight"], n_kv)),
            (f"blk.{i}.attn_v.weight", w[p + "self_attn.v_proj.weight"]),
            (f"blk.{i}.attn_output.weight", w[p + "self_attn.o_proj.weight"]),
            (f"blk.{i}.ffn_norm.weight", w[p + "post_attention_layernorm.weight"]),
            (f"blk.{i}.ffn_gate.weight", w[p + "mlp.gate_proj.weight"]),
            (f"blk.{i}.ffn_up.weight", w[p + "mlp.up_proj.weight"]),
            (f"blk.{i}.ffn_down.weight", w[p + "mlp.down_proj.weight"]),
        ]

    gout = g.gguf_init_empty()
    ctx = g.ggml_init(GgmlInitParams(g.ggml_tensor_overhead() * (len(tensors) + 8), None, True))
    keep = []
    try:
        g.gguf_set_val_str(gout, b"general.architecture", b"llama")
        g.gguf_set_val_str(gout, b"general.name", os.path.basename(model_dir).encode())
        g.gguf_set_val_u32(gout, b"general.file_type", FILE_TYPE.get(type_name.upper(), 0))
        g.gguf_set_val_u32(gout, b"general.quantization_version", GGML_QNT_VERSION)
        u32 = {"llama.context_length": cfg.get("max_position_embeddings", 2048),
               "llama.embedding_length": d, "llama.block_count": n_layer,
               "llama.feed_forward_length": cfg["intermediate_size"],
               "llama.rope.dimension_count": head_dim, "llama.attention.head_count": n_head,
               "llama.attention.head_count_kv": n_kv, "llama.vocab_size": vocab_size,
               "llama.attention.key_length": head_dim, "llama.attention.value_length": head_dim}
        for k, v in u32.items():
            g.gguf_set_val_u32(gout, k.encode(), int(v))
        g.gguf_set_val_f32(gout, b"llama.attention.layer_norm_rms_epsilon",
                           float(cfg.get("rms_norm_eps", 1e-6)))
        g.gguf_set_val_f32(gout, b"llama.rope.freq_base", float(cfg.get("rope_theta", 10000.0)))
        # The vocabulary, as convert_hf_to_gguf.py writes a gpt2-style BPE.
        vocab = tok["model"]["vocab"]
        tokens = [None] * vocab_size
        for t, i in vocab.items():
            tokens[i] = t
        if any(t is None for t in tokens):
            raise ValueError(f"{model_dir}: tokenizer.json does not cover ids 0..{vocab_size - 1}")
        g.gguf_set_val_str(gout, b"tokenizer.ggml.model", b"gpt2")
        g.gguf_set_val_str(gout, b"tokenizer.ggml.pre", b"default")
        for key, strs in ((b"tokenizer.ggml.tokens", tokens),
                          (b"tokenizer.ggml.merges", tok["model"]["merges"])):
            arr = (ctypes.c_char_p * len(strs))(*[s.encode() for s in strs])
            g.gguf_set_arr_str(gout, key, arr, len(strs))
        types = np.ones(vocab_size, dtype=np.int32)  # LLAMA_TOKEN_TYPE_NORMAL
        g.gguf_set_arr_data(gout, b"tokenizer.ggml.token_type", GGUF_INT32, types.ctypes.data,
                            vocab_size)
        g.gguf_set_val_bool(gout, b"tokenizer.ggml.add_bos_token", False)

        for name, v in tensors:
            v = np.ascontiguousarray(v, dtype=np.float32)
            ne = (ctypes.c_int64 * 4)(*(list(reversed(v.shape)) + [1] * (4 - v.ndim)))
            t = g.ggml_new_tensor(ctx, GGML_TYPE_F32, v.ndim, ne)
            g.ggml_set_name(t, name.encode())
            g.gguf_add_tensor(gout, t)
            if v.ndim >= 2 and v.shape[-1] % blck == 0:
                data = _quantize(g, qtype, v.reshape(-1, v.shape[-1]))
                g.gguf_set_tensor_type(gout, name.encode(), qtype)
            else:
                data = v
            keep.append(data)
            g.gguf_set_tensor_data(gout, name.encode(), data.ctypes.data)
        tmp = dst + ".tmp"
        if not g.gguf_write_to_file(gout, tmp.encode(), False):
            raise RuntimeError(f"{dst}: gguf_write_to_file failed")
        os.replace(tmp, dst)
    finally:
        g.gguf_free(gout)
        g.ggml_free(ctx)


def main(argv):
    if len(argv) == 4 and argv[0] == "--from-hf":
        hf_to_gguf(argv[1], argv[2], argv[3])
        return 0
    if len(argv) != 3 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    quantize_gguf(argv[0], argv[1], argv[2])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError, RuntimeError) as e:
        print(f"ggml_gguf.py: {e}", file=sys.stderr)
        sys.exit(1)
