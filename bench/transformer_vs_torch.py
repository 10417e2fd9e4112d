#!/usr/bin/env python3
"""The character-level transformer in downhill and in PyTorch: same model,
same initial weights, same batches, same optimiser.

downhill's `lm_trace` example trains the model and writes its trace: the
initial weights and the first step's gradient (torch's names and layout),
the windows, every step's batch, the losses and the held-out loss, and its
step time. This script builds the same model in PyTorch, loads downhill's
initial weights with `load_state_dict(strict=True)`, replays the batches
with `torch.optim.AdamW` of the same settings, and reports:

- the first step's loss and gradients: relative difference (f32);
- the held-out loss after the last step: relative difference;
- tokens per second of both, with the same thread count, and downhill's
  step GFLOP/s against its own product layer's rate in the same run.

Usage (PyTorch from $TORCH_PYTHON, else this interpreter):

    python3 bench/transformer_vs_torch.py [--steps 200] [--threads 2] \
        [--model transformer:layers=4,d=128,heads=4,context=128] [--batch 32] [--lr 0.001]

Only run by hand: the project never needs PyTorch to build or test.
"""
import argparse, json, os, subprocess, sys, tempfile

from torch_python import python_with_torch  # $TORCH_PYTHON, else this interpreter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import json, math, os, struct, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
trace_dir, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
tr = json.load(open(os.path.join(trace_dir, "trace.json")))
spec = dict(kv.split("=") for kv in tr["model"].split(":")[1].split(","))
L, D, H, C = (int(spec[k]) for k in ("layers", "d", "heads", "context"))
tied = spec.get("tied") == "true"
V, B = tr["vocab"], tr["batch"]

def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).copy()).reshape(meta["shape"])
    return out

class Attn(nn.Module):
    def __init__(s):
        super().__init__(); s.qkv = nn.Linear(D, 3 * D); s.proj = nn.Linear(D, D)
    def forward(s, x):
        b, t, _ = x.shape
        q, k, v = s.qkv(x).split(D, dim=2)
        q, k, v = (z.view(b, t, H, D // H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return s.proj(y.transpose(1, 2).reshape(b, t, D))

class Mlp(nn.Module):
    def __init__(s):
        super().__init__(); s.fc = nn.Linear(D, 4 * D); s.proj = nn.Linear(4 * D, D)
    def forward(s, x):
        return s.proj(F.gelu(s.fc(x), approximate="tanh"))

class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln1 = nn.LayerNorm(D); s.attn = Attn(); s.ln2 = nn.LayerNorm(D); s.mlp = Mlp()
    def forward(s, x):
        x = x + s.attn(s.ln1(x))
        return x + s.mlp(s.ln2(x))

class Gpt(nn.Module):
    def __init__(s):
        super().__init__()
        s.tok_emb = nn.Embedding(V, D); s.pos_emb = nn.Embedding(C, D)
        s.blocks = nn.ModuleList(Block() for _ in range(L))
        s.ln_f = nn.LayerNorm(D); s.head = nn.Linear(D, V, bias=False)
        if tied:
            s.head.weight = s.tok_emb.weight
    def forward(s, idx):
        x = s.tok_emb(idx) + s.pos_emb.weight[: idx.shape[1]]
        for blk in s.blocks:
            x = blk(x)
        return s.head(s.ln_f(x))

def windows(name):
    w = np.frombuffer(open(os.path.join(trace_dir, name), "rb").read(), dtype=np.uint16)
    return torch.from_numpy(w.astype(np.int64)).view(-1, C + 1)

train, test = windows("train.bin"), windows("test.bin")
rows = torch.from_numpy(np.frombuffer(open(os.path.join(trace_dir, "rows.bin"), "rb").read(), dtype=np.uint32).astype(np.int64))
model = Gpt()
model.load_state_dict(read_safetensors(os.path.join(trace_dir, "init.safetensors")), strict=True)
opt_spec = tr["optimizer"]
hp = dict(lr=1e-3, weight_decay=1e-2)
for kv in opt_spec[opt_spec.index("(") + 1:-1].split(","):
    k, v = kv.split("="); hp[k.strip()] = float(v)
opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=hp["weight_decay"])

def loss_of(batch):
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))

grad0 = read_safetensors(os.path.join(trace_dir, "grad0.safetensors"))
steps, per, times, first = tr["steps"], [], [], {}
at = 0
for s in range(steps):
    # rows.bin holds each step's batch in order (a data epoch's last batch is short).
    idx = rows[at:at + tr["batch_rows"][s]]
    at += len(idx)
    batch = train[idx]
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = loss_of(batch)
    loss.backward()
    if s == 0:
        worst = 0.0
        for name, p in model.named_parameters():
            g, ref = p.grad, grad0[name]
            worst = max(worst, ((g - ref).norm() / ref.norm()).item())
        first = {"loss": loss.item(), "grad_rel_worst": worst}
    opt.step()
    times.append(time.perf_counter() - t0)
    per.append(loss.item())
model.eval()
with torch.no_grad():
    tot, cnt = 0.0, 0
    for i in range(0, len(test), 64):
        b = test[i:i + 64]
        logits = model(b[:, :-1])
        tot += F.cross_entropy(logits.reshape(-1, V), b[:, 1:].reshape(-1), reduction="sum").item()
        cnt += b[:, 1:].numel()
steady = sorted(times[3:] if len(times) > 4 else times)
print(json.dumps({"torch": torch.__version__, "first_loss": first["loss"], "grad_rel_worst": first["grad_rel_worst"],
                  "losses": per, "test_loss": tot / cnt, "seconds_per_step": steady[len(steady) // 2],
                  "tokens_per_sec": B * C / steady[len(steady) // 2]}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="transformer:layers=4,d=128,heads=4,context=128")
    ap.add_argument("--data", default="builtin:shakespeare")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="keep the trace here (default: a temporary folder)")
    a = ap.parse_args()
    py = python_with_torch()
    if py is None:
        sys.exit("PyTorch not found (set TORCH_PYTHON to a Python that has it)")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "downhill-train", "--example", "lm_trace"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "lm_trace")
    out = a.out or tempfile.mkdtemp(prefix="lm-trace-")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    subprocess.run([exe, "--model", a.model, "--data", a.data, "--batch", str(a.batch), "--steps", str(a.steps),
                    "--optimizer", f"adamw(lr={a.lr})", "--seed", str(a.seed), "--out", out], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    dh = json.load(open(os.path.join(out, "trace.json")))
    res = subprocess.run([py, "-c", TORCH, out, str(a.threads)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"torch failed:\n{res.stderr}")
    th = json.loads(res.stdout.strip().splitlines()[-1])
    first_rel = abs(dh["losses"][0] - th["first_loss"]) / th["first_loss"]
    test_rel = abs(dh["test_loss"] - th["test_loss"]) / th["test_loss"]
    print(f"model {a.model}, {a.data}, batch {a.batch}, {a.steps} AdamW steps (lr {a.lr}), {a.threads} threads, {th['torch']}")
    print(f"| check | downhill | torch | relative difference |")
    print(f"|---|---|---|---|")
    print(f"| first step's loss | {dh['losses'][0]:.6f} | {th['first_loss']:.6f} | {first_rel:.1e} |")
    print(f"| first step's gradient, worst tensor ‖Δ‖/‖g‖ | | | {th['grad_rel_worst']:.1e} |")
    print(f"| held-out loss after step {a.steps} (nats) | {dh['test_loss']:.4f} | {th['test_loss']:.4f} | {test_rel:.2%} |")
    print(f"| tokens/s | {dh['tokens_per_sec']:.0f} | {th['tokens_per_sec']:.0f} | ratio {dh['tokens_per_sec'] / th['tokens_per_sec']:.2f}x |")
    print(f"downhill: {dh['step_gflop']:.1f} GFLOP per step at {dh['step_gflops_per_sec']:.1f} GFLOP/s; its product layer "
          f"runs {dh['product_gflops_per_sec']:.1f} GFLOP/s on [tokens, d]x[d, 4d] in the same run "
          f"({dh['step_gflops_per_sec'] / dh['product_gflops_per_sec']:.0%}); update {dh['update_seconds'] * 1e3:.1f} ms "
          f"of a {dh['seconds_per_step'] * 1e3:.0f} ms step")
    json.dump({"downhill": dh, "torch": th}, open(os.path.join(out, "comparison.json"), "w"))


if __name__ == "__main__":
    main()
