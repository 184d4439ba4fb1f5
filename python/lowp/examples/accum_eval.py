"""What a narrow GEMM accumulator does to the embedded model's loss: evaluate
CharLM (models/kjv-char) with every linear layer's operands fake-quantized to
MXFP8 E4M3 and its products summed by lowp.torch.matmul_acc in a chosen
accumulator, and compare the validation loss with fp32 accumulation.

    PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m lowp.examples.accum_eval
    ... --bytes 600 --widths 23,7 --promote 0 --roundings rne      # a quick run

Every nn.Linear (attention c_attn and c_proj, MLP c_fc and c_proj, lm_head):
x and W are fake-quantized to `--format` along K (the reduction dimension,
blocks of 32 for MX), y = matmul_acc(xq, Wq, acc) + bias (the bias is added
in fp32 afterwards). Embeddings, LayerNorm, softmax and the attention matmuls
(q k^T, att v) stay fp32. Accumulators: each mantissa width in --widths (23
is fp32's), each promotion interval in --promote (0: never), each rounding in
--roundings (rne: nearest-even, zero: truncation). The reference is
Accumulator() -- mantissa_bits 23, nearest-even, no promotion: the sequential
fp32 loop; the table also shows the unquantized model and MXFP8 operands
with torch.matmul's own (blocked) fp32 summation.

Validation loss: mean cross-entropy (nats per byte) over non-overlapping
n_ctx windows of the first --bytes of models/kjv-char/val.txt, each window
predicting its bytes 1..n-1 (the training example's val_loss).

The emulated GEMM's cost: one matmul_acc against torch.matmul on the shapes
of the model's MLP layers for a batch of --batch windows, same threads.

--train-steps N (0: none) also trains the architecture from scratch on the
KJV (the training split of lowp.examples.train, Genesis to Philemon; AdamW,
warmup then cosine decay to a tenth, gradient clipping at 1) once per
accumulator in --train-accumulators: the forward GEMMs of every linear layer
take MXFP8 operands and the emulated accumulator; the backward GEMMs are
plain fp32 products of the same quantized operands (straight-through). Same
seed and batches for every accumulator; the validation loss is then measured
as above, in the accumulator the model was trained with.

Prints markdown tables; --json writes the numbers.
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
    from .train import window_loss
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import charlm
    from train import window_loss


def find_model_dir():
    """models/kjv-char in the lowp checkout this file sits in (source or build tree)."""
    here = os.path.dirname(os.path.abspath(__file__))
    while True:
        candidate = os.path.join(here, "models", "kjv-char")
        if os.path.exists(os.path.join(candidate, "model.safetensors")):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


class Setting:
    """What every EmulatedLinear of a model does now (shared, switched between runs)."""

    def __init__(self):
        self.format = None  # None: fp32 operands
        self.accumulator = None  # None: torch.matmul


class EmulatedMatmul(torch.autograd.Function):
    """y = xq wq^T summed in `acc` (torch.matmul when None), xq and wq the
    quantized x and w. The gradients of x and w are fp32 products of the same
    quantized operands (straight-through for the quantizers)."""

    @staticmethod
    def forward(ctx, x, w, xq, wq, acc):
        ctx.save_for_backward(xq, wq)
        return xq @ wq.t() if acc is None else lt.matmul_acc(xq, wq, acc)

    @staticmethod
    def backward(ctx, grad_y):
        xq, wq = ctx.saved_tensors
        grad_x = grad_y @ wq
        grad_w = grad_y.reshape(-1, wq.shape[0]).t() @ xq.reshape(-1, wq.shape[1])
        return grad_x, grad_w, None, None, None


class EmulatedLinear(nn.Module):
    """An nn.Linear's parameters with quantized operands and an emulated accumulator."""

    def __init__(self, linear, setting):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias
        self.setting = setting
        self._cache = (None, None)  # ((format, weight version), fake-quantized weight)

    def quantized_weight(self, fmt):
        key = (fmt, self.weight._version)  # the optimizer's in-place steps bump the version
        if self._cache[0] != key:
            self._cache = (key, lt.fake_quant(self.weight.detach(), fmt, axis=-1))
        return self._cache[1]

    def forward(self, x):
        s = self.setting
        if s.format is None and s.accumulator is None:
            y = x @ self.weight.t()
        else:
            xq = x.detach() if s.format is None else lt.fake_quant(x, s.format, axis=-1)
            wq = self.weight.detach() if s.format is None else self.quantized_weight(s.format)
            y = EmulatedMatmul.apply(x, self.weight, xq.contiguous(), wq, s.accumulator)
        return y if self.bias is None else y + self.bias


def emulate(model, setting):
    """Replaces every nn.Linear below model with an EmulatedLinear (in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Linear):
            setattr(model, name, EmulatedLinear(child, setting))
        else:
            emulate(child, setting)
    return model


def val_loss(model, val, n_ctx, batch=32):
    """(mean loss in nats per byte, predicted bytes): train.window_loss."""
    return window_loss(model, val, n_ctx, batch)


def time_gemm(fmt, acc, tokens, d_model, d_ff, repeats):
    """Seconds per call of matmul_acc and of torch.matmul on the MLP's two
    shapes (x [tokens, d] W^T with W [d_ff, d], then [tokens, d_ff] x [d, d_ff]^T)."""
    g = torch.Generator().manual_seed(0)
    shapes = [(tokens, d_model, d_ff), (tokens, d_ff, d_model)]
    out = {"acc": 0.0, "torch": 0.0, "products": 0}
    for m, k, n in shapes:
        a = lt.fake_quant(torch.randn(m, k, generator=g), fmt, axis=-1)
        b = lt.fake_quant(torch.randn(n, k, generator=g), fmt, axis=-1)
        for key, fn in (("acc", lambda: lt.matmul_acc(a, b, acc)), ("torch", lambda: a @ b.t())):
            fn()  # warm up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            out[key] += best
        out["products"] += m * k * n
    return out


def parse_accumulator(text):
    """"bits:promote:rounding", e.g. "13:128:zero"."""
    try:
        bits, promote, rounding = text.split(":")
        return lt.Accumulator(int(bits), int(promote), rounding)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"accum_eval: bad accumulator {text!r} (bits:promote:rounding): {e}")


def lr_at(step, steps, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


def train_compare(args, val):
    """Trains CharLM from scratch once per accumulator; returns a row per run."""
    train_data, _ = charlm.load_kjv("Heb", "accum_eval")
    data = torch.frombuffer(bytearray(train_data), dtype=torch.uint8)
    rows = []
    for acc in [parse_accumulator(t) for t in args.train_accumulators.split(",")]:
        torch.manual_seed(args.seed)
        cfg = charlm.Config()
        setting = Setting()
        model = emulate(charlm.CharLM(cfg), setting)
        setting.format, setting.accumulator = args.format, acc
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
        gen = torch.Generator().manual_seed(args.seed + 1)  # the same batches for every run
        t0 = time.perf_counter()
        model.train()
        ema = None
        for step in range(args.train_steps):
            lr = lr_at(step, args.train_steps, args.lr, args.warmup, 0.1 * args.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            starts = torch.randint(0, len(data) - cfg.n_ctx - 1, (args.train_batch,), generator=gen)
            seq = torch.stack([data[i:i + cfg.n_ctx + 1] for i in starts.tolist()]).long()
            logits = model(seq[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            if (step + 1) % 50 == 0:
                print(f"  train {acc}: step {step + 1} loss (ema) {ema:.4f} "
                      f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        model.eval()
        loss, tokens = val_loss(model, val, cfg.n_ctx, args.batch)
        rows.append({"accumulator": str(acc), "mantissa_bits": acc.mantissa_bits,
                     "promote_every": acc.promote_every, "rounding": acc.rounding,
                     "final_train_loss_ema": ema, "val_loss": loss, "tokens": tokens,
                     "seconds": time.perf_counter() - t0})
        print(f"  train {acc}: val {loss:.4f}", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint (default models/kjv-char/model.safetensors)")
    ap.add_argument("--val", default=None, help="validation text (default models/kjv-char/val.txt)")
    ap.add_argument("--bytes", type=int, default=24576, help="first bytes of the text evaluated")
    ap.add_argument("--format", default="mxfp8_e4m3", help="operand format (a lowp format name)")
    ap.add_argument("--widths", default="23,16,13,10,7", help="accumulator mantissa bits")
    ap.add_argument("--promote", default="0,128,32", help="promotion intervals (0: never)")
    ap.add_argument("--roundings", default="rne,zero")
    ap.add_argument("--batch", type=int, default=32, help="windows per forward pass")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--timing-repeats", type=int, default=3, help="0: skip the GEMM timing")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--skip-eval", action="store_true", help="only the training runs")
    ap.add_argument("--train-steps", type=int, default=0, help="0: no training runs")
    ap.add_argument("--train-accumulators", default="23:0:rne,13:0:zero,7:0:zero,7:32:zero",
                    help="bits:promote:rounding, comma-separated")
    ap.add_argument("--train-batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    model_dir = find_model_dir()
    model_path = args.model or (model_dir and os.path.join(model_dir, "model.safetensors"))
    val_path = args.val or (model_dir and os.path.join(model_dir, "val.txt"))
    if not model_path or not os.path.exists(model_path):
        raise SystemExit("accum_eval: no model: pass --model (models/kjv-char/model.safetensors)")
    if not val_path or not os.path.exists(val_path):
        raise SystemExit("accum_eval: no validation text: pass --val (models/kjv-char/val.txt)")
    with open(val_path, "rb") as f:
        val = f.read()[:args.bytes]

    results = {"bytes": len(val), "format": args.format, "threads": torch.get_num_threads()}
    if not args.skip_eval:
        results.update(evaluate(args, model_path, val, os.path.basename(val_path)))
    if args.train_steps > 0:
        rows = train_compare(args, val)
        results["training"] = {"steps": args.train_steps, "batch": args.train_batch,
                               "lr": args.lr, "seed": args.seed, "rows": rows}
        reference = rows[0]["val_loss"]
        print(f"\nTraining from scratch, {args.train_steps} steps of {args.train_batch} windows, "
              f"{args.format} forward operands; validation loss on the first {len(val)} bytes "
              f"of {os.path.basename(val_path)} in the same accumulator:\n")
        print("| accumulator (training and evaluation) | final training loss (EMA) | validation loss "
              f"| vs {rows[0]['accumulator']} |")
        print("|---|---|---|---|")
        for row in rows:
            print(f"| {row['accumulator']} | {row['final_train_loss_ema']:.4f} | "
                  f"{row['val_loss']:.4f} | {100 * (row['val_loss'] - reference) / reference:+.2f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def evaluate(args, model_path, val, val_name):
    """The inference table: the checkpoint under every accumulator."""
    model = charlm.load_safetensors(model_path)
    model.eval()
    cfg = model.cfg
    if len(val) < cfg.n_ctx:
        raise SystemExit(f"accum_eval: --bytes {args.bytes} is less than one window ({cfg.n_ctx})")
    setting = Setting()
    emulate(model, setting)

    accumulators = [lt.Accumulator(int(w), int(p), r)
                    for w in args.widths.split(",")
                    for p in args.promote.split(",")
                    for r in args.roundings.split(",")]
    reference_acc = lt.Accumulator()
    if reference_acc not in accumulators:
        accumulators.insert(0, reference_acc)

    rows = []

    def run(label, fmt, acc):
        setting.format, setting.accumulator = fmt, acc
        t0 = time.perf_counter()
        loss, tokens = val_loss(model, val, cfg.n_ctx, args.batch)
        seconds = time.perf_counter() - t0
        row = {"label": label, "format": fmt, "loss": loss, "tokens": tokens, "seconds": seconds}
        if acc is not None:
            row.update(mantissa_bits=acc.mantissa_bits, promote_every=acc.promote_every,
                       rounding=acc.rounding)
        rows.append(row)
        print(f"  {label}: {loss:.6f} nats/byte ({seconds:.1f} s)", file=sys.stderr, flush=True)
        return loss

    print(f"accum_eval: {len(val)} bytes, {args.format} operands, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)
    run("fp32 model (no quantization, torch.matmul)", None, None)
    run(f"{args.format} operands, torch.matmul", args.format, None)
    reference = None
    for acc in accumulators:
        loss = run(str(acc), args.format, acc)
        if acc == reference_acc:
            reference = loss
    for row in rows:
        row["vs_fp32_acc_percent"] = 100.0 * (row["loss"] - reference) / reference

    timing = None
    if args.timing_repeats > 0:
        tokens = args.batch * (cfg.n_ctx - 1)
        timing = time_gemm(args.format, lt.Accumulator(13, 128, "zero"), tokens, cfg.d_model,
                           cfg.d_ff, args.timing_repeats)
        timing["tokens"] = tokens

    print(f"\nValidation loss, first {len(val)} bytes of {val_name} "
          f"({rows[0]['tokens']} predicted bytes), {args.format} operands along K:\n")
    print("| accumulator | mantissa bits | promote every | rounding | loss (nats/byte) "
          "| vs fp32 accumulation |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        if "mantissa_bits" in row:
            name = "fp32" if row["mantissa_bits"] == 23 else f"e8m{row['mantissa_bits']}"
            promote = row["promote_every"] or "never"
            print(f"| {name} | {row['mantissa_bits']} | {promote} | {row['rounding']} | "
                  f"{row['loss']:.5f} | {row['vs_fp32_acc_percent']:+.3f}% |")
        else:
            print(f"| {row['label']} | | | | {row['loss']:.5f} | "
                  f"{row['vs_fp32_acc_percent']:+.3f}% |")
    if timing:
        ratio = timing["acc"] / timing["torch"]
        print(f"\nGEMM cost ({timing['tokens']} tokens, the MLP's two matmuls, "
              f"{torch.get_num_threads()} threads): matmul_acc {timing['acc'] * 1e3:.1f} ms "
              f"({timing['acc'] * 1e9 / timing['products']:.2f} ns per product), torch.matmul "
              f"{timing['torch'] * 1e3:.2f} ms: {ratio:.0f}x")
    return {"rows": rows, "timing": timing}


if __name__ == "__main__":
    main()
