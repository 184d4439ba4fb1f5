#!/usr/bin/python3
"""Trains lowp's embedded default model: the byte-level GPT of
python/lowp/examples/charlm.py on the King James Bible (Debian bible-kjv).

Run with /usr/bin/python3 (needs python3-torch, python3-numpy, bible-kjv):

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/train_kjv.py            # train + eval
    /usr/bin/python3 scripts/train_kjv.py --eval-only                       # eval saved model
    /usr/bin/python3 scripts/train_kjv.py --sample "In the beginning"       # generate

Data: `bible -f gen1:1-rev22:21` prints one verse per line as "Ge1:1 In the
beginning ...". The reference ("Ge1:1 ") is stripped, leaving plain ASCII text,
one verse per line, each ending in "\n". Genesis..Acts is the training split;
Romans..Revelation (the epistles and Revelation, ~9% of the text) the validation split.
models/kjv-char/val.txt is the first ~40 KB of the validation split, cut at a
line end: the text `lowp report` evaluates.

Evaluation (the same as the C++ report): non-overlapping windows of n_ctx bytes;
each window predicts its bytes 1..n-1 from the preceding bytes of the same
window; the last partial window counts if it has >= 2 bytes. Mean cross-entropy
in nats per predicted byte; bits/byte = nats / ln 2; perplexity = exp(nats).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python", "lowp", "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import charlm  # noqa: E402

VAL_FIRST_BOOK = "Rom"     # bible-kjv's abbreviation of Romans
VAL_TXT_TARGET = 40000     # bytes; val.txt is cut at the last line end before this
VAL_TXT_MAX = 48 * 1024


def load_kjv():
    """(train, val) as bytes: plain verses, one per line (charlm.load_kjv)."""
    return charlm.load_kjv(VAL_FIRST_BOOK, "train_kjv")


def val_excerpt(val):
    cut = val.rfind(b"\n", 0, VAL_TXT_TARGET)
    text = val[:cut + 1]
    assert len(text) <= VAL_TXT_MAX
    return text


def windows(data, n_ctx):
    """Non-overlapping windows as the C++ report uses them: a list of byte
    strings; the last partial window kept only if it has >= 2 bytes."""
    out = []
    for i in range(0, len(data), n_ctx):
        w = data[i:i + n_ctx]
        if len(w) >= 2:
            out.append(w)
    return out


@torch.no_grad()
def windowed_loss(model, data, batch=64):
    """Mean cross-entropy (nats per predicted byte) over non-overlapping windows."""
    model.eval()
    ws = windows(data, model.cfg.n_ctx)
    full = [w for w in ws if len(w) == model.cfg.n_ctx]
    part = [w for w in ws if len(w) != model.cfg.n_ctx]
    total, count = 0.0, 0
    dtype = next(model.parameters()).dtype
    for group in [full[i:i + batch] for i in range(0, len(full), batch)] + [[p] for p in part]:
        x = torch.tensor(np.frombuffer(b"".join(group), dtype=np.uint8).astype(np.int64)
                         ).view(len(group), -1)
        logits = model(x[:, :-1]).to(dtype)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(),
                               x[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += x[:, 1:].numel()
    return total / count, count


def metrics(nats):
    return {"nats_per_byte": nats, "bits_per_byte": nats / math.log(2),
            "perplexity": math.exp(nats)}


@torch.no_grad()
def sample(model, prompt, n_new=300, temperature=0.8, seed=0):
    """Greedy (temperature 0) or temperature sampling, context cropped to n_ctx."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    idx = list(prompt.encode("ascii"))
    for _ in range(n_new):
        x = torch.tensor([idx[-model.cfg.n_ctx:]], dtype=torch.long)
        logits = model(x)[0, -1].double()
        if temperature <= 0:
            nxt = int(torch.argmax(logits))
        else:
            p = torch.softmax(logits / temperature, dim=-1)
            nxt = int(torch.multinomial(p, 1, generator=g))
        idx.append(nxt)
    return bytes(idx).decode("ascii", errors="replace")


def lr_at(step, steps, peak, warmup, floor):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * t))


def train(args, train_data, val_data):
    torch.manual_seed(args.seed)
    cfg = charlm.Config()
    model = charlm.CharLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params}  train {len(train_data)} B  val {len(val_data)} B", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n
             and "wte" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wpe" not in n
                                                               and "wte" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    data = torch.from_numpy(np.frombuffer(train_data, dtype=np.uint8).astype(np.int64))
    # A fixed slice of validation windows for the periodic (cheap) estimate.
    val_probe = val_data[:64 * cfg.n_ctx]
    T = cfg.n_ctx
    g = torch.Generator().manual_seed(args.seed + 1)
    t0 = time.time()
    run = None
    history = []
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.lr * args.lr_floor)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(data) - T - 1, (args.batch,), generator=g)
        xb = torch.stack([data[s:s + T + 1] for s in starts.tolist()])
        model.train()
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        if step < 5 or (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            el = time.time() - t0
            line = {"step": step + 1, "lr": round(lr, 6), "loss": round(loss.item(), 4),
                    "train_ema": round(run, 4), "elapsed_s": round(el, 1)}
            if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                line["val_probe"] = round(windowed_loss(model, val_probe)[0], 4)
            history.append(line)
            print(json.dumps(line), flush=True)
        if args.partial_every and (step + 1) % args.partial_every == 0 and step + 1 < args.steps:
            # A fallback if the run has to be cut short (lr not yet decayed).
            charlm.save_safetensors(model, os.path.join(args.out, "model.partial.safetensors"))
    return model, time.time() - t0, run, history


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "kjv-char"))
    ap.add_argument("--steps", type=int, default=2200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="final lr / peak lr")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 on a shared 2-core machine (2 was ~5x slower there)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--partial-every", type=int, default=200,
                    help="save OUT/model.partial.safetensors every N steps (0: never)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate OUT/model.safetensors")
    ap.add_argument("--sample", metavar="PROMPT", help="generate from OUT/model.safetensors")
    ap.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    ap.add_argument("--n-new", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    path = os.path.join(args.out, "model.safetensors")
    if args.sample is not None:
        model = charlm.load_safetensors(path)
        print(sample(model, args.sample, args.n_new, args.temperature, args.seed))
        return

    train_data, val_data = load_kjv()
    os.makedirs(args.out, exist_ok=True)
    val_txt = val_excerpt(val_data)
    with open(os.path.join(args.out, "val.txt"), "wb") as f:
        f.write(val_txt)

    result = {}
    if args.eval_only:
        model = charlm.load_safetensors(path)
    else:
        model, secs, train_ema, history = train(args, train_data, val_data)
        tmp = path + ".tmp"
        charlm.save_safetensors(model, tmp)
        os.replace(tmp, path)
        partial = os.path.join(args.out, "model.partial.safetensors")
        if os.path.exists(partial):
            os.remove(partial)
        result["training"] = {
            "steps": args.steps, "batch": args.batch, "n_ctx": model.cfg.n_ctx,
            "lr": args.lr, "lr_floor": args.lr_floor, "warmup": args.warmup,
            "weight_decay": args.weight_decay, "clip": args.clip, "seed": args.seed,
            "threads": args.threads, "seconds": round(secs, 1),
            "final_train_loss_ema": round(train_ema, 4), "log": history}
        model = charlm.load_safetensors(path)  # evaluate what was written

    for name, data in (("val_split", val_data), ("val_txt", val_txt)):
        nats, n = windowed_loss(model, data)
        result[name] = dict(bytes=len(data), predicted=n, **metrics(nats))
        print(name, json.dumps(result[name]), flush=True)
    # Training-loss reference on the same windowed scheme (first 400 KB of train).
    nats, n = windowed_loss(model, train_data[:400000])
    result["train_head_400k"] = dict(bytes=400000, predicted=n, **metrics(nats))
    print("train_head_400k", json.dumps(result["train_head_400k"]), flush=True)
    with open(path, "rb") as f:
        blob = f.read()
    result["checkpoint"] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                            "params": sum(p.numel() for p in model.parameters())}
    result["sizes"] = {"train_bytes": len(train_data), "val_bytes": len(val_data),
                       "val_txt_bytes": len(val_txt)}
    print(json.dumps(result["checkpoint"]), flush=True)
    name = "eval.json" if args.eval_only else "train-log.json"
    with open(os.path.join(args.out, name), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    for temp in (0.0, 0.8):
        print(f"--- sample, temperature {temp} ---")
        print(sample(model, "In the beginning", 300, temp, args.seed))


if __name__ == "__main__":
    main()
