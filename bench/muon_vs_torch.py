#!/usr/bin/env python3
"""Muon's step on an MLP's matrices: downhill beside torch.optim.Muon.

    python3 bench/muon_vs_torch.py [--threads 2] [--seconds 2]

Runs `cargo bench -p downhill --bench muon_step -- --json` (downhill's step
and its matrix-product layer's own GFLOP/s on the same products) and, when
an interpreter can `import torch` ($TORCH_PYTHON, else this one; see
torch_python.py), torch's Muon on the same matrices twice: as shipped (its
Newton-Schulz iteration in bfloat16) and patched to run it in float32, the
parameter's dtype, as downhill does. All in one run, so the ratios hold on a
noisy machine.
"""
import argparse, json, os, subprocess, sys

from torch_python import python_with_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import json, sys, time, torch
import torch.optim._muon as muon_module
threads, seconds, shapes = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
torch.set_num_threads(threads)
shipped = muon_module._zeropower_via_newtonschulz

def in_param_dtype(grad, ns_coefficients, ns_steps, eps):
    # torch's iteration with bfloat16 replaced by the gradient's own dtype.
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

for shape in shapes:
    r, c = map(int, shape.split("x"))
    for name, fn in (("bfloat16", shipped), ("float32", in_param_dtype)):
        muon_module._zeropower_via_newtonschulz = fn
        p = torch.nn.Parameter(((torch.arange(r * c) % 13).float() - 6.0).reshape(r, c) * 1e-2)
        p.grad = ((torch.arange(r * c) % 7).float() - 3.0).reshape(r, c) * 1e-3
        opt = torch.optim.Muon([p], lr=0.02)
        opt.step()
        best, end, runs = float("inf"), time.perf_counter() + seconds, 0
        while runs < 3 or time.perf_counter() < end:
            t0 = time.perf_counter(); opt.step(); best = min(best, time.perf_counter() - t0); runs += 1
        print(json.dumps({"rows": r, "cols": c, "torch": name, "step_ms": best * 1e3}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--shapes", default="1000x1000,784x1000")
    a = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "downhill", "--bench", "muon_step", "--",
         "--json", "--seconds", str(a.seconds), "--shapes", a.shapes],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    ours = {(d["rows"], d["cols"]): d for d in map(json.loads, filter(None, out.splitlines()))}
    theirs = {}
    py = python_with_torch()
    if py:
        t = subprocess.run([py, "-c", TORCH, str(a.threads), str(a.seconds), a.shapes],
                           check=True, capture_output=True, text=True).stdout
        for d in map(json.loads, filter(None, t.splitlines())):
            theirs[(d["rows"], d["cols"], d["torch"])] = d["step_ms"]
    print(f"threads: {a.threads}")
    print("| matrix | downhill step, ms | products, GFLOP/s (step / layer alone) | torch Muon bf16, ms | torch Muon f32, ms |")
    print("|---|---:|---:|---:|---:|")
    for (r, c), d in ours.items():
        bf = theirs.get((r, c, "bfloat16"))
        f32 = theirs.get((r, c, "float32"))
        fmt = lambda v: f"{v:.1f} ({v / d['step_ms']:.1f}×)" if v else "n/a"
        print(f"| {r}×{c} | {d['step_ms']:.1f} | {d['step_gflops']:.0f} / {d['products_gflops']:.0f} = "
              f"{d['step_gflops'] / d['products_gflops']:.2f} | {fmt(bf)} | {fmt(f32)} |")


if __name__ == "__main__":
    sys.exit(main())
