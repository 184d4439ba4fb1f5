"""Training in low precision: train CharLM (charlm.py, the embedded model's
architecture) from scratch on the King James Bible in FP32 and in lowp.torch's
recipes -- same seed, initial weights, data order and hyperparameters -- and
compare the final validation losses; optionally measure what quantization
does to each operand (--stats-every).

    PYTHONPATH=build/python /usr/bin/python3 -m lowp.examples.train \
        --recipes fp32,mxfp8,mxfp6 --steps 1200 --out runs/mx
    ... --recipes mxfp8:weight,mxfp8:input --stats-every 100   # role ablation
    ... --smoke                                              # a few steps, for the tests

A recipe is any lowp.torch.recipe() name: fp32, mxfp8, mxfp8-e4m3, mxfp6,
mxfp6-e2m3, mxfp6-hybrid, mxfp4, mxfp4-sr, fp8-current (fp8-dynamic), fp8-delayed,
fp8-blockwise, nvfp4; "<recipe>:<role>[+<role>]" quantizes only those roles
(weight, input, grad_output, grad_output_tokens, weight_bwd, input_bwd) and
"<recipe>/<rule>" picks the MX scale rule (floor, rceil); "<recipe>@<layer>"
leaves that layer (e.g. lm_head) in fp32. "unit-fp8" is unit scaling with
static FP8 casts (muS; unit_scaling.UnitCharLM), "unit-fp32" its fp32 twin.

--arch llama trains a Llama-architecture byte model instead (Hugging Face
LlamaForCausalLM's computation, arith.Llama: RMSNorm, RoPE, SiLU-gated MLP,
no biases, untied head) at CharLM's size: 5 layers, width 128, 4 heads,
intermediate 352 (a multiple of the 32-element MX block), 128-byte context.

Every nn.Linear of the model (attention, MLP, lm_head) runs in the recipe's
formats, forward and backward (lowp.torch.convert); embeddings, LayerNorm,
softmax and the attention products stay fp32, unless --quantize-attention
runs q k^T and att v in the recipe's formats too (lowp.torch.Matmul: blocks
along each product's reduction dimension, forward and backward, as the MX
paper's bmm quantization does).

Data: `bible -f gen1:1-rev22:21` (Debian bible-kjv), one verse per line with
its reference stripped; Genesis..Philemon train, Hebrews..Revelation validate.
Validation loss: mean cross-entropy (nats per byte) over non-overlapping n_ctx
windows of the first --val-bytes of the validation split, each window
predicting its bytes 1..n-1, with the model in its recipe's forward formats
(and, with --eval-fp32, also with fp32 forward: what the recipe did to the
weights, apart from what it does to inference).

Writes OUT/results.json, OUT/loss.svg (training loss, smoothed, and
validation loss per recipe) and prints a markdown table.
"""

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import lowp.torch as lt  # noqa: E402

try:
    from . import arith
    from . import charlm
    from . import unit_scaling
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import arith
    import charlm
    import unit_scaling

# Unit-scaled models (unit_scaling.UnitCharLM): name -> hidden-layer spec.
UNIT_RECIPES = {"unit-fp8": unit_scaling.UNIT_FP8, "unit-fp32": "fp32"}

VAL_FIRST_BOOK = "Heb"
RECIPE_ORDER = ["fp32", "mxfp8", "mxfp6", "mxfp4", "fp8-dynamic"]
PALETTE = ["#000000", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#17becf", "#bcbd22",
           "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#393b79", "#637939", "#843c39"]


def load_kjv():
    """(train, val) as bytes: plain verses, one per line (charlm.load_kjv)."""
    return charlm.load_kjv(VAL_FIRST_BOOK, "lowp.examples.train")


def lr_at(step, steps, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def window_loss(model, val, n_ctx, batch=32):
    """(mean cross-entropy in nats per byte, predicted bytes) over the
    non-overlapping n_ctx windows of `val`, each predicting its bytes 1..n-1."""
    windows = [val[i:i + n_ctx] for i in range(0, len(val) - n_ctx + 1, n_ctx)]
    total, count = 0.0, 0
    for i in range(0, len(windows), batch):
        x = torch.tensor([list(w) for w in windows[i:i + batch]], dtype=torch.long)
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                               reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
    return total / count, count


def val_loss(model, val, n_ctx, batch=32):
    """window_loss's mean, with the model in eval mode for the evaluation."""
    model.eval()
    try:
        return window_loss(model, val, n_ctx, batch)[0]
    finally:
        model.train()


@dataclass
class LlamaConfig(arith.ModelConfig):
    """--arch llama: a byte-level Llama the size of charlm.Config()."""
    vocab_size: int = 256
    hidden_size: int = 128
    intermediate_size: int = 352
    num_hidden_layers: int = 5
    num_attention_heads: int = 4
    max_position_embeddings: int = 128

    @property
    def n_ctx(self):
        return self.max_position_embeddings


def arch_config(args):
    return LlamaConfig() if args.arch == "llama" else charlm.Config()


def base_model(args):
    """(fp32 model, config) of --arch; the weights drawn from --seed."""
    cfg = arch_config(args)
    if args.arch == "llama":
        return arith.Llama(cfg, torch.Generator().manual_seed(args.seed)), cfg
    return charlm.CharLM(cfg), cfg


def build_model(name, args):
    """(model, label) for a recipe name: the --arch model converted to the
    recipe; the layers named by --keep-fp32 stay fp32."""
    if name in UNIT_RECIPES:
        cfg = unit_scaling.UnitConfig()
        return unit_scaling.UnitCharLM(cfg, UNIT_RECIPES[name]), cfg, name
    keep = [k for k in args.keep_fp32.split(",") if k]
    full_name = name
    if "@" in name:  # "<recipe>@<layer>[+<layer>]": those layers stay fp32
        name, layers = name.split("@", 1)
        keep += [k for k in layers.split("+") if k]
    base, cfg = base_model(args)
    spec = lt.recipe(name)
    if args.scale_rule and "/" not in name and name != "fp32":
        spec = lt.with_options(spec, scale_rule=args.scale_rule)
    model = lt.convert(base, spec)
    if args.quantize_attention:
        for path, module in list(model.named_modules()):
            if isinstance(module, (charlm.Attention, arith.Attention)):
                module.qk_matmul = lt.Matmul(spec, f"{path}.qk")
                module.av_matmul = lt.Matmul(spec, f"{path}.av")
    if keep:
        for path, module in model.named_modules():
            if isinstance(module, (lt.Linear, lt.Matmul)) and any(
                    path == k or path.startswith(k + ".") for k in keep):
                module.spec = lt.recipe("fp32")
    label = full_name
    if args.scale_rule and "/" not in name and name != "fp32":
        label = f"{full_name}/{args.scale_rule}"
    if args.quantize_attention and name != "fp32":
        label += " +attention"
    if args.keep_fp32 and name != "fp32":
        label += f" (fp32: {args.keep_fp32})"
    if args.master_weights != "fp32":
        label += f" ({args.master_weights} master weights)"
    return model, cfg, label


def set_forward_fp32(model, on, saved):
    """Switches every lowp.torch.Linear (and unit-scaled linear) to fp32 (on)
    or back to its spec."""
    for m in model.modules():
        if isinstance(m, (lt.Linear, lt.Matmul, unit_scaling.UnitLinear)):
            if on:
                saved[id(m)] = m.spec
                m.spec = lt.recipe("fp32")
            else:
                m.spec = saved[id(m)]


def merge_stats(total, summary):
    for role, row in summary.items():
        acc = total.setdefault(role, {})
        for k, v in row.items():
            acc.setdefault(k, []).append(v)


def train_one(name, args, train_data, val_data, threads=None):
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    lt.reset_stochastic_stream()
    model, cfg, label = build_model(name, args)
    if hasattr(model, "param_groups"):
        groups = model.param_groups(args.lr, args.weight_decay)
    else:
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": args.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    # Unit-scaled models take a static loss scale: the tokens per step.
    loss_scale = float(args.batch * cfg.n_ctx) if name in UNIT_RECIPES else 1.0
    data = torch.frombuffer(bytearray(train_data), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(args.data_seed)  # the same batches for every recipe
    T = cfg.n_ctx
    curve, val_curve, stats_curve = [], [], []
    stats_total = {}
    start, cpu_start = time.time(), time.process_time()
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.lr * args.lr_floor)
        for group in opt.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=gen)
        seq = torch.stack([data[s:s + T + 1] for s in starts.tolist()]).long()
        measure = args.stats_every and (step % args.stats_every == 0 or step + 1 == args.steps)
        collector = lt.QuantStats() if measure else None
        if collector:
            collector.__enter__()
        try:
            logits = model(seq[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            (loss * loss_scale).backward()
        finally:
            if collector:
                collector.__exit__(None, None, None)
        if collector:
            summary = collector.summary()
            merge_stats(stats_total, summary)
            stats_curve.append((step + 1, summary))
        if loss_scale != 1.0:
            for p in model.parameters():
                if p.grad is not None:
                    p.grad.div_(loss_scale)
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        if args.master_weights == "bf16":
            # BF16 master weights: the weights are stored in bfloat16 (rounded to
            # nearest-even after every update); Adam's moments stay fp32.
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(torch.bfloat16).to(p.dtype))
        curve.append(loss.item())
        last = step + 1 == args.steps
        if args.eval_every and ((step + 1) % args.eval_every == 0 or last):
            v = val_loss(model, val_data, T)
            val_curve.append((step + 1, v))
            print(f"  {label:12s} step {step + 1:5d}  train {loss.item():.4f}  val {v:.4f}  "
                  f"{time.time() - start:6.1f}s", flush=True)
    final = val_curve[-1][1] if val_curve else val_loss(model, val_data, T)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    out = {"recipe": label, "final_val_loss": final, "seconds": seconds,
           "cpu_seconds": cpu_seconds, "threads": torch.get_num_threads(),
           "train_curve": curve, "val_curve": val_curve}
    if args.eval_fp32:
        saved = {}
        set_forward_fp32(model, True, saved)
        out["final_val_loss_fp32_forward"] = val_loss(model, val_data, T)
        set_forward_fp32(model, False, saved)
    if stats_total:
        out["stats"] = {role: {k: sum(v) / len(v) for k, v in row.items()}
                        for role, row in stats_total.items()}
        out["stats_curve"] = stats_curve
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    os.makedirs(os.path.join(args.out, "partial"), exist_ok=True)
    if args.save:
        torch.save(model.state_dict(), os.path.join(args.out, f"{safe}.pt"))
    # Each recipe's result as soon as it is done (results.json comes at the end).
    with open(os.path.join(args.out, "partial", f"{safe}.json"), "w") as f:
        json.dump(out, f)
    return out


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def write_svg(path, results, steps, model="CharLM"):
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
             f'<text x="{L}" y="18" font-size="14">{model} on KJV: training loss (smoothed, '
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
        color = PALETTE[k % len(PALETTE)]
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
    fp32_fwd = any("final_val_loss_fp32_forward" in r for r in results)
    head = "| recipe | final val loss (nats/byte) | vs fp32 |"
    rule = "|---|---|---|"
    if fp32_fwd:
        head += " same weights, fp32 forward | vs fp32 |"
        rule += "---|---|"
    lines = [head + " wall (s) | CPU (s) |", rule + "---|---|"]
    for r in results:
        rel = "" if base is None else f"{100 * (r['final_val_loss'] / base - 1):+.2f}%"
        row = f"| {r['recipe']} | {r['final_val_loss']:.4f} | {rel} |"
        if fp32_fwd:
            v = r.get("final_val_loss_fp32_forward")
            row += (f" {v:.4f} | {100 * (v / base - 1):+.2f}% |" if v is not None and base
                    else " | |")
        lines.append(row + f" {r['seconds']:.0f} | {r['cpu_seconds']:.0f} |")
    return "\n".join(lines)


def stats_table(results):
    """Per recipe and role: clipped elements, blocks whose largest element
    clips, elements flushed to zero, relative error; and the gradients'
    projection on the fp32 gradient (means over the measured steps and layers)."""
    lines = ["| recipe | role | clipped | blocks clipped | flushed to 0 | rel. error |",
             "|---|---|---|---|---|---|"]
    grads = ["| recipe | gradient | projection on fp32 | cosine | rel. error |",
             "|---|---|---|---|---|"]
    for r in results:
        for role, row in sorted(r.get("stats", {}).items()):
            if role.startswith("grad_input") or role.startswith("grad_weight"):
                grads.append(f"| {r['recipe']} | {role} | {row['proj']:.4f} | {row['cos']:.4f} | "
                             f"{row['rel_err']:.4f} |")
            else:
                clip = f"{100 * row['clipped']:.3f}%" if "clipped" in row else "-"
                bclip = f"{100 * row['blocks_clipped']:.2f}%" if "blocks_clipped" in row else "-"
                lines.append(f"| {r['recipe']} | {role} | {clip} | {bclip} | "
                             f"{100 * row['flushed']:.3f}% | {row['rel_err']:.4f} |")
    return "\n".join(lines) + "\n\n" + "\n".join(grads)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="gpt", choices=["gpt", "llama"],
                    help="the model trained: CharLM (gpt, the embedded model's architecture) "
                         "or a Llama of its size (llama)")
    ap.add_argument("--recipes", default=",".join(RECIPE_ORDER),
                    help="comma-separated recipes (default: all)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="final lr / peak lr")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234, help="initial weights")
    ap.add_argument("--data-seed", type=int, default=1235, help="batch order")
    ap.add_argument("--scale-rule", default=None, choices=["floor", "rceil", "ceil", "even"],
                    help="MX shared-scale rule for every recipe (default: each recipe's own)")
    ap.add_argument("--quantize-attention", action="store_true",
                    help="also run the attention products (q k^T, att v) in the recipe's "
                         "formats, forward and backward (lowp.torch.Matmul)")
    ap.add_argument("--keep-fp32", default="",
                    help="comma-separated layer paths left in fp32 (e.g. lm_head)")
    ap.add_argument("--stats-every", type=int, default=0,
                    help="measure clipping, flushing and gradient bias every N steps")
    ap.add_argument("--eval-fp32", action="store_true",
                    help="also evaluate each final model with fp32 forward")
    ap.add_argument("--save", action="store_true", help="save each final state_dict in OUT")
    ap.add_argument("--master-weights", default="fp32", choices=["fp32", "bf16"],
                    help="precision the weights are kept in between steps (default fp32)")
    ap.add_argument("--val-bytes", type=int, default=40000,
                    help="validate on the first N bytes of the validation split")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="train this many recipes at once, in separate processes (default: "
                         "one per core, up to 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads in all, split between the jobs (default: one per job; "
                         "several OpenMP threads per process were much slower on a busy machine)")
    ap.add_argument("--out", default="train_out")
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
        if r in UNIT_RECIPES and args.arch != "gpt":
            ap.error(f"{r} is the unit-scaled CharLM; it has no --arch {args.arch}")
        if r in UNIT_RECIPES and args.quantize_attention:
            ap.error(f"{r}: --quantize-attention applies to the lowp.torch recipes only")
        if r not in UNIT_RECIPES:
            lt.recipe(r.split("@", 1)[0])  # fails early on an unknown name

    train_data, val_data = load_kjv()
    val_data = val_data[:args.val_bytes]
    print(f"train: {len(train_data)} train bytes, {len(val_data)} validation bytes; "
          f"{args.steps} steps x {args.batch} x {arch_config(args).n_ctx} tokens; "
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
    print(f"train: {time.time() - start:.0f} s in all", flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "torch": torch.__version__, "results": results}, f)
    write_svg(os.path.join(args.out, "loss.svg"), results, args.steps,
              "Llama (bytes)" if args.arch == "llama" else "CharLM")
    print(table(results))
    if any("stats" in r for r in results):
        print()
        print(stats_table(results))
    return results


if __name__ == "__main__":
    main()
