#!/usr/bin/python3
"""PyTorch reference for lowp's transformer runtime (src/nn).

    torch_reference.py MODEL.safetensors TEXT_FILE OUT.npy [--offset N] [--length L]
        Loads the checkpoint (python/lowp/examples/charlm.py), runs the forward
        pass in float64 on the bytes [N, N+L) of TEXT_FILE (L <= n_ctx, default
        n_ctx, clipped at the end of the file) and saves the logits [L, 256] as a
        float64 .npy.
    torch_reference.py MODEL.safetensors TEXT_FILE --eval
        Prints as JSON the mean cross-entropy over the whole file, computed as
        `lowp report` does: non-overlapping windows of n_ctx bytes, each
        predicting its bytes 1..n-1 from the preceding bytes of the window, the
        last partial window included if it has >= 2 bytes; nats per predicted
        byte, bits per byte = nats / ln 2, perplexity = exp(nats). Float64.

Run with /usr/bin/python3 (needs python3-torch and python3-numpy). Exit 2 on a
usage or input error, with one line on stderr.
"""

import argparse
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python", "lowp", "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import charlm  # noqa: E402


def fail(msg):
    print(f"torch_reference: {msg}", file=sys.stderr)
    sys.exit(2)


def to_tensor(data):
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8).astype(np.int64))


@torch.no_grad()
def windowed_eval(model, data, batch=64):
    n_ctx = model.cfg.n_ctx
    ws = [data[i:i + n_ctx] for i in range(0, len(data), n_ctx)]
    ws = [w for w in ws if len(w) >= 2]
    if not ws:
        fail("text has fewer than 2 bytes")
    full = [w for w in ws if len(w) == n_ctx]
    part = [w for w in ws if len(w) != n_ctx]
    groups = [full[i:i + batch] for i in range(0, len(full), batch)] + [[p] for p in part]
    total, count = 0.0, 0
    for g in groups:
        x = to_tensor(b"".join(g)).view(len(g), -1)
        logits = model(x[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                 reduction="sum").item()
        count += x[:, 1:].numel()
    nats = total / count
    return {"bytes": len(data), "windows": len(ws), "predicted": count,
            "nats_per_byte": nats, "bits_per_byte": nats / math.log(2),
            "perplexity": math.exp(nats)}


def main():
    ap = argparse.ArgumentParser(description="PyTorch float64 reference for lowp's runtime")
    ap.add_argument("model")
    ap.add_argument("text")
    ap.add_argument("out", nargs="?", help="OUT.npy for the logits (not with --eval)")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--length", type=int, default=None)
    ap.add_argument("--eval", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    try:
        model = charlm.load_safetensors(args.model)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, struct.error) as e:
        fail(f"{args.model}: {e}")
    model = model.double().eval()
    try:
        with open(args.text, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"{args.text}: {e}")

    if args.eval:
        print(json.dumps(windowed_eval(model, data)))
        return
    if args.out is None:
        fail("OUT.npy is required without --eval")
    n_ctx = model.cfg.n_ctx
    length = n_ctx if args.length is None else args.length
    if not 1 <= length <= n_ctx:
        fail(f"--length {length} must be in [1, {n_ctx}]")
    if not 0 <= args.offset < len(data):
        fail(f"--offset {args.offset} outside the text ({len(data)} bytes)")
    chunk = data[args.offset:args.offset + length]
    with torch.no_grad():
        logits = model(to_tensor(chunk).view(1, -1))[0]
    np.save(args.out, logits.numpy().astype(np.float64))


if __name__ == "__main__":
    main()
