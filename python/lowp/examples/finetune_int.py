"""Integer fine-tuning with integer forward and backward propagation, after
"Towards Fine-tuning Pre-trained Language Models with Integer Forward and
Backward Propagation" (Tayaranian et al., 2023): fine-tune lowp's embedded
model (models/kjv-char, trained on Genesis..Acts) on the Pauline epistles
(Romans..Philemon, which it never saw) with the linear, LayerNorm and
embedding layers computed on integers -- int8 or int16 with a dynamic
per-tensor scale, in the forward pass and for the gradients -- and compare the
validation loss on Hebrews..Revelation with FP32 fine-tuning.

    PYTHONPATH=build/python /usr/bin/python3 -m lowp.examples.finetune_int \\
        --recipes fp32,int16,int8 --steps 300 --out runs/int

What is integer here (emulated exactly: every operand is an integer code times
one fp32 scale per tensor, scale = qmax / amax of the tensor at that moment):
  * linear layers: x, W, dy in both backward matmuls (lowp.torch.Linear with
    every role int8_sym / int16_sym per tensor); an int8 x int8 product
    summed over K <= 512 is exact in fp32 (< 2^24), int16 sums are rounded
    once per addition by fp32 (an int32/int64 accumulator would be exact);
  * LayerNorm: its input, weight and bias are integer codes (statistics from
    the codes; the normalization itself in fp32) and the gradient reaching it
    is quantized before its backward;
  * embeddings: the table rows looked up are integer codes, and the gradient
    that updates the table is quantized.
Softmax, GELU, the loss and the optimizer (AdamW, fp32 master weights) stay
fp32, as in the paper.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import lowp.torch as lt  # noqa: E402

try:
    from . import charlm
    from .train import val_loss, lr_at
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import charlm
    from train import val_loss, lr_at

FORMATS = {"int8": "int8_sym", "int16": "int16_sym"}


def int_spec(fmt):
    q = lt.QuantSpec(fmt, per_tensor=True)
    return lt.LinearSpec(weight=q, input=q, grad_output=q, weight_bwd=q, input_bwd=q,
                         name=fmt)


def _q(t, fmt, name):
    return lt.fake_quant_per_tensor(t, fmt, name=name)


class _QuantGrad(torch.autograd.Function):
    """Identity forward; the gradient is quantized on its way back."""

    @staticmethod
    def forward(ctx, x, fmt, name):
        ctx.fmt, ctx.name = fmt, name
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return _q(g, ctx.fmt, ctx.name + " grad"), None, None


def _ste(t, fmt, name):
    """t's integer codes times its scale forward, t's gradient backward."""
    return t + (_q(t, fmt, name) - t).detach()


class IntLayerNorm(nn.Module):
    def __init__(self, ln, fmt, name):
        super().__init__()
        self.ln, self.fmt, self.name = ln, fmt, name

    def forward(self, x):
        y = F.layer_norm(_ste(x, self.fmt, self.name + " input"), self.ln.normalized_shape,
                         _ste(self.ln.weight, self.fmt, self.name + " weight"),
                         _ste(self.ln.bias, self.fmt, self.name + " bias"), self.ln.eps)
        return _QuantGrad.apply(y, self.fmt, self.name)


class IntEmbedding(nn.Module):
    def __init__(self, emb, fmt, name):
        super().__init__()
        self.emb, self.fmt, self.name = emb, fmt, name

    def forward(self, idx):
        rows = F.embedding(idx, self.emb.weight)
        return _QuantGrad.apply(_ste(rows, self.fmt, self.name), self.fmt, self.name)


def integerize(model, fmt):
    """CharLM with every linear, LayerNorm and embedding layer on integers."""
    lt.convert(model, int_spec(fmt))
    for path, module in list(model.named_modules()):
        for name, child in list(module.named_children()):
            full = f"{path}.{name}" if path else name
            if isinstance(child, nn.LayerNorm):
                setattr(module, name, IntLayerNorm(child, fmt, full))
            elif isinstance(child, nn.Embedding):
                setattr(module, name, IntEmbedding(child, fmt, full))
    return model


def load_data():
    """(fine-tuning text Romans..Philemon, validation text Hebrews..Revelation)."""
    _, from_romans = charlm.load_kjv("Rom", "finetune_int")
    _, from_hebrews = charlm.load_kjv("Heb", "finetune_int")
    return from_romans[:len(from_romans) - len(from_hebrews)], from_hebrews


def finetune(name, args, train, val):
    torch.manual_seed(args.seed)
    model = charlm.load_safetensors(args.model)
    if name != "fp32":
        integerize(model, FORMATS[name])
    T = model.cfg.n_ctx
    before = val_loss(model, val, T)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    data = torch.frombuffer(bytearray(train), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(args.seed + 1)
    curve, val_curve = [], [(0, before)]
    start = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup, args.lr * 0.1)
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=gen)
        seq = torch.stack([data[s:s + T + 1] for s in starts.tolist()]).long()
        logits = model(seq[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append(loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            v = val_loss(model, val, T)
            val_curve.append((step + 1, v))
            print(f"  {name:6s} step {step + 1:4d}  train {loss.item():.4f}  val {v:.4f}  "
                  f"{time.time() - start:6.1f}s", flush=True)
    return {"recipe": name, "val_before": before, "final_val_loss": val_curve[-1][1],
            "seconds": time.time() - start, "train_curve": curve, "val_curve": val_curve}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipes", default="fp32,int16,int8")
    ap.add_argument("--model", default=None,
                    help="CharLM safetensors (default: models/kjv-char/model.safetensors of "
                         "the working directory or of the source tree)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--val-bytes", type=int, default=40000)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--out", default="finetune_int_out")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        args.steps, args.batch, args.eval_every, args.val_bytes = 2, 2, 2, 1000
    recipes = [r for r in args.recipes.split(",") if r]
    for r in recipes:
        if r != "fp32" and r not in FORMATS:
            raise SystemExit(f"finetune_int: unknown recipe {r!r} (fp32, int16, int8)")
    if args.model is None:
        here = os.path.dirname(os.path.abspath(__file__))
        candidates = [os.path.join("models", "kjv-char", "model.safetensors"),
                      os.path.join(here, "..", "..", "..", "models", "kjv-char",
                                   "model.safetensors")]
        args.model = next((c for c in candidates if os.path.exists(c)), candidates[0])
    if not os.path.exists(args.model):
        raise SystemExit(f"finetune_int: no model at {args.model} (--model PATH)")
    train, val = load_data()
    val = val[:args.val_bytes]
    torch.set_num_threads(1)
    results = [finetune(r, args, train, val) for r in recipes]
    base = next((r["final_val_loss"] for r in results if r["recipe"] == "fp32"), None)
    print("| fine-tuning | val loss before | after (nats/byte) | vs fp32 fine-tuning |")
    print("|---|---|---|---|")
    for r in results:
        rel = "" if base is None else f"{100 * (r['final_val_loss'] / base - 1):+.2f}%"
        print(f"| {r['recipe']} | {r['val_before']:.4f} | {r['final_val_loss']:.4f} | {rel} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f)
    return results


if __name__ == "__main__":
    main()
