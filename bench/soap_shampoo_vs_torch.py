#!/usr/bin/env python3
"""SOAP's and Shampoo's steps: downhill beside the reference implementations.

    python3 bench/soap_shampoo_vs_torch.py [--threads 2] [--steps 40] [--frequency 10]
                                           [--shapes "1024x1024;784x1000,1000x1000,1000x10"]

Runs `cargo bench -p downhill --bench kronecker_step -- --json` (downhill's
mean and worst step, refreshes included) and, in an interpreter that can
`import torch` ($TORCH_PYTHON, else this one; see torch_python.py), the
authors' soap.py and facebookresearch's DistributedShampoo in float32 on the
CPU with the same shapes, steps, refresh frequency and settings, all in one
run so the ratios hold on a noisy machine. Both references are third-party
code that the repository does not carry: they are imported from
../shared/reference (seen from the repository's root), or from
$DOWNHILL_REFERENCE. Where they or torch are missing, their columns say so.
"""
import argparse, json, os, subprocess, sys

from torch_python import python_with_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.environ.get("DOWNHILL_REFERENCE", os.path.join(os.path.dirname(ROOT), "shared", "reference"))

TORCH = r'''
import json, sys, time, torch
ref, threads, steps, freq, sets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(";")
sys.path.insert(0, ref)
torch.set_num_threads(threads)
import logging
logging.getLogger("distributed_shampoo").setLevel(logging.ERROR)
from soap import SOAP
from distributed_shampoo import DistributedShampoo
from distributed_shampoo.shampoo_types import AdamPreconditionerConfig

def make(name, params):
    if name == "soap":
        return SOAP(params, lr=3e-3, precondition_frequency=freq)
    return DistributedShampoo(params, lr=1e-2, betas=(0.9, 0.999), epsilon=1e-8,
                              precondition_frequency=freq,
                              grafting_config=AdamPreconditionerConfig(beta2=0.999, epsilon=1e-8))

for s in sets:
    shapes = [tuple(map(int, x.split("x"))) for x in s.split(",")]
    for name in ("soap", "shampoo"):
        params = [torch.nn.Parameter(((torch.arange(r * c) % 13).float() - 6.0).reshape(r, c) * 1e-2) for r, c in shapes]
        grads = [[(((torch.arange(r * c) * 7 + k * 3) % 11).float() - 5.0).reshape(r, c) * 1e-3 for r, c in shapes] for k in range(4)]
        opt = make(name, params)
        def step(k):
            for p, g in zip(params, grads[k % 4]):
                p.grad = g.clone()
            opt.step()
        for k in range(freq + 2):  # past the setup and the first roots, as downhill's bench
            step(k)
        times = []
        for k in range(steps):
            t0 = time.perf_counter(); step(k); times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        print(json.dumps({"optimizer": name, "shapes": s, "mean_ms": sum(times) / steps, "worst_ms": times[-1]}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--frequency", type=int, default=10)
    ap.add_argument("--shapes", default="1024x1024;784x1000,1000x1000,1000x10")
    a = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "downhill", "--bench", "kronecker_step", "--", "--json",
         "--steps", str(a.steps), "--frequency", str(a.frequency), "--shapes", a.shapes],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    ours = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    theirs = {}
    py = python_with_torch()
    if py is None:
        print("no interpreter imports torch: the reference columns are empty", file=sys.stderr)
    elif not os.path.isdir(REFERENCE):
        print(f"{REFERENCE}: no reference code (soap.py, distributed_shampoo): set DOWNHILL_REFERENCE", file=sys.stderr)
    else:
        t = subprocess.run([py, "-c", TORCH, REFERENCE, str(a.threads), str(a.steps), str(a.frequency), a.shapes],
                           check=True, capture_output=True, text=True, env=env).stdout
        for d in (json.loads(l) for l in t.splitlines() if l.startswith("{")):
            theirs[(d["optimizer"], d["shapes"])] = d
    print(f"threads: {a.threads}, float32, {a.steps} steps, refresh every {a.frequency}")
    print("| optimizer | matrices | downhill mean / worst ms | worst/mean | plain step, share of the layer's GFLOP/s | reference mean / worst ms | reference / downhill (mean) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for d in ours:
        r = None if d.get("stagger") else theirs.get((d["optimizer"], d["shapes"]))
        ref = f"{r['mean_ms']:.1f} / {r['worst_ms']:.1f}" if r else "n/a"
        ratio = f"{r['mean_ms'] / d['mean_ms']:.2f}×" if r else "n/a"
        name = d["optimizer"] + (", staggered" if d.get("stagger") else "")
        print(f"| {name} | {d['shapes']} | {d['mean_ms']:.1f} / {d['worst_ms']:.1f} | "
              f"{d['worst_ms'] / d['mean_ms']:.2f} | {d['gflops'] / d['layer_gflops']:.2f} | {ref} | {ratio} |")


if __name__ == "__main__":
    sys.exit(main())
