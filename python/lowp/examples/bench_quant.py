"""How fast lowp.torch's fake-quant op runs against the machine's streaming
rate: torch.ops.lowp.fake_quant for the MX formats, NVFP4 and scalar casts,
on the tensor shapes of a CharLM training step and a large one, along the
last axis and axis 0, with nearest-even and stochastic rounding, on 1 and 2
torch threads.

    PYTHONPATH=build/python OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m lowp.examples.bench_quant
    ... -m lowp.examples.bench_quant --threads 2 --formats mxfp8_e4m3 --quick

The reference is `dst.copy_(src)` of the same fp32 tensor into a preallocated
one: fake_quant reads the input and writes an output, the same bytes as that
copy. ratio = copy time / op time (1: the op runs at the rate torch copies; the
goal is >= 0.5), with the copy time the fastest of all the copies of that
tensor in the run (the same operation for every case; on a busy machine the
best of many measurements is the least disturbed). The op returns a new
tensor, as training calls it; with --out it writes into a preallocated one
(fake_quant.out) as the copy does: for tensors of 32 MiB and more, which the
allocator maps afresh each call, the difference is the cost of first
touching new pages. Where the op library has it, `ceiling` is lowp's memory
ceiling for the same bytes (lowp/kernels.h's stream_ceiling, fp32 in and
out; the faster of regular and non-temporal stores), as a fraction of the
copy's time (above 1: faster than torch's copy).

--steps N times whole CharLM training steps instead (forward, backward and
AdamW, batch 16 x 128, every linear layer in the recipe's formats), the
fastest of N per recipe in CPU time, with the recipes taken in turn: what a
recipe costs against an FP32 step.

Timing: a measurement is the fastest batch of calls (about 0.1 ms each) in
--target seconds; copy and op are measured alternately --repeat times and
the best of each kept (each line prints the ratio of those two; the table and
the JSON use the run's best copy). With 2 threads on a loaded 2-core machine
a call waits whenever either thread is descheduled, so expect noise there.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

import lowp.torch  # noqa: E402,F401  (loads the op library)

BLOCK_FORMATS = ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "nvfp4")
SCALAR_FORMATS = ("fp8_e4m3", "fp4_e2m1")
# CharLM (default Config): activations and gradients of a batch of 16 x 128
# tokens, d_model 128 and d_ff 512 (2048 x 128, 2048 x 512), the attention
# weight (384 x 128); and a large tensor far beyond the caches.
SHAPES = ((2048, 128), (2048, 512), (384, 128), (4096, 4096))
ROUNDINGS = ("rne", "stochastic")


def best_seconds(fn, target, batch=0.0001):
    """Seconds per call of fn: the fastest of batches of calls (each batch
    about `batch` s, at least one call) over about `target` s. On a shared
    machine the fastest batch is the one least disturbed by other work."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(batch / once))
    best = float("inf")
    end = time.perf_counter() + target
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        now = time.perf_counter()
        best = min(best, (now - start) / calls)
        if now >= end:
            return best


def best_pair(ref, op, repeat, target):
    """(ref time, op time), measured alternately `repeat` times, best kept."""
    ref_best = op_best = float("inf")
    for _ in range(repeat):
        ref_best = min(ref_best, best_seconds(ref, target))
        op_best = min(op_best, best_seconds(op, target))
    return ref_best, op_best


def cases(formats, axes, roundings):
    for fmt in formats:
        for axis in ((-1,) if fmt in SCALAR_FORMATS else axes):
            for rounding in roundings:
                yield fmt, axis, rounding


def ceiling_fn(x):
    """lowp's memory ceiling for x's bytes (fp32 in, fp32 out), or None."""
    op = getattr(torch.ops.lowp, "stream_copy", None)
    if op is None:
        return None
    try:
        dst = torch.empty_like(x)
        op(x, dst, False)
    except RuntimeError:
        return None
    fns = [lambda: op(x, dst, False), lambda: op(x, dst, True)]
    return fns


def run(args):
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape in args.shapes:
            gen = torch.Generator().manual_seed(1)
            x = torch.randn(shape, generator=gen) * 0.05
            dst = torch.empty_like(x)
            copy = lambda: dst.copy_(x)  # noqa: E731
            n = x.numel()
            ceiling = None
            fns = ceiling_fn(x)
            if fns is not None:
                best = float("inf")
                copy_t = float("inf")
                for _ in range(args.repeat):
                    copy_t = min(copy_t, best_seconds(copy, args.target))
                    best = min([best] + [best_seconds(f, args.target) for f in fns])
                ceiling = copy_t / best
            out = torch.empty_like(x)
            shape_rows = []
            for fmt, axis, rounding in cases(args.formats, args.axes, args.roundings):
                fq = (x, fmt, axis, "floor", rounding, 7, False)
                if args.out:
                    op = lambda: torch.ops.lowp.fake_quant.out(*fq, out=out)  # noqa: E731,B023
                else:
                    op = lambda: torch.ops.lowp.fake_quant(*fq)  # noqa: E731,B023
                ref_t, op_t = best_pair(copy, op, args.repeat, args.target)
                row = {
                    "threads": threads,
                    "shape": list(shape),
                    "format": fmt,
                    "axis": axis if fmt not in SCALAR_FORMATS else None,
                    "rounding": rounding,
                    "copy_ns": ref_t / n * 1e9,
                    "op_ns": op_t / n * 1e9,
                    "ratio": ref_t / op_t,
                    "ceiling": ceiling,
                }
                rows.append(row)
                shape_rows.append(row)
                print(f"{threads}T {shape[0]}x{shape[1]:<5} {fmt:<11} "
                      f"axis {'-' if row['axis'] is None else axis:>2} {rounding:<10} "
                      f"op {row['op_ns']:7.3f} ns/el  copy {row['copy_ns']:6.3f} ns/el  "
                      f"ratio {row['ratio']:5.2f}"
                      + ("" if ceiling is None else f"  (ceiling/copy {ceiling:4.2f})"),
                      flush=True)
            copy_best = min((r["copy_ns"] for r in shape_rows), default=0.0)
            for r in shape_rows:
                r["copy_best_ns"] = copy_best
                r["ratio"] = copy_best / r["op_ns"]
    return rows


STEP_RECIPES = ("fp32", "mxfp8", "mxfp6", "mxfp4", "fp8-dynamic", "mxfp8+stochastic")


def step_times(args):
    """CPU seconds (all threads) per CharLM training step (default Config,
    batch 16 x 128: forward, backward, AdamW) per recipe, the fastest of
    --steps steps taken in turn with the other recipes, per thread count;
    and the fastest wall time. On a shared machine CPU time is the steadier
    measure of what a step costs (with 2 threads it counts OpenMP's waiting
    too)."""
    import torch.nn.functional as F

    import lowp.torch as lt

    from . import charlm

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        runs = {}
        recipes = args.recipes or STEP_RECIPES
        if "fp32" not in recipes:
            recipes = ("fp32",) + tuple(recipes)
        for name in recipes:
            torch.manual_seed(0)
            base = name.split("+")[0]
            spec = (lt.with_options(lt.recipe(base), rounding="stochastic") if "+" in name
                    else lt.recipe(base))
            model = lt.convert(charlm.CharLM(charlm.Config()), spec)
            runs[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3))
        batch = torch.randint(0, 256, (16, 129), generator=torch.Generator().manual_seed(0))

        def step(model, opt):
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        cpu = dict.fromkeys(recipes, float("inf"))
        wall = dict.fromkeys(recipes, float("inf"))
        for i in range(args.steps + 1):  # the first round warms up
            for name, (model, opt) in runs.items():
                start, cpu_start = time.perf_counter(), time.process_time()
                step(model, opt)
                if i > 0:
                    wall[name] = min(wall[name], time.perf_counter() - start)
                    cpu[name] = min(cpu[name], time.process_time() - cpu_start)
        for name in recipes:
            rows.append({"threads": threads, "recipe": name, "cpu_s": cpu[name],
                         "wall_s": wall[name], "vs_fp32": cpu[name] / cpu["fp32"]})
            print(f"{threads}T step {name:<17} CPU {cpu[name] * 1e3:8.1f} ms  "
                  f"{cpu[name] / cpu['fp32']:5.2f} x fp32   (wall {wall[name] * 1e3:8.1f} ms)",
                  flush=True)
    return rows


def markdown(rows):
    """The rows as a markdown table: one line per case, ratio per thread count."""
    threads = sorted({r["threads"] for r in rows})
    cases_seen = []
    by = {}
    for r in rows:
        case = (tuple(r["shape"]), r["format"], r["axis"], r["rounding"])
        if case not in by:
            cases_seen.append(case)
        by.setdefault(case, {})[r["threads"]] = r
    head = "| shape | format | axis | rounding | " + " | ".join(
        f"{t}T ns/el | {t}T copy ns/el | {t}T ratio" for t in threads) + " |"
    lines = [head, "|" + "---|" * (4 + 3 * len(threads))]
    for case in cases_seen:
        shape, fmt, axis, rounding = case
        cells = []
        for t in threads:
            r = by[case].get(t)
            cells += (["", "", ""] if r is None else
                      [f"{r['op_ns']:.3f}", f"{r['copy_best_ns']:.3f}", f"{r['ratio']:.2f}"])
        lines.append(f"| {shape[0]}x{shape[1]} | {fmt} | {'-' if axis is None else axis} | "
                     f"{rounding} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")],
                        default=[1, 2], help="torch thread counts, e.g. 1,2 (default)")
    parser.add_argument("--formats", type=lambda s: s.split(","),
                        default=list(BLOCK_FORMATS + SCALAR_FORMATS))
    parser.add_argument("--axes", type=lambda s: [int(a) for a in s.split(",")], default=[-1, 0])
    parser.add_argument("--roundings", type=lambda s: s.split(","), default=list(ROUNDINGS))
    parser.add_argument("--shapes", type=lambda s: [tuple(int(d) for d in p.split("x"))
                                                    for p in s.split(",")],
                        default=list(SHAPES), help="e.g. 2048x512,4096x4096")
    parser.add_argument("--repeat", type=int, default=5,
                        help="alternating measurements of copy and op (best kept)")
    parser.add_argument("--target", type=float, default=0.05,
                        help="seconds per measurement (default 0.05)")
    parser.add_argument("--quick", action="store_true",
                        help="--repeat 2 --target 0.01 (a smoke run)")
    parser.add_argument("--out", action="store_true",
                        help="the op writes into a preallocated tensor (fake_quant.out), as "
                        "the copy does, instead of returning a new one")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="instead: time N CharLM training steps per recipe (fp32, the "
                        "recipes, mxfp8 with stochastic rounding) against fp32")
    parser.add_argument("--recipes", type=lambda s: tuple(s.split(",")), default=None,
                        help="with --steps: the recipes timed (default: " +
                        ",".join(STEP_RECIPES) + "; fp32 is always added)")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON to FILE")
    parser.add_argument("--markdown", action="store_true",
                        help="print a markdown table of all rows at the end")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.target = 2, 0.01
    if args.steps:
        rows = step_times(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"torch": torch.__version__, "steps": rows}, f, indent=1)
        return 0
    rows = run(args)
    if args.markdown:
        print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
