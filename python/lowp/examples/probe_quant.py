"""What each recipe's quantizers do to a trained model's operands, at one
point of training: load a CharLM state (lowp.examples.train --save), run a
few training batches forward and backward (no update) under each recipe, and
print per tensor kind -- weights (weight, weight_bwd), activations (input,
input_bwd), gradients (grad_output along out, grad_output_tokens along the
tokens) -- the fraction of elements clipped at the element format's largest
value, of MX blocks whose largest element clips, of nonzero elements flushed
to zero, the relative error, and the projection of the quantized gradients on
the fp32 ones (1: no bias in scale).

    PYTHONPATH=build/python /usr/bin/python3 -m lowp.examples.probe_quant \\
        runs/final/fp32.pt --recipes mxfp8/floor,mxfp8,mxfp6/floor,mxfp6
"""

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import lowp.torch as lt  # noqa: E402

try:
    from . import charlm
    from .train import load_kjv
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import charlm
    from train import load_kjv

KINDS = {"weights": ("weight", "weight_bwd"), "activations": ("input", "input_bwd"),
         "gradients": ("grad_output", "grad_output_tokens")}


def probe(model, recipe, batches, by_layer=False):
    lt.convert(model, recipe)
    with lt.QuantStats() as st, lt.QuantStats(by_layer=True) as per_layer:
        for seq in batches:
            logits = model(seq[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq[:, 1:].reshape(-1))
            model.zero_grad(set_to_none=True)
            loss.backward()
    model.zero_grad(set_to_none=True)
    raw = st.roles
    out = {}
    for kind, roles in KINDS.items():
        acc = {}
        for r in roles:
            for k, v in raw.get(r, {}).items():
                acc[k] = acc.get(k, 0.0) + v
        if not acc:
            continue
        n, nz = max(acc["elements"], 1), max(acc["nonzero"], 1)
        row = {"flushed": acc["flushed"] / nz,
               "rel_err": (acc["err2"] / max(acc["sq"], 1e-300)) ** 0.5}
        if "blocks" in acc:
            row["clipped"] = acc["clipped"] / n
            row["blocks_clipped"] = acc["blocks_clipped"] / max(acc["blocks"], 1)
        out[kind] = row
    summary = st.summary()
    for g in ("grad_input", "grad_weight"):
        if g in summary:
            out[g] = summary[g]
    if by_layer:
        out["layers"] = {k: v for k, v in per_layer.summary().items()
                         if k.endswith("grad_input") or k.endswith("grad_weight")}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", help="a CharLM state_dict saved by lowp.examples.train --save, "
                                  "or a CharLM .safetensors file")
    ap.add_argument("--recipes", default="mxfp8/floor,mxfp8,mxfp8-e4m3,mxfp6/floor,mxfp6,"
                                         "mxfp4,mxfp4/rceil")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--by-layer", action="store_true",
                    help="also print each layer's gradient projections")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.state.endswith(".safetensors"):
        model = charlm.load_safetensors(args.state)  # e.g. models/kjv-char/model.safetensors
    else:
        model = charlm.CharLM(charlm.Config())
        model.load_state_dict(torch.load(args.state))
    train, _ = load_kjv()
    data = torch.frombuffer(bytearray(train), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(args.seed)
    T = model.cfg.n_ctx
    batches = []
    for _ in range(args.batches):
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=gen)
        batches.append(torch.stack([data[s:s + T + 1] for s in starts.tolist()]).long())
    print("| recipe | tensors | clipped | blocks clipped | flushed to 0 | rel. error |")
    print("|---|---|---|---|---|---|")
    grads = []
    for r in [x for x in args.recipes.split(",") if x]:
        res = probe(model, r, batches, args.by_layer)
        for kind in KINDS:
            if kind in res:
                row = res[kind]
                clip = f"{100 * row['clipped']:.3f}%" if "clipped" in row else "-"
                bclip = f"{100 * row['blocks_clipped']:.2f}%" if "blocks_clipped" in row else "-"
                print(f"| {r} | {kind} | {clip} | {bclip} | {100 * row['flushed']:.3f}% | "
                      f"{row['rel_err']:.4f} |")
        for g in ("grad_input", "grad_weight"):
            if g in res:
                grads.append(f"| {r} | {g} | {res[g]['proj']:.4f} | {res[g]['cos']:.4f} | "
                             f"{res[g]['rel_err']:.4f} |")
        for k, v in sorted(res.get("layers", {}).items()):
            grads.append(f"| {r} | {k} | {v['proj']:.4f} | {v['cos']:.4f} | {v['rel_err']:.4f} |")
    print()
    print("| recipe | gradient | projection on fp32 | cosine | rel. error |")
    print("|---|---|---|---|---|")
    print("\n".join(grads))


if __name__ == "__main__":
    main()
