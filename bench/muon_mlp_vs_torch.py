#!/usr/bin/env python3
"""Muon in a real training run: downhill beside PyTorch on Fashion-MNIST.

    python3 bench/muon_mlp_vs_torch.py [--data /usr/share/datasets/fashion-mnist]
                                       [--epochs 5] [--seeds 1,2,3] [--threads 2]

The same model and recipe in both: an MLP 784-256-256-10 (ReLU), batch 128,
pixels scaled to [0, 1], Muon(lr=0.02) on the hidden 256x256 matrix and
AdamW(lr=1e-3) on everything else (torch's defaults otherwise: Muon's weight
decay 0.1, momentum 0.95, Nesterov; AdamW's weight decay 0.01). torch's Muon
runs its Newton-Schulz iteration in bfloat16; it is patched here to run it in
float32, the parameter's dtype, as downhill does (and as the reference
fixtures do). Both initialise as downhill does (He uniform before a ReLU,
Glorot uniform at the output, zero biases); each draws its own seeded
weights and shuffle, so single runs differ by noise: several seeds are run
and the mean test accuracy after the last epoch compared.

PyTorch comes from $TORCH_PYTHON, else this interpreter (torch_python.py);
downhill from `cargo run --release -p downhill-cli`.
"""
import argparse, json, os, subprocess, sys, tempfile

from torch_python import python_with_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import gzip, json, struct, sys, time
import numpy as np, torch, torch.nn as nn
import torch.optim._muon as muon_module
data, epochs, seed, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(seed)

def in_param_dtype(grad, ns_coefficients, ns_steps, eps):
    a, b, c = ns_coefficients
    x = grad.clone()
    if grad.size(0) > grad.size(1):
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        g = x @ x.T
        u = torch.addmm(g, g, g, beta=b, alpha=c)
        x = torch.addmm(x, u, x, beta=a)
    if grad.size(0) > grad.size(1):
        x = x.T
    return x
muon_module._zeropower_via_newtonschulz = in_param_dtype

def idx(name):
    with gzip.open(f"{data}/{name}.gz", "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

xtr = torch.tensor(idx("train-images-idx3-ubyte").reshape(-1, 784), dtype=torch.float32) / 255
ytr = torch.tensor(idx("train-labels-idx1-ubyte"), dtype=torch.long)
xte = torch.tensor(idx("t10k-images-idx3-ubyte").reshape(-1, 784), dtype=torch.float32) / 255
yte = torch.tensor(idx("t10k-labels-idx1-ubyte"), dtype=torch.long)
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
# downhill's initialisation, so that the runs differ by the optimisers'
# arithmetic and the random draws only: He uniform before a ReLU, Glorot
# uniform for the output layer, zero biases (torch's default Linear init is
# U(+-1/sqrt(fan_in)) with non-zero biases).
with torch.no_grad():
    for layer, relu in ((model[0], True), (model[2], True), (model[4], False)):
        fan_out, fan_in = layer.weight.shape
        bound = (6 / fan_in) ** 0.5 if relu else (6 / (fan_in + fan_out)) ** 0.5
        layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()
hidden = [model[2].weight]
rest = [p for p in model.parameters() if p is not model[2].weight]
muon = torch.optim.Muon(hidden, lr=0.02)
adamw = torch.optim.AdamW(rest, lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
start = time.perf_counter()
for epoch in range(epochs):
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 128):
        b = perm[i:i + 128]
        muon.zero_grad(); adamw.zero_grad()
        loss_fn(model(xtr[b]), ytr[b]).backward()
        muon.step(); adamw.step()
with torch.no_grad():
    acc = (model(xte).argmax(1) == yte).float().mean().item()
print(json.dumps({"accuracy": acc, "seconds": time.perf_counter() - start}))
'''


def downhill(data, epochs, seed, threads):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            ["cargo", "run", "-q", "--release", "-p", "downhill-cli", "--", "train",
             "--data", f"idx:{data}", "--model", "mlp:256,256", "--batch-size", "128",
             "--optimizer", "partition(hidden=muon(lr=0.02),all=adamw(lr=0.001))",
             "--epochs", str(epochs), "--seed", str(seed), "--threads", str(threads), "--out", out],
            cwd=ROOT, check=True, capture_output=True, text=True)
        with open(os.path.join(out, "summary.json")) as f:
            s = json.load(f)
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    ours = []
    for seed in seeds:
        s = downhill(a.data, a.epochs, seed, a.threads)
        ours.append(s["last"]["test_accuracy"])
        print(f"downhill seed {seed}: test accuracy {ours[-1]:.4f}", flush=True)
    theirs = []
    py = python_with_torch()
    if py:
        for seed in seeds:
            r = subprocess.run([py, "-c", TORCH, a.data, str(a.epochs), str(seed), str(a.threads)],
                               check=True, capture_output=True, text=True)
            theirs.append(json.loads(r.stdout.strip().splitlines()[-1])["accuracy"])
            print(f"torch    seed {seed}: test accuracy {theirs[-1]:.4f}", flush=True)
    mean = lambda xs: sum(xs) / len(xs)
    print(f"downhill mean {mean(ours):.4f} over {len(ours)} seeds")
    if theirs:
        print(f"torch    mean {mean(theirs):.4f} over {len(theirs)} seeds; "
              f"difference {100 * (mean(ours) - mean(theirs)):+.2f} points")


if __name__ == "__main__":
    sys.exit(main())
