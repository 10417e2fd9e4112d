#!/usr/bin/env python3
"""Adam step throughput: downhill beside PyTorch's fused Adam and beside a
streaming-memory kernel that moves the same 28 bytes per parameter.

    python3 bench/optim_vs_torch.py [--params 10000000] [--threads 2] [--seconds 2]

Runs `cargo bench -p downhill --bench step_throughput` for Adam (with and
without the non-finite gradient check) and, when an interpreter can
`import torch` (`$TORCH_PYTHON` if set, else the one running this script;
candidates that are missing or lack torch are named on stderr and skipped),
torch.optim.Adam(fused=True) on the same number of f32 parameters.
"""
import argparse, os, re, subprocess, sys, time

from torch_python import python_with_torch  # $TORCH_PYTHON, else this interpreter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TORCH = r'''
import sys, time, torch
n, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(threads)
p = torch.nn.Parameter(torch.full((n,), 0.5))
p.grad = ((torch.arange(n) % 97).float() - 48.0) * 1e-3
for fused in (True, False):
    opt = torch.optim.Adam([p], lr=1e-3, fused=fused, foreach=None if fused else True)
    opt.step()
    best, t_end, runs = float("inf"), time.perf_counter() + seconds, 0
    while runs < 3 or time.perf_counter() < t_end:
        t0 = time.perf_counter(); opt.step(); best = min(best, time.perf_counter() - t0); runs += 1
    print(f"{'fused' if fused else 'foreach'} {n / best / 1e6:.0f}")
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=int, default=10_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    rows = {}
    for flag in ([], ["--unchecked"]):
        out = subprocess.run(["cargo", "bench", "-q", "-p", "downhill", "--bench", "step_throughput", "--",
                              "--sizes", str(a.params), "--optimizers", "adam", "--seconds", str(a.seconds)] + flag,
                             cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        m = re.search(r"\| adam \| \d+ \| (\d+) \| (\d+) \|", out.stdout)
        if m is None:
            sys.exit("bench/optim_vs_torch.py: no adam row in the step bench output:\n" + out.stdout)
        # Each run measures its own streaming kernel: compare within a run.
        rows["downhill adam" + (" (unchecked)" if flag else " (checks gradients)")] = (int(m.group(1)), int(m.group(2)))
    py = python_with_torch()
    if py:
        out = subprocess.run([py, "-c", TORCH, str(a.params), str(a.threads), str(a.seconds)], env=env, capture_output=True, text=True, check=True)
        for line in out.stdout.split("\n"):
            if line.strip():
                kind, rate = line.split()
                rows[f"torch Adam ({kind})"] = (int(rate), None)
    else:
        print("PyTorch not found (set TORCH_PYTHON to a Python that has it): reporting downhill alone")
    base = rows.get("torch Adam (fused)", (None,))[0]
    print(f"{a.params} f32 parameters, {a.threads} threads")
    print("| step | Mparam/s | stream kernel (28 B/param) in the same run | vs kernel | vs torch fused |")
    print("|---|---:|---:|---:|---:|")
    for k, (v, kernel) in rows.items():
        kern = f"{kernel}" if kernel else "—"
        ratio = f"{v / kernel:.2f}" if kernel else "—"
        print(f"| {k} | {v} | {kern} | {ratio} | {f'{v / base:.2f}x' if base else '—'} |")


if __name__ == "__main__":
    main()
