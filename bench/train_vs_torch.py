#!/usr/bin/env python3
"""Training throughput and peak memory of downhill and PyTorch, side by side.

Same model, batch size (128), optimizer (Adam, lr 1e-3), data shape (random
1x28x28 images, 10 classes) and thread count (2), each framework in its own
process so peak RSS is its own. Usage:

    python3 bench/train_vs_torch.py [--examples 12800] [--epochs 3] [--models logreg,mlp,cnn]

Needs the downhill example built (the script builds it) and, for the PyTorch
column, an interpreter that can `import torch`: `$TORCH_PYTHON` if set, else
the one running this script (candidates that are missing or lack torch are
named on stderr and skipped); without PyTorch it reports downhill alone.
"""
import argparse, json, os, subprocess, sys

from torch_python import python_with_torch  # $TORCH_PYTHON, else this interpreter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    # name: (downhill-nn spec, description)
    "logreg": ("logreg", "logistic regression 784-10"),
    "mlp": ("mlp:1000,1000", "MLP 784-1000-1000-10 ReLU"),
    "cnn": ("cnn:32,32,64:pool=2", "CNN c32-c32-c64 (5x5, 2x2 pool) + fc1000"),
}

TORCH = r'''
import json, resource, sys, time, torch, torch.nn as nn
name, n, epochs, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(1)
if name == "logreg":
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
elif name == "mlp":
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10))
else:
    c = lambda i, o: [nn.Conv2d(i, o, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
    model = nn.Sequential(*c(1, 32), *c(32, 32), *c(32, 64), nn.Flatten(), nn.Linear(64 * 3 * 3, 1000), nn.ReLU(), nn.Linear(1000, 10))
x = torch.rand(n, 1, 28, 28)
y = torch.randint(0, 10, (n,))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
best = 0.0
for epoch in range(epochs):
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    best = max(best, n / (time.perf_counter() - t0))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"framework": "torch " + torch.__version__, "model": name, "batch": batch, "threads": threads,
                  "samples_per_sec": round(best, 1), "peak_rss_bytes": rss}))
'''


def run(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=12800)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="logreg,mlp,cnn")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "downhill-train", "--example", "train_throughput"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "train_throughput")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    py = python_with_torch()
    if py is None:
        print("PyTorch not found (set TORCH_PYTHON to a Python that has it): reporting downhill alone")
    print(f"| model | downhill samples/s | torch samples/s | ratio | downhill peak RSS | torch peak RSS | RSS ratio |")
    print(f"|---|---:|---:|---:|---:|---:|---:|")
    for name in a.models.split(","):
        spec, desc = MODELS[name]
        n = a.examples if name != "cnn" else min(a.examples, 6400)
        d = run([exe, spec, str(n), str(a.epochs), str(a.batch)], env)
        mib = lambda b: f"{b / 2**20:.0f} MiB"
        if py:
            t = run([py, "-c", TORCH, name, str(n), str(a.epochs), str(a.batch), str(a.threads)], env)
            print(f"| {desc} | {d['samples_per_sec']:.0f} | {t['samples_per_sec']:.0f} | {d['samples_per_sec'] / t['samples_per_sec']:.2f}x "
                  f"| {mib(d['peak_rss_bytes'])} | {mib(t['peak_rss_bytes'])} | {d['peak_rss_bytes'] / t['peak_rss_bytes']:.2f} |")
        else:
            print(f"| {desc} | {d['samples_per_sec']:.0f} | — | — | {mib(d['peak_rss_bytes'])} | — | — |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
