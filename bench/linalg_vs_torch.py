#!/usr/bin/env python3
"""downhill's eigendecomposition and QR (faer) beside torch.linalg (LAPACK).

    python3 bench/linalg_vs_torch.py [--threads 2] [--sizes 256,1024,2048] [--seconds 2]

Runs `cargo bench -p downhill --bench decompositions -- --json` and, in an
interpreter that can `import torch` ($TORCH_PYTHON, else this one), the same
symmetric positive-definite matrices through `torch.linalg.eigh` and square
matrices through `torch.linalg.qr` (reduced), f32 and f64, best of several
calls, in one run. The ratio is torch's time over downhill's: above 1,
downhill is faster.
"""
import argparse, json, os, subprocess, sys

from torch_python import python_with_torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import json, sys, time, torch
threads, seconds, sizes = int(sys.argv[1]), float(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
torch.set_num_threads(threads)
def best(f):
    f(); end, runs, b = time.perf_counter() + seconds, 0, float("inf")
    while runs < 3 or time.perf_counter() < end:
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t); runs += 1
    return b
for n in sizes:
    g = torch.Generator().manual_seed(1)
    b64 = torch.randn(n, n, dtype=torch.float64, generator=g)
    a64 = b64 @ b64.T / n + torch.eye(n, dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        a, b = a64.to(dtype), b64.to(dtype)
        te = best(lambda: torch.linalg.eigh(a))
        tq = best(lambda: torch.linalg.qr(b))
        print(json.dumps({"n": n, "dtype": str(dtype).split(".")[1], "eigh_ms": te * 1e3, "qr_ms": tq * 1e3}))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sizes", default="256,1024,2048")
    a = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    out = subprocess.run(["cargo", "bench", "-q", "-p", "downhill", "--bench", "decompositions", "--",
                          "--json", "--seconds", str(a.seconds), "--sizes", a.sizes],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    ours = {(d["n"], d["dtype"]): d for d in (json.loads(l) for l in out.splitlines() if l.startswith("{"))}
    theirs = {}
    py = python_with_torch()
    if py:
        t = subprocess.run([py, "-c", TORCH, str(a.threads), str(a.seconds), a.sizes],
                           check=True, capture_output=True, text=True).stdout
        theirs = {(d["n"], d["dtype"]): d for d in (json.loads(l) for l in t.splitlines() if l.startswith("{"))}
    print(f"threads: {a.threads}")
    print("| n | dtype | eigh: downhill / torch ms | torch ÷ downhill | qr: downhill / torch ms | torch ÷ downhill |")
    print("|---:|---|---:|---:|---:|---:|")
    for (n, dtype), d in ours.items():
        r = theirs.get((n, dtype))
        fmt = lambda key: (f"{d[key]:.1f} / {r[key]:.1f}", f"{r[key] / d[key]:.2f}") if r else (f"{d[key]:.1f} / n/a", "n/a")
        (e, er), (q, qr_) = fmt("eigh_ms"), fmt("qr_ms")
        print(f"| {n} | {dtype} | {e} | {er} | {q} | {qr_} |")


if __name__ == "__main__":
    sys.exit(main())
