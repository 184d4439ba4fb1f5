#!/usr/bin/python3
"""Trains models/kjv-llama: a small Llama-architecture model (Hugging Face
LlamaForCausalLM layout) with its own byte-level BPE tokenizer, on the King
James Bible (Debian bible-kjv). Plain torch; no transformers, no tokenizers.

Run with /usr/bin/python3 (needs python3-torch, python3-numpy, python3-regex,
bible-kjv):

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/train_kjv_llama.py     # tokenizer + train + eval
    /usr/bin/python3 scripts/train_kjv_llama.py --eval-only                # re-evaluate the saved model
    /usr/bin/python3 scripts/train_kjv_llama.py --sample "In the beginning"

Deterministic given --seed (and the same torch build and thread count): the
tokenizer training has no randomness (ties between equally frequent pairs go
to the pair of smaller token ids); the model init and batch sampling use
torch generators seeded from --seed.

Data (the same split as scripts/train_kjv.py): `bible -f gen1:1-rev22:21`,
references stripped, one verse per line ending in "\\n", ASCII. Genesis..Acts is
the training split; Romans..Revelation (the epistles and Revelation, ~9% of the
bytes) is held out for validation; nothing from it is seen by the tokenizer or
the model during training.

Tokenizer: byte-level BPE (GPT-2's byte->unicode mapping) trained on the
training split after the Llama-3 pre-tokenizer regex; vocabulary 4096 =
256 byte tokens (id = byte value) + 3838 merges (ids 256..4093) +
<|begin_of_text|> (4094, BOS) + <|end_of_text|> (4095, EOS). tokenizer.json
adds BOS in front of every encoding (a TemplateProcessing post-processor, as
Llama 3 does; tokenizer_config.json says add_bos_token true). Merges are
found on the word-frequency table with incremental pair counts.

Model: LlamaForCausalLM as Hugging Face computes it (RMSNorm in fp32, RoPE in
the rotate_half convention, GQA, SiLU-gated MLP, no biases, final norm,
untied lm_head). Training sequences are BOS followed by 255 tokens of the
training split starting at a verse start (a random one per sequence); loss on
all 255 text tokens. Evaluation: the split's token stream cut into
consecutive non-overlapping windows of 255 tokens, each prefixed by BOS and
predicting every text token in it; nats per token = mean cross-entropy;
bits per byte = total nats / ln 2 / bytes of text predicted.

Writes into --out (models/kjv-llama): config.json, generation_config.json,
model.safetensors (F32, HF tensor names), tokenizer.json,
tokenizer_config.json, train.log (the console log) and train-log.json
(metrics). README.md (the model card) is written by hand from these.
"""

import argparse
import heapq
import json
import math
import os
import struct
import sys
import time
from collections import Counter, defaultdict

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python", "lowp", "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

VAL_FIRST_BOOK = "Rom"
BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"
# Llama 3's pre-tokenizer pattern, verbatim from its tokenizer.json.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------- tokenizer

def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character mapping."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}
_PRETOK = []


def pretok_regex():
    """The compiled Llama-3 pattern; needs the `regex` module (Debian python3-regex),
    since Python's re lacks \\p{L} / \\p{N}. Imported lazily so the model code
    works without it."""
    if not _PRETOK:
        try:
            import regex
        except ImportError:
            raise SystemExit("train_kjv_llama: needs the regex module (apt-get install python3-regex)")
        _PRETOK.append(regex.compile(LLAMA3_PATTERN))
    return _PRETOK[0]


def pretokenize(text):
    """Llama-3 split (Isolated) then ByteLevel mapping: a list of strings."""
    return ["".join(B2U[b] for b in w.encode("utf-8")) for w in pretok_regex().findall(text)]


def train_bpe(text, vocab_size, n_special=2):
    """Byte-level BPE merges on `text`: returns the merges as (a, b) string pairs."""
    n_merges = vocab_size - 256 - n_special
    words = Counter(pretokenize(text))
    # Symbols as token ids; ids 0..255 are the bytes.
    tok = [B2U[b] for b in range(256)]
    ids = {s: i for i, s in enumerate(tok)}
    seqs = [[ids[c] for c in w] for w in words]
    freqs = list(words.values())
    pair_count = defaultdict(int)
    pair_where = defaultdict(set)
    for wi, s in enumerate(seqs):
        for a, b in zip(s, s[1:]):
            pair_count[(a, b)] += freqs[wi]
            pair_where[(a, b)].add(wi)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        negc, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -negc or negc == 0:
            continue  # stale entry
        a, b = p
        new = len(tok)
        tok.append(tok[a] + tok[b])
        merges.append((tok[a], tok[b]))
        changed = set()
        for wi in list(pair_where[p]):
            s, f = seqs[wi], freqs[wi]
            # remove this word's old pairs, merge, add its new pairs
            for q in zip(s, s[1:]):
                pair_count[q] -= f
                changed.add(q)
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            for q in zip(s, s[1:]):
                pair_where[q].discard(wi)
            seqs[wi] = out
            for q in zip(out, out[1:]):
                pair_count[q] += f
                pair_where[q].add(wi)
                changed.add(q)
        for q in changed:
            c = pair_count[q]
            if c > 0:
                heapq.heappush(heap, (-c, q))
            else:
                pair_count.pop(q, None)
        pair_count.pop(p, None)
    return merges


class BPETokenizer:
    """Encoder for the tokenizer.json this script writes (no BOS added here)."""

    def __init__(self, merges):
        self.vocab = {B2U[b]: b for b in range(256)}
        for a, b in merges:
            self.vocab[a + b] = len(self.vocab)
        self.vocab[BOS] = len(self.vocab)
        self.vocab[EOS] = len(self.vocab)
        self.merges = merges
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.inv = {i: s for s, i in self.vocab.items()}
        self.bos_id, self.eos_id = self.vocab[BOS], self.vocab[EOS]
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            a, b = self.merges[best]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        out = []
        for w in pretokenize(text):
            out.extend(self.bpe(w))
        return out

    def decode_bytes(self, ids):
        return b"".join(bytes(U2B[c] for c in self.inv[i]) if i < self.bos_id
                        else self.inv[i].encode() for i in ids)

    def tokenizer_json(self):
        specials = [{"id": self.bos_id, "content": BOS, "single_word": False, "lstrip": False,
                     "rstrip": False, "normalized": False, "special": True},
                    {"id": self.eos_id, "content": EOS, "single_word": False, "lstrip": False,
                     "rstrip": False, "normalized": False, "special": True}]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": specials,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False}]},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": BOS, "type_id": 0}},
                         {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": BOS, "type_id": 1}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {BOS: {"id": BOS, "ids": [self.bos_id], "tokens": [BOS]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab_without_specials(),
                      "merges": [[a, b] for a, b in self.merges]},
        }

    def vocab_without_specials(self):
        # HF Llama 3 lists the specials in both model.vocab and added_tokens; the
        # model vocab here holds bytes + merges, the specials are added tokens.
        return {s: i for s, i in self.vocab.items() if i < self.bos_id}

    def tokenizer_config(self):
        return {
            "added_tokens_decoder": {str(self.bos_id): {"content": BOS, "lstrip": False,
                                                        "normalized": False, "rstrip": False,
                                                        "single_word": False, "special": True},
                                     str(self.eos_id): {"content": EOS, "lstrip": False,
                                                        "normalized": False, "rstrip": False,
                                                        "single_word": False, "special": True}},
            "bos_token": BOS,
            "eos_token": EOS,
            "add_bos_token": True,
            "add_eos_token": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 256,
            "tokenizer_class": "PreTrainedTokenizerFast",
        }


def load_tokenizer(path):
    with open(path) as f:
        j = json.load(f)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))
              for m in j["model"]["merges"]]
    t = BPETokenizer(merges)
    assert t.vocab_without_specials() == j["model"]["vocab"], "tokenizer.json vocab mismatch"
    return t


# --------------------------------------------------------------------- model

class LlamaConfig:
    def __init__(self, **kw):
        self.vocab_size = 4096
        self.hidden_size = 256
        self.intermediate_size = 704
        self.num_hidden_layers = 6
        self.num_attention_heads = 8
        self.num_key_value_heads = 2
        self.head_dim = 32
        self.max_position_embeddings = 256
        self.rms_norm_eps = 1e-5
        self.rope_theta = 10000.0
        self.initializer_range = 0.02
        self.bos_token_id = 4094
        self.eos_token_id = 4095
        self.__dict__.update(kw)

    def hf(self):
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "mlp_bias": False,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": None,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": False,
            "torch_dtype": "float32",
            "transformers_version": "4.44.0",
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        h = x.to(torch.float32) if dt != torch.float64 else x
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dt)


def rope_cos_sin(cfg, T, dtype):
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    pos = torch.arange(T, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, KV, D, E = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size
        self.q_proj = nn.Linear(E, H * D, bias=False)
        self.k_proj = nn.Linear(E, KV * D, bias=False)
        self.v_proj = nn.Linear(E, KV * D, bias=False)
        self.o_proj = nn.Linear(H * D, E, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, KV, D = self.cfg.num_attention_heads, self.cfg.num_key_value_heads, self.cfg.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, KV, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, KV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D)) + mask
        att = torch.softmax(att.float(), dim=-1).to(q.dtype)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        return self.o_proj(y)


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        E, I = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj = nn.Linear(E, I, bias=False)
        self.up_proj = nn.Linear(E, I, bias=False)
        self.down_proj = nn.Linear(I, E, bias=False)

    def forward(self, h):
        return self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = Mlp(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    """State-dict names are Hugging Face's (model.layers.0.self_attn.q_proj.weight, ...)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def init_weights(self, generator):
        std = self.cfg.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                continue
            s = std
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                s = std / math.sqrt(2 * self.cfg.num_hidden_layers)
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * s)

    def forward(self, idx):
        B, T = idx.shape
        x = self.model.embed_tokens(idx)
        cos, sin = rope_cos_sin(self.cfg, T, x.dtype)
        mask = torch.full((T, T), float("-inf"), dtype=x.dtype).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def save_safetensors(model, path):
    tensors = {k: v.detach().to(torch.float32).contiguous().cpu()
               for k, v in model.state_dict().items()}
    header = {"__metadata__": {"format": "pt"}}
    offset, blobs = 0, []
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
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


def load_model(out_dir):
    with open(os.path.join(out_dir, "config.json")) as f:
        c = json.load(f)
    keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
            "rms_norm_eps", "rope_theta", "bos_token_id", "eos_token_id"]
    cfg = LlamaConfig(**{k: c[k] for k in keys})
    model = LlamaForCausalLM(cfg)
    with open(os.path.join(out_dir, "model.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    sd = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        a, b = info["data_offsets"]
        sd[name] = torch.from_numpy(np.frombuffer(blob[8 + n + a:8 + n + b], dtype="<f4")
                                    .reshape(info["shape"]).copy())
    model.load_state_dict(sd, strict=True)
    return model


# ------------------------------------------------------------- train / eval

def eval_windows(tokens, n_text):
    """Consecutive non-overlapping windows of n_text tokens (last partial one kept)."""
    return [tokens[i:i + n_text] for i in range(0, len(tokens), n_text)]


@torch.no_grad()
def evaluate(model, tok, tokens, batch=32):
    """(nats/token, bits/byte, n_tokens, n_bytes) with BOS-prefixed windows."""
    model.eval()
    n_text = model.cfg.max_position_embeddings - 1
    ws = eval_windows(tokens, n_text)
    full = [w for w in ws if len(w) == n_text]
    part = [w for w in ws if len(w) != n_text]
    total, count = 0.0, 0
    for group in [full[i:i + batch] for i in range(0, len(full), batch)] + [[p] for p in part]:
        x = torch.tensor([[tok.bos_id] + w for w in group], dtype=torch.long)
        logits = model(x[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                                 x[:, 1:].reshape(-1), reduction="sum").item()
        count += x[:, 1:].numel()
    n_bytes = len(tok.decode_bytes(tokens))
    return total / count, total / math.log(2) / n_bytes, count, n_bytes


def lr_at(step, steps, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


def train(args, cfg, tok, train_tokens, val_tokens):
    g = torch.Generator().manual_seed(args.seed)
    model = LlamaForCausalLM(cfg)
    model.init_weights(g)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"params {n_params}  train {len(train_tokens)} tokens  val {len(val_tokens)} tokens")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    data = torch.tensor(train_tokens, dtype=torch.long)
    T = cfg.max_position_embeddings - 1  # text tokens per sequence, after BOS
    # Verse starts: positions whose previous token ends in "\n".
    nl = {i for s, i in tok.vocab.items() if i < tok.bos_id and s.endswith(B2U[10])}
    starts = [0] + [i + 1 for i, t in enumerate(train_tokens[:-T - 1]) if t in nl]
    starts = torch.tensor(starts, dtype=torch.long)
    log(f"verse starts {len(starts)}")
    val_probe = val_tokens[:16 * T]
    bos = torch.full((args.batch, 1), tok.bos_id, dtype=torch.long)
    t0 = time.time()
    run, history = None, []
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.lr * args.lr_floor)
        for group in opt.param_groups:
            group["lr"] = lr
        pick = starts[torch.randint(0, len(starts), (args.batch,), generator=g)]
        xb = torch.cat([bos, torch.stack([data[s:s + T] for s in pick.tolist()])], dim=1)
        model.train()
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        run = loss.item() if run is None else 0.95 * run + 0.05 * loss.item()
        if step < 5 or (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            line = {"step": step + 1, "lr": round(lr, 6), "loss": round(loss.item(), 4),
                    "train_ema": round(run, 4), "elapsed_s": round(time.time() - t0, 1)}
            if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                line["val_probe"] = round(evaluate(model, tok, val_probe)[0], 4)
            history.append(line)
            log(json.dumps(line))
        if args.partial_every and (step + 1) % args.partial_every == 0 and step + 1 < args.steps:
            save_safetensors(model, os.path.join(args.out, "model.partial.safetensors"))
    return model, time.time() - t0, run, history


@torch.no_grad()
def sample(model, tok, prompt, n_new=100, temperature=0.8, seed=0):
    model.eval()
    g = torch.Generator().manual_seed(seed)
    idx = [tok.bos_id] + tok.encode(prompt)
    n0 = len(idx)
    for _ in range(n_new):
        x = torch.tensor([idx[-model.cfg.max_position_embeddings:]], dtype=torch.long)
        logits = model(x)[0, -1].double()
        if temperature <= 0:
            nxt = int(torch.argmax(logits))
        else:
            nxt = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=g))
        idx.append(nxt)
        if nxt == tok.eos_id:
            break
    return prompt + tok.decode_bytes(idx[n0:]).decode("utf-8", errors="replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "kjv-llama"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="final lr / peak lr")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; on the shared 2-core machine 1 was ~3x faster than 2")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--partial-every", type=int, default=100)
    ap.add_argument("--tokenizer-only", action="store_true")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--sample", metavar="PROMPT")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--n-new", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    tj = os.path.join(args.out, "tokenizer.json")

    if args.sample is not None:
        model, tok = load_model(args.out), load_tokenizer(tj)
        print(sample(model, tok, args.sample, args.n_new, args.temperature, args.seed))
        return

    import charlm
    train_text, val_text = (b.decode("ascii") for b in charlm.load_kjv(VAL_FIRST_BOOK,
                                                                       "train_kjv_llama"))
    log(f"text: train {len(train_text)} B, val {len(val_text)} B")
    if args.eval_only:
        tok = load_tokenizer(tj)
    else:
        t0 = time.time()
        merges = train_bpe(train_text, 4096)
        tok = BPETokenizer(merges)
        log(f"tokenizer: {len(merges)} merges in {time.time() - t0:.1f} s")
        with open(tj, "w") as f:
            json.dump(tok.tokenizer_json(), f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
            json.dump(tok.tokenizer_config(), f, indent=1)
            f.write("\n")
        tok = load_tokenizer(tj)
    t0 = time.time()
    train_tokens, val_tokens = tok.encode(train_text), tok.encode(val_text)
    assert tok.decode_bytes(val_tokens) == val_text.encode()
    log(f"encoded in {time.time() - t0:.1f} s: train {len(train_tokens)} tokens "
        f"({len(train_text) / len(train_tokens):.3f} B/token), val {len(val_tokens)} tokens "
        f"({len(val_text) / len(val_tokens):.3f} B/token)")
    if args.tokenizer_only:
        return

    result = {"tokenizer": {"vocab_size": 4096, "merges": len(tok.merges),
                            "train_tokens": len(train_tokens), "val_tokens": len(val_tokens),
                            "train_bytes_per_token": len(train_text) / len(train_tokens),
                            "val_bytes_per_token": len(val_text) / len(val_tokens)}}
    path = os.path.join(args.out, "model.safetensors")
    if args.eval_only:
        model = load_model(args.out)
    else:
        cfg = LlamaConfig()
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(cfg.hf(), f, indent=2)
            f.write("\n")
        with open(os.path.join(args.out, "generation_config.json"), "w") as f:
            json.dump({"bos_token_id": cfg.bos_token_id, "eos_token_id": cfg.eos_token_id,
                       "do_sample": True, "temperature": 0.8,
                       "transformers_version": "4.44.0"}, f, indent=2)
            f.write("\n")
        model, secs, ema, history = train(args, cfg, tok, train_tokens, val_tokens)
        save_safetensors(model, path + ".tmp")
        os.replace(path + ".tmp", path)
        partial = os.path.join(args.out, "model.partial.safetensors")
        if os.path.exists(partial):
            os.remove(partial)
        result["training"] = {k: getattr(args, k) for k in
                              ("steps", "batch", "lr", "lr_floor", "warmup", "weight_decay",
                               "clip", "seed", "threads")}
        result["training"].update(seq_len=cfg.max_position_embeddings, seconds=round(secs, 1),
                                  final_train_loss_ema=round(ema, 4), log=history)
        model = load_model(args.out)  # evaluate what was written
    result["params"] = sum(p.numel() for p in model.parameters())
    for name, toks in (("val", val_tokens), ("train_head", train_tokens[:len(val_tokens)])):
        nats, bpb, n, nb = evaluate(model, tok, toks)
        result[name] = {"tokens": n, "bytes": nb, "nats_per_token": nats,
                        "bits_per_byte": bpb, "perplexity": math.exp(nats)}
        log(name, json.dumps(result[name]))
    with open(os.path.join(args.out, "eval.json" if args.eval_only else "train-log.json"),
              "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    for temp in (0.0, 0.8):
        log(f"--- sample, temperature {temp} ---")
        log(sample(model, tok, "In the beginning", args.n_new, temp, args.seed))


if __name__ == "__main__":
    main()
