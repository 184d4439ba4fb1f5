"""Tiny addition models: does the way numbers are tokenized decide how well a
small transformer learns to add? (issue 20's training experiment)

    PYTHONPATH=python nice -n 19 /usr/bin/python3 -m lowp.examples.arith \\
        --schemes l2r3,r2l3,digit,fone --seeds 1,2 --out build/arith
    ... -m lowp.examples.arith --smoke               # a few steps, for the tests

Pure PyTorch (Debian's 1.13 CPU build is enough); no lowp import.

Task: "a+b=" -> the decimal sum. Each operand's digit count is drawn uniformly
from 1..--max-digits, then the operand uniformly among the numbers with that
many digits (0 counts as a 1-digit number), so operands and sums have
different lengths and 3-digit groups taken from the left do not line up
between operands and answer. The test set (--test-size problems, drawn first
from its own seed) and the training stream (drawn per step, problems in the
test set rejected) are disjoint.

Schemes (how the text is cut into tokens):
  digit  one token per digit;
  l2r3   each digit run cut into groups of 3 from the left (123|456|7), as
         GPT-3.5/4's tokenizer does (Singh & Strouse 2024, "Tokenization
         counts");
  r2l3   groups of 3 from the right (1|234|567), as writing thousands
         separators forces;
  fone   each operand one token whose embedding is a learned [NUM] vector
         plus a learned linear map of its Fourier features cos/sin(2 pi x /
         10^k), k = 1..L (Zhou et al. 2025, "FoNE"); the answer is read from
         the hidden state at "=" as L digits, each a 10-way choice scored by
         the dot product of two learned output features with the digit's
         point on the circle, (cos, sin)(2 pi j / 10), j = 0..9, trained with
         cross-entropy per digit (the paper's decoding; it pads the features
         into the embedding where we map them linearly).

The three token schemes share everything but the vocabulary: "+", "=", the
digit groups, BOS and EOS. Sequences are BOS a + b = c EOS; the loss is on the
answer's tokens and EOS; the answer is generated greedily. All schemes use the
same model (Hugging Face LlamaForCausalLM as it computes: RMSNorm, RoPE in the
rotate_half convention, SiLU-gated MLP, no biases, untied head), optimizer
and steps x batch.

--export DIR writes each token-scheme model as a Hugging Face Llama directory
(config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
generation_config.json) that `lowp generate DIR "12+345=" -n 8
--temperature 0` runs. Its tokenizer.json is a byte-level BPE: a Split
pre-tokenizer whose regex cuts the digit runs into the scheme's groups (R2L
with a lookahead), then ByteLevel; the merges build every 2- and 3-digit
group from its digits. --lowp BIN checks that lowp generates what PyTorch
generates greedily on some test prompts.

Deterministic given the seeds, the thread count and the torch build.
"""

import argparse
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SCHEMES = ("l2r3", "r2l3", "digit", "fone")
BOS, EOS = "<|bos|>", "<|eos|>"

# ------------------------------------------------------------------ chunking


def chunk_l2r(digits, k=3):
    """Groups of k digits from the left; the last group may be shorter."""
    return [digits[i:i + k] for i in range(0, len(digits), k)]


def chunk_r2l(digits, k=3):
    """Groups of k digits from the right; the first group may be shorter."""
    head = len(digits) % k
    return ([digits[:head]] if head else []) + [digits[i:i + k] for i in range(head, len(digits), k)]


# The tokenizer.json Split patterns: every digit run cut into the scheme's
# groups, every other character alone. [0-9] rather than \d, which some
# engines take to mean every Unicode digit.
PATTERNS = {
    "digit": r"[0-9]|[^0-9]",
    "l2r3": r"[0-9]{1,3}|[^0-9]",
    "r2l3": r"[0-9]{1,3}(?=(?:[0-9]{3})*(?![0-9]))|[^0-9]",
}


def split_text(scheme, text):
    """The pieces a scheme cuts text into, by the chunking functions above
    (the regexes in PATTERNS are checked against this)."""
    out = []
    for run in re.findall(r"[0-9]+|[^0-9]", text):
        if not run[0].isdigit():
            out.append(run)
        elif scheme == "digit":
            out.extend(run)
        elif scheme == "l2r3":
            out.extend(chunk_l2r(run))
        elif scheme == "r2l3":
            out.extend(chunk_r2l(run))
        else:
            raise ValueError(f"arith: no text tokenization for scheme {scheme!r}")
    return out


class TokenScheme:
    """Vocabulary and encoder of a token scheme. Ids: the digits 0..9, "+",
    "=", then (grouped schemes) the 100 two-digit and 1000 three-digit
    strings in numeric order, then BOS and EOS."""

    def __init__(self, name):
        if name not in PATTERNS:
            raise ValueError(f"arith: {name!r} is not a token scheme ({', '.join(PATTERNS)})")
        self.name = name
        self.tokens = [str(d) for d in range(10)] + ["+", "="]
        if name != "digit":
            self.tokens += [f"{i:02d}" for i in range(100)] + [f"{i:03d}" for i in range(1000)]
        self.tokens += [BOS, EOS]
        self.id = {t: i for i, t in enumerate(self.tokens)}
        self.bos, self.eos = self.id[BOS], self.id[EOS]

    def encode(self, text):
        return [self.id[p] for p in split_text(self.name, text)]

    def decode(self, ids):
        return "".join(self.tokens[i] for i in ids if i not in (self.bos, self.eos))

    def merges(self):
        """BPE merges that build every group: "ab" from (a, b); "abc" from
        (ab, c) and from (a, bc), since which pair of "abc" merges first
        depends on the digits' ranks."""
        if self.name == "digit":
            return []
        m = [(s[0], s[1]) for s in self.tokens if len(s) == 2 and s.isdigit()]
        for s in self.tokens:
            if len(s) == 3 and s.isdigit():
                m += [(s[:2], s[2]), (s[0], s[1:])]
        return m

    def tokenizer_json(self):
        special = [{"id": self.id[t], "content": t, "single_word": False, "lstrip": False,
                    "rstrip": False, "normalized": False, "special": True} for t in (BOS, EOS)]
        # Digits, "+" and "=" are printable ASCII: GPT-2's byte-to-unicode
        # map leaves them as they are, so the vocabulary strings are the text.
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": special,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": PATTERNS[self.name]},
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
                "special_tokens": {BOS: {"id": BOS, "ids": [self.bos], "tokens": [BOS]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {t: i for i, t in enumerate(self.tokens) if t not in (BOS, EOS)},
                      "merges": [[a, b] for a, b in self.merges()]},
        }

    def tokenizer_config(self):
        entry = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                 "special": True}
        return {"added_tokens_decoder": {str(self.id[t]): {"content": t, **entry}
                                         for t in (BOS, EOS)},
                "bos_token": BOS, "eos_token": EOS, "add_bos_token": True,
                "add_eos_token": False, "clean_up_tokenization_spaces": False,
                "model_max_length": 64, "tokenizer_class": "PreTrainedTokenizerFast"}


# ---------------------------------------------------------------------- data


def draw_operand(g, max_digits):
    """A digit count uniform in 1..max_digits, then a number with that many
    digits (g: a random.Random)."""
    n = g.randint(1, max_digits)
    return g.randint(0 if n == 1 else 10 ** (n - 1), 10 ** n - 1)


def make_test_set(n, max_digits, seed):
    """n distinct problems (a, b)."""
    g = random.Random(seed)
    seen, out = set(), []
    while len(out) < n:
        p = (draw_operand(g, max_digits), draw_operand(g, max_digits))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


class TrainStream:
    """Training problems, drawn from the seed, never one of the test set."""

    def __init__(self, max_digits, seed, exclude):
        self.g = random.Random(seed)
        self.max_digits, self.exclude = max_digits, exclude

    def batch(self, n):
        out = []
        while len(out) < n:
            p = (draw_operand(self.g, self.max_digits), draw_operand(self.g, self.max_digits))
            if p not in self.exclude:
                out.append(p)
        return out


def answer_longer(a, b):
    return len(str(a + b)) > max(len(str(a)), len(str(b)))


# --------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    vocab_size: int = 14
    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 3
    num_attention_heads: int = 4
    max_position_embeddings: int = 32
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    def hf(self, bos, eos):
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": bos, "eos_token_id": eos, "head_dim": self.head_dim,
            "hidden_act": "silu", "hidden_size": self.hidden_size, "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings, "mlp_bias": False,
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_attention_heads, "pretraining_tp": 1,
            "rms_norm_eps": self.rms_norm_eps, "rope_scaling": None,
            "rope_theta": self.rope_theta, "tie_word_embeddings": False,
            "torch_dtype": "float32", "transformers_version": "4.44.0", "use_cache": True,
            "vocab_size": self.vocab_size,
        }


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d = c.hidden_size
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        # q k^T and att v: torch.matmul unless a module taking (a, b) is set
        # (lowp.examples.train sets lowp.torch.Matmul for quantized attention).
        self.qk_matmul = None
        self.av_matmul = None

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        H, D = self.c.num_attention_heads, self.c.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, H, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, H, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = (self.qk_matmul or torch.matmul)(q, k.transpose(-2, -1))
        att = torch.softmax(scores / math.sqrt(D) + mask, dim=-1)
        out = (self.av_matmul or torch.matmul)(att, v)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, H * D))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        d, i = c.hidden_size, c.intermediate_size
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, i, bias=False)
        self.mlp.up_proj = nn.Linear(d, i, bias=False)
        self.mlp.down_proj = nn.Linear(i, d, bias=False)
        self.input_layernorm = RMSNorm(d, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(d, c.rms_norm_eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        h = self.post_attention_layernorm(x)
        return x + self.mlp.down_proj(F.silu(self.mlp.gate_proj(h)) * self.mlp.up_proj(h))


class Llama(nn.Module):
    """LlamaForCausalLM's computation; parameter names are Hugging Face's
    (model.layers.0.self_attn.q_proj.weight, ..., lm_head.weight)."""

    def __init__(self, c, generator):
        super().__init__()
        self.c = c
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.model.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))
        self.model.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            std = 0.02
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                std /= math.sqrt(2 * c.num_hidden_layers)
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * std)

    def hidden(self, x):
        """Final-norm hidden states of embeddings x [B, T, d]."""
        T = x.shape[1]
        D = self.c.head_dim
        inv = 1.0 / (self.c.rope_theta ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((f, f), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        mask = torch.full((T, T), float("-inf")).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.model.norm(x)

    def forward(self, ids):
        return self.lm_head(self.hidden(self.model.embed_tokens(ids)))


class FoneModel(nn.Module):
    """The same Llama body over BOS [NUM a] + [NUM b] =, reading the answer's
    digits from the hidden state at "="."""

    BOS, PLUS, EQ, NUM = range(4)

    def __init__(self, c, n_digits, generator):
        super().__init__()
        self.n_digits = n_digits
        self.body = Llama(c, generator)  # vocab: BOS + = [NUM]; its lm_head unused
        self.fourier_in = nn.Linear(2 * n_digits, c.hidden_size, bias=False)
        self.digits_out = nn.Linear(c.hidden_size, 2 * n_digits, bias=False)
        with torch.no_grad():
            self.fourier_in.weight.copy_(torch.randn(self.fourier_in.weight.shape,
                                                     generator=generator) * 0.02)
            self.digits_out.weight.copy_(torch.randn(self.digits_out.weight.shape,
                                                     generator=generator) * 0.02)
        angle = 2 * math.pi * torch.arange(10, dtype=torch.float64) / 10
        self.register_buffer("circle", torch.stack([angle.cos(), angle.sin()], 1).float(),
                             persistent=False)
        self.register_buffer("periods", 10.0 ** torch.arange(1, n_digits + 1,
                                                             dtype=torch.float64),
                             persistent=False)

    def features(self, x):
        """FoNE of integers x [B]: (cos, sin)(2 pi x / 10^k), k = 1..n_digits, [B, 2n]."""
        a = 2 * math.pi * (x.double()[:, None] % self.periods) / self.periods
        return torch.stack([a.cos(), a.sin()], -1).reshape(x.shape[0], -1).float()

    def forward(self, a, b):
        """Digit logits [B, n_digits, 10], least significant digit first."""
        B = a.shape[0]
        emb = self.body.model.embed_tokens.weight
        seq = torch.stack([emb[self.BOS].expand(B, -1),
                           emb[self.NUM] + self.fourier_in(self.features(a)),
                           emb[self.PLUS].expand(B, -1),
                           emb[self.NUM] + self.fourier_in(self.features(b)),
                           emb[self.EQ].expand(B, -1)], 1)
        h = self.body.hidden(seq)[:, -1]
        return self.digits_out(h).view(B, self.n_digits, 2) @ self.circle.t()


# ----------------------------------------------------------- train and test


def token_batch(scheme, problems):
    """Padded ids [B, T], targets [B, T] (-100 outside answer and EOS)."""
    rows = []
    for a, b in problems:
        prompt = [scheme.bos] + scheme.encode(f"{a}+{b}=")
        answer = scheme.encode(str(a + b)) + [scheme.eos]
        rows.append((prompt, answer))
    T = max(len(p) + len(q) for p, q in rows) - 1
    ids = torch.full((len(rows), T), scheme.eos, dtype=torch.long)
    tgt = torch.full((len(rows), T), -100, dtype=torch.long)
    for i, (p, q) in enumerate(rows):
        s = p + q
        ids[i, :len(s) - 1] = torch.tensor(s[:-1])
        tgt[i, len(p) - 1:len(s) - 1] = torch.tensor(q)
    return ids, tgt


def digit_targets(values, n_digits):
    v = torch.tensor(values, dtype=torch.long)
    return torch.stack([(v // 10 ** k) % 10 for k in range(n_digits)], 1)


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def build_model(scheme_name, args, seed):
    g = torch.Generator().manual_seed(seed)
    n_digits = args.max_digits + 1
    if scheme_name == "fone":
        c = ModelConfig(4, args.hidden, args.ffn, args.layers, args.heads, 8)
        return FoneModel(c, n_digits, g), None
    scheme = TokenScheme(scheme_name)
    longest = 2 * args.max_digits + 3 + n_digits + 1  # BOS a + b = c EOS, a digit a token
    c = ModelConfig(len(scheme.tokens), args.hidden, args.ffn, args.layers, args.heads,
                    1 << (longest - 1).bit_length())
    return Llama(c, g), scheme


def train(model, scheme, args, seed, test_set, log):
    stream = TrainStream(args.max_digits, 1000 + seed, set(test_set))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98),
                            weight_decay=args.weight_decay)
    t0, ema = time.time(), None
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        problems = stream.batch(args.batch)
        model.train()
        if scheme is None:
            a = torch.tensor([p[0] for p in problems])
            b = torch.tensor([p[1] for p in problems])
            logits = model(a, b)
            tgt = digit_targets([x + y for x, y in problems], model.n_digits)
            loss = F.cross_entropy(logits.reshape(-1, 10), tgt.reshape(-1))
        else:
            ids, tgt = token_batch(scheme, problems)
            logits = model(ids)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            log(f"  step {step + 1}/{args.steps} loss {ema:.4f} ({time.time() - t0:.0f} s)")
    return time.time() - t0, ema


@torch.no_grad()
def greedy(model, scheme, prompts, max_new, batch=500):
    """Greedy answers (strings) to prompt strings "a+b=" under a token scheme:
    prompts of one token length run as one batch, the whole sequence
    recomputed each step; a row stops at EOS or after max_new tokens."""
    model.eval()
    encoded = [[scheme.bos] + scheme.encode(p) for p in prompts]
    out = [None] * len(prompts)
    by_len = {}
    for i, e in enumerate(encoded):
        by_len.setdefault(len(e), []).append(i)
    for idx in by_len.values():
        for s in range(0, len(idx), batch):
            part = idx[s:s + batch]
            x = torch.tensor([encoded[i] for i in part])
            done = torch.zeros(len(part), dtype=torch.bool)
            new = []
            for _ in range(max_new):
                nxt = model(x)[:, -1].argmax(-1)
                new.append(torch.where(done, torch.full_like(nxt, scheme.eos), nxt))
                done |= nxt == scheme.eos
                x = torch.cat([x, nxt[:, None]], 1)
                if bool(done.all()):
                    break
            gen = torch.stack(new, 1).tolist()
            for row, i in zip(gen, part):
                row = row[:row.index(scheme.eos)] if scheme.eos in row else row
                out[i] = scheme.decode(row)
    return out


@torch.no_grad()
def fone_answers(model, problems, batch=1000):
    model.eval()
    out = []
    for s in range(0, len(problems), batch):
        part = problems[s:s + batch]
        logits = model(torch.tensor([p[0] for p in part]), torch.tensor([p[1] for p in part]))
        digits = logits.argmax(-1)
        scale = 10 ** torch.arange(model.n_digits)
        out += [str(int(v)) for v in (digits * scale).sum(1)]
    return out


def accuracy(problems, answers):
    """Exact-match accuracy overall and split by whether the answer has more
    digits than the longer operand."""
    res = {"all": [0, 0], "longer": [0, 0], "not_longer": [0, 0]}
    for (a, b), got in zip(problems, answers):
        ok = got == str(a + b)
        for k in ("all", "longer" if answer_longer(a, b) else "not_longer"):
            res[k][0] += ok
            res[k][1] += 1
    return {k: {"correct": c, "n": n, "acc": c / n if n else float("nan")}
            for k, (c, n) in res.items()}


# -------------------------------------------------------------------- export


def save_safetensors(model, path):
    tensors = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def export(model, scheme, out_dir, meta):
    os.makedirs(out_dir, exist_ok=True)

    def dump(name, obj):
        with open(os.path.join(out_dir, name), "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")

    dump("config.json", model.c.hf(scheme.bos, scheme.eos))
    dump("generation_config.json", {"bos_token_id": scheme.bos, "eos_token_id": scheme.eos,
                                    "do_sample": False})
    dump("tokenizer.json", scheme.tokenizer_json())
    dump("tokenizer_config.json", scheme.tokenizer_config())
    dump("arith.json", meta)
    save_safetensors(model, os.path.join(out_dir, "model.safetensors"))


def load_exported(model_dir):
    """(model, scheme) from a directory export() wrote."""
    with open(os.path.join(model_dir, "config.json")) as f:
        h = json.load(f)
    with open(os.path.join(model_dir, "tokenizer.json")) as f:
        pattern = json.load(f)["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    names = [k for k, v in PATTERNS.items() if v == pattern]
    if not names:
        raise ValueError(f"{model_dir}: the tokenizer is none of the schemes {', '.join(PATTERNS)}")
    c = ModelConfig(h["vocab_size"], h["hidden_size"], h["intermediate_size"],
                    h["num_hidden_layers"], h["num_attention_heads"],
                    h["max_position_embeddings"], h["rms_norm_eps"], h["rope_theta"])
    model = Llama(c, torch.Generator().manual_seed(0))
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    state = {}
    for name, info in header.items():
        if name != "__metadata__":
            a, b = info["data_offsets"]
            state[name] = torch.frombuffer(bytearray(blob[8 + n + a:8 + n + b]),
                                           dtype=torch.float32).reshape(info["shape"])
    model.load_state_dict(state, strict=True)
    return model, TokenScheme(names[0])


def verify(args, log):
    """--verify DIR: lowp's greedy answers against PyTorch's on test prompts."""
    model, scheme = load_exported(args.verify)
    test_set = make_test_set(args.test_size, args.max_digits, args.test_seed)
    sample = test_set[::max(1, len(test_set) // args.lowp_prompts)][:args.lowp_prompts]
    prompts = [f"{a}+{b}=" for a, b in sample]
    max_new = args.max_digits + 2
    ours = greedy(model, scheme, prompts, max_new)
    theirs = lowp_answers(args.lowp, args.verify, prompts, max_new)
    same = sum(x == y for x, y in zip(ours, theirs))
    right = sum(x == str(a + b) for x, (a, b) in zip(ours, sample))
    log(f"{args.verify}: lowp generate agrees with PyTorch on {same}/{len(prompts)} test "
        f"prompts ({right} of PyTorch's answers right)")
    for p, x, y in zip(prompts, ours, theirs):
        if x != y:
            log(f"  {p} PyTorch {x!r} lowp {y!r}")
    return same == len(prompts)


def lowp_answers(lowp, model_dir, prompts, max_new):
    """What `lowp generate DIR PROMPT -n max_new --temperature 0` answers."""
    out = []
    for p in prompts:
        r = subprocess.run([lowp, "generate", model_dir, p, "-n", str(max_new),
                            "--temperature", "0"], capture_output=True, text=True, check=True)
        text = r.stdout.rstrip("\n")
        if not text.startswith(p):
            raise RuntimeError(f"lowp generate printed {text!r} for the prompt {p!r}")
        out.append(text[len(p):])
    return out


# ---------------------------------------------------------------------- main


def run_one(scheme_name, seed, args, test_set, log):
    torch.manual_seed(seed)
    model, scheme = build_model(scheme_name, args, seed)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{scheme_name} seed {seed}: {n_params} parameters")
    seconds, loss = train(model, scheme, args, seed, test_set, log)
    max_new = args.max_digits + 2  # one token a digit, plus EOS
    if scheme is None:
        answers = fone_answers(model, test_set)
    else:
        answers = greedy(model, scheme, [f"{a}+{b}=" for a, b in test_set], max_new)
    result = {"scheme": scheme_name, "seed": seed, "params": n_params,
              "train_seconds": round(seconds, 1), "final_loss": round(loss, 5),
              "test": accuracy(test_set, answers)}
    if scheme is not None and args.export:
        out_dir = os.path.join(args.export, f"{scheme_name}-seed{seed}")
        export(model, scheme, out_dir, {"settings": vars(args), "result": result})
        result["export"] = out_dir
        if args.lowp:
            sample = list(range(0, len(test_set), max(1, len(test_set) // args.lowp_prompts)))
            sample = sample[:args.lowp_prompts]
            prompts = [f"{test_set[i][0]}+{test_set[i][1]}=" for i in sample]
            got = lowp_answers(args.lowp, out_dir, prompts, max_new)
            same = sum(g == answers[i] for g, i in zip(got, sample))
            result["lowp_agree"] = {"same": same, "n": len(sample)}
            log(f"  lowp generate agrees with PyTorch on {same}/{len(sample)} test prompts")
    t = result["test"]
    log(f"  test exact match {t['all']['acc']:.4f} (answer longer {t['longer']['acc']:.4f}, "
        f"not longer {t['not_longer']['acc']:.4f}) after {seconds:.0f} s")
    return result


def table(results):
    by = {}
    for r in results:
        by.setdefault(r["scheme"], []).append(r)
    lines = ["| scheme | seeds | all | answer longer | not longer |", "|---|---|---|---|---|"]

    def cell(rs, k):
        v = [100 * r["test"][k]["acc"] for r in rs]
        m = sum(v) / len(v)
        return f"{m:.1f}" + (f" ({min(v):.1f}-{max(v):.1f})" if len(v) > 1 else "")

    for name, rs in by.items():
        lines.append(f"| {name} | {len(rs)} | {cell(rs, 'all')} | {cell(rs, 'longer')} | "
                     f"{cell(rs, 'not_longer')} |")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemes", default=",".join(SCHEMES), help="comma list of " +
                    ", ".join(SCHEMES))
    ap.add_argument("--seeds", default="1", help="comma list of seeds (model init and data)")
    ap.add_argument("--max-digits", type=int, default=6)
    ap.add_argument("--test-size", type=int, default=2000)
    ap.add_argument("--test-seed", type=int, default=12345)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=192)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--log-every", type=int, default=500)
    ap.add_argument("--out", help="write OUT/results.json and OUT/results.md")
    ap.add_argument("--export", metavar="DIR",
                    help="write each token-scheme model as DIR/SCHEME-seedN (HF Llama)")
    ap.add_argument("--lowp", metavar="BIN", help="with --export or --verify: check `BIN "
                    "generate` against PyTorch's greedy answers")
    ap.add_argument("--verify", metavar="DIR", help="only check an exported directory with "
                    "--lowp on --lowp-prompts test prompts (same --max-digits, --test-*)")
    ap.add_argument("--lowp-prompts", type=int, default=20)
    ap.add_argument("--smoke", action="store_true",
                    help="a tiny configuration (a few steps, small test set), for the tests")
    args = ap.parse_args(argv)
    if args.smoke:
        args.steps, args.batch, args.test_size, args.warmup = 20, 16, 200, 5
        args.hidden, args.ffn, args.layers, args.log_every = 32, 64, 2, 10
    for name in args.schemes.split(","):
        if name not in SCHEMES:
            ap.error(f"--schemes: {name!r} is not one of {', '.join(SCHEMES)}")
    if args.max_digits < 1 or args.max_digits > 9:
        ap.error("--max-digits must be 1..9")
    if args.hidden % args.heads or (args.hidden // args.heads) % 2:
        ap.error("--hidden must be a multiple of --heads with an even head size")
    if args.lowp and not (args.export or args.verify):
        ap.error("--lowp needs --export or --verify")
    if args.verify and not args.lowp:
        ap.error("--verify needs --lowp")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(s):
        print(s, flush=True)

    if args.verify:
        return verify(args, log)
    test_set = make_test_set(args.test_size, args.max_digits, args.test_seed)
    n_longer = sum(answer_longer(a, b) for a, b in test_set)
    log(f"test set: {len(test_set)} problems, {n_longer} with an answer longer than both operands")
    results = [run_one(s, int(seed), args, test_set, log)
               for s in args.schemes.split(",") for seed in args.seeds.split(",")]
    md = table(results)
    log(md)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"settings": vars(args), "results": results}, f, indent=1)
        with open(os.path.join(args.out, "results.md"), "w") as f:
            f.write(md + "\n")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
