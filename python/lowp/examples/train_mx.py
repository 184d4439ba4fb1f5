"""The MX training result: train CharLM (charlm.py) from scratch on the King
James Bible with FP32 and with lowp.torch's recipes (mxfp8, mxfp6, mxfp4,
fp8-dynamic) -- same seed, data order and hyperparameters -- and compare the
final validation losses.

    PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m lowp.examples.train_mx
    ... -m lowp.examples.train_mx --smoke            # a few steps, for the tests

Every nn.Linear of the model (attention, MLP, lm_head) runs in the recipe's
formats, forward and backward (lowp.torch.convert); embeddings, LayerNorm,
softmax and the attention matmuls stay fp32.

Data: `bible -f gen1:1-rev22:21` (Debian bible-kjv), one verse per line with
its reference stripped; Genesis..Philemon train, Hebrews..Revelation validate
(the split of scripts/train_kjv.py). Validation loss: mean cross-entropy
(nats per byte) over non-overlapping n_ctx windows of the first --val-bytes
of the validation split, each window predicting its bytes 1..n-1, with the
model in its recipe's forward formats.

Writes OUT/results.json, OUT/loss.svg (training loss, smoothed, and
validation loss per recipe) and prints a markdown table.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import lowp.torch as lt  # noqa: E402

try:
    from . import charlm
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import charlm

VAL_FIRST_BOOK = "Heb"
RECIPE_ORDER = ["fp32", "mxfp8", "mxfp6", "mxfp4", "fp8-dynamic"]
COLORS = {"fp32": "#000000", "mxfp8": "#1f77b4", "mxfp6": "#2ca02c", "mxfp4": "#d62728",
          "fp8-dynamic": "#9467bd", "mxfp8/rceil": "#17becf", "mxfp6/rceil": "#bcbd22"}


def load_kjv():
    """(train, val) as bytes: plain verses, one per line (charlm.load_kjv)."""
    return charlm.load_kjv(VAL_FIRST_BOOK, "train_mx")


def lr_at(step, steps, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def val_loss(model, val, n_ctx, batch=32):
    windows = [val[i:i + n_ctx] for i in range(0, len(val) - n_ctx + 1, n_ctx)]
    total, count = 0.0, 0
    model.eval()
    for i in range(0, len(windows), batch):
        x = torch.tensor([list(w) for w in windows[i:i + batch]], dtype=torch.long)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
    model.train()
    return total / count


def train_one(name, args, train_data, val_data, threads=None):
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    cfg = charlm.Config()
    spec = lt.recipe(name)
    if args.scale_rule != "floor":
        spec = lt.with_options(spec, scale_rule=args.scale_rule)
    model = lt.convert(charlm.CharLM(cfg), spec)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    data = torch.frombuffer(bytearray(train_data), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(args.seed + 1)  # the same batches for every recipe
    T = cfg.n_ctx
    label = name if args.scale_rule == "floor" or name == "fp32" else f"{name}/{args.scale_rule}"
    curve, val_curve = [], []
    start, cpu_start = time.time(), time.process_time()
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.lr * args.lr_floor)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=gen)
        seq = torch.stack([data[s:s + T + 1] for s in starts.tolist()]).long()
        logits = model(seq[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        curve.append(loss.item())
        last = step + 1 == args.steps
        if args.eval_every and ((step + 1) % args.eval_every == 0 or last):
            v = val_loss(model, val_data, T)
            val_curve.append((step + 1, v))
            print(f"  {label:12s} step {step + 1:5d}  train {loss.item():.4f}  val {v:.4f}  "
                  f"{time.time() - start:6.1f}s", flush=True)
    final = val_curve[-1][1] if val_curve else val_loss(model, val_data, T)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    return {"recipe": label, "final_val_loss": final, "seconds": seconds,
            "cpu_seconds": cpu_seconds, "threads": torch.get_num_threads(),
            "train_curve": curve, "val_curve": val_curve}


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_svg(path, results, steps):
    """Training loss (smoothed) and validation loss against step, one colour per recipe."""
    W, H, L, R, Tp, B = 720, 440, 60, 150, 30, 45
    series = [(r["recipe"], smooth(r["train_curve"], max(1, steps // 50))) for r in results]
    lo = min(min(s[max(0, len(s) // 10):] or s) for _, s in series)
    hi = max(max(s[max(0, len(s) // 10):] or s) for _, s in series)
    for r in results:
        for _, v in r["val_curve"]:
            lo, hi = min(lo, v), max(hi, v)
    hi += 0.05 * (hi - lo + 1e-9)
    lo -= 0.05 * (hi - lo + 1e-9)

    def px(step):
        return L + (W - L - R) * step / max(1, steps)

    def py(v):
        v = min(max(v, lo), hi)
        return Tp + (H - Tp - B) * (hi - v) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{L}" y="18" font-size="14">CharLM on KJV: training loss (smoothed, '
             f'lines) and validation loss (dots), nats/byte</text>']
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        parts.append(f'<line x1="{L}" x2="{W - R}" y1="{py(v):.1f}" y2="{py(v):.1f}" '
                     f'stroke="#ddd"/><text x="{L - 6}" y="{py(v) + 4:.1f}" '
                     f'text-anchor="end">{v:.2f}</text>')
    for i in range(6):
        s = steps * i / 5
        parts.append(f'<text x="{px(s):.1f}" y="{H - B + 16}" text-anchor="middle">{int(s)}</text>')
    parts.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle">step</text>')
    parts.append(f'<rect x="{L}" y="{Tp}" width="{W - L - R}" height="{H - Tp - B}" '
                 f'fill="none" stroke="#888"/>')
    for k, (name, s) in enumerate(series):
        color = COLORS.get(name, "#888")
        pts = " ".join(f"{px(i + 1):.1f},{py(v):.1f}" for i, v in enumerate(s))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>')
        for step, v in results[k]["val_curve"]:
            parts.append(f'<circle cx="{px(step):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"/>')
        y = Tp + 16 + 18 * k
        parts.append(f'<line x1="{W - R + 12}" x2="{W - R + 32}" y1="{y - 4}" y2="{y - 4}" '
                     f'stroke="{color}" stroke-width="2"/><text x="{W - R + 38}" y="{y}">'
                     f'{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def table(results):
    base = next((r["final_val_loss"] for r in results if r["recipe"] == "fp32"), None)
    lines = ["| recipe | final val loss (nats/byte) | vs fp32 | wall (s) | CPU (s) |",
             "|---|---|---|---|---|"]
    for r in results:
        rel = "" if base is None else f"{100 * (r['final_val_loss'] / base - 1):+.2f}%"
        lines.append(f"| {r['recipe']} | {r['final_val_loss']:.4f} | {rel} | {r['seconds']:.0f} | "
                     f"{r['cpu_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default=",".join(RECIPE_ORDER),
                    help="comma-separated recipes (default: all)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="final lr / peak lr")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--scale-rule", default="floor", choices=["floor", "rceil", "ceil", "even"],
                    help="MX shared-scale rule for the MX recipes (default: floor, OCP)")
    ap.add_argument("--val-bytes", type=int, default=40000,
                    help="validate on the first N bytes of the validation split")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="train this many recipes at once, in separate processes (default: "
                         "one per core, up to 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in all, split between the jobs (default: one per job; "
                         "several OpenMP threads per process were much slower on a busy machine)")
    ap.add_argument("--out", default="train_mx_out")
    ap.add_argument("--smoke", action="store_true",
                    help="a few steps of every recipe on a small batch (for the tests)")
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = args.jobs
    if args.smoke:
        args.steps, args.batch, args.warmup, args.eval_every, args.val_bytes = 3, 2, 1, 3, 2000
    torch.set_num_threads(args.threads)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    for r in recipes:
        lt.recipe(r)  # fails early on an unknown name

    train_data, val_data = load_kjv()
    val_data = val_data[:args.val_bytes]
    print(f"train_mx: {len(train_data)} train bytes, {len(val_data)} validation bytes; "
          f"{args.steps} steps x {args.batch} x {charlm.Config().n_ctx} tokens; "
          f"{args.threads} threads", flush=True)
    start = time.time()
    if args.jobs > 1:
        import concurrent.futures
        import multiprocessing
        threads = max(1, args.threads // args.jobs)
        with concurrent.futures.ProcessPoolExecutor(
                max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_one, r, args, train_data, val_data, threads)
                       for r in recipes]
            results = [f.result() for f in futures]
    else:
        results = [train_one(r, args, train_data, val_data) for r in recipes]
    for r in results:
        print(f"{r['recipe']}: final validation loss {r['final_val_loss']:.4f} "
              f"({r['seconds']:.0f} s wall, {r['cpu_seconds']:.0f} s CPU)", flush=True)
    print(f"train_mx: {time.time() - start:.0f} s in all", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "torch": torch.__version__, "results": results}, f)
    write_svg(os.path.join(args.out, "loss.svg"), results, args.steps)
    print(table(results))
    return results


if __name__ == "__main__":
    main()
