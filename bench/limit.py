#!/usr/bin/env python3
"""How close a whole training step comes to the machine's matrix-product rate.

    python3 bench/limit.py [--runs 3] [--threads 2] [--examples 12800] [--epochs 3]
                           [--yardstick auto|numpy|downhill] [--before EXE]

Runs downhill's real training loop (`train_throughput`: batch gathering,
forward, backward, gradient norm, Adam step; random 1x28x28 images, batch
128) on the MLP and the CNN, and a 1024x1024x1024 f32 product as the
yardstick, alternately in the same run. The yardstick is numpy's matmul
(OpenBLAS, on `$TORCH_PYTHON` or this interpreter) when numpy is there,
otherwise downhill's own product layer (`gemm_shapes square 1024`);
`--yardstick` picks one, and the output says which. Prints, per run, each model's samples/s, the GFLOP/s
that makes, and its fraction of the yardstick. `--before EXE` also runs
another build of `train_throughput` (e.g. one copied from an earlier
commit's `target/release/examples/`) right after each model's run, so a
change is measured against its predecessor in the same run.

FLOP per sample (forward + backward, no gradient for the input images),
counted from the layer shapes:
- MLP 784-1000-1000-10: forward 2(784*1000 + 1000*1000 + 1000*10) = 3.59M,
  weight gradients the same, input gradients of the two upper layers
  2(1000*1000 + 1000*10) = 2.02M: 9.20M.
- CNN c32-c32-c64 (5x5, same padding, 2x2 pool after each) + fc1000:
  forward 2(784*25*32 + 196*800*32 + 49*800*64 + 576*1000 + 1000*10)
  = 17.45M, weight gradients the same, input gradients of every layer but
  the first 16.20M: 51.10M.
"""
import argparse, json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = [
    ("MLP 784-1000-1000-10", "mlp:1000,1000", 9.20e6),
    ("CNN c32-c32-c64 + fc1000", "cnn:32,32,64:pool=2", 51.10e6),
]
NUMPY = r'''
import sys, time, numpy as np
n = 1024
a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
a @ b
best, end = float("inf"), time.perf_counter() + 2.0
while time.perf_counter() < end:
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(2 * n ** 3 / best / 1e9)
'''


def numpy_python():
    """An interpreter that can import numpy: $TORCH_PYTHON first, then this one."""
    for py in [os.environ.get("TORCH_PYTHON"), sys.executable]:
        if py and os.path.exists(py):
            ok = subprocess.run([py, "-c", "import numpy"], capture_output=True).returncode == 0
            if ok:
                return py
            print(f"{py}: no numpy", file=sys.stderr)
    return None


def yardstick(py, env, forced):
    if py:
        out = subprocess.run([py, "-c", NUMPY], capture_output=True, text=True, env=env, check=True)
        return float(out.stdout.strip()), "numpy (OpenBLAS) 1024^3"
    exe = os.path.join(ROOT, "target", "release", "examples", "gemm_shapes")
    out = subprocess.run([exe, "square", "1024"], capture_output=True, text=True, env=env, check=True)
    rates = re.findall(r"Pool\s+([\d.]+) GFLOP/s", out.stdout)
    if not rates:
        sys.exit("bench/limit.py: no rate in gemm_shapes' output:\n" + out.stdout)
    return float(rates[-1]), "downhill's product layer 1024^3" + ("" if forced else " (numpy not found)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--examples", type=int, default=12800)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--yardstick", choices=["auto", "numpy", "downhill"], default="auto")
    ap.add_argument("--before", help="another train_throughput binary, run beside this build's")
    a = ap.parse_args()
    for pkg, ex in [("downhill-train", "train_throughput"), ("downhill-nn", "gemm_shapes")]:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", pkg, "--example", ex], cwd=ROOT, check=True)
    train = os.path.join(ROOT, "target", "release", "examples", "train_throughput")
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads),
               OPENBLAS_NUM_THREADS=str(a.threads))
    py = None if a.yardstick == "downhill" else numpy_python()
    if a.yardstick == "numpy" and py is None:
        sys.exit("bench/limit.py: --yardstick numpy, but no interpreter here imports numpy")
    print(f"{a.threads} threads, batch 128, Adam; {time.strftime('%Y-%m-%d')}")
    builds = [("", train)] + ([(" (before)", a.before)] if a.before else [])
    print("| run | yardstick GFLOP/s | model | samples/s | GFLOP/s | fraction |")
    print("|---:|---:|---|---:|---:|---:|")
    for run in range(1, a.runs + 1):
        for desc, spec, flop in MODELS:
            ref, what = yardstick(py, env, a.yardstick == "downhill")
            for tag, exe in builds:
                out = subprocess.run([exe, spec, str(a.examples), str(a.epochs)], capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    sys.exit(f"bench/limit.py: {spec} failed:\n{out.stderr}")
                sps = json.loads(out.stdout.strip().splitlines()[-1])["samples_per_sec"]
                rate = sps * flop / 1e9
                print(f"| {run} | {ref:.0f} | {desc}{tag} | {sps:.0f} | {rate:.1f} | {rate / ref:.2f} |", flush=True)
    print(f"yardstick: {what}, measured before each model's run")


if __name__ == "__main__":
    main()
