#!/usr/bin/env python3
"""Where a training step's CPU time goes, by phase, from perf samples.

    RAYON_NUM_THREADS=2 perf record -F 999 -o /tmp/perf-mlp.data \
        target/release/examples/train_throughput mlp:1000,1000 12800 3
    RAYON_NUM_THREADS=2 perf record -F 999 -o /tmp/perf-cnn.data \
        target/release/examples/train_throughput cnn:32,32,64:pool=2 12800 3
    python3 bench/phase_budget.py /tmp/perf-mlp.data /tmp/perf-cnn.data

Sums `perf report --no-children --sort symbol` by the phase each symbol
belongs to (the rules are in `phase` below) and prints a Markdown table,
one column per file. Shares are of all samples on both threads, including
the few seconds that generate the random data.
"""
import re, sys, subprocess


def cats(path):
    """Percent of samples per phase in one perf.data file."""
    out = subprocess.run(["perf","report","-i",path,"--no-children","--sort","symbol","--stdio"],capture_output=True,text=True).stdout
    tot = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+\[(.)\]\s+(.*?)\s+-\s+-", line)
        if not m: continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        if kind == 'k' or 'sched_yield' in sym: c = "threads: kernel, scheduling, waiting"
        elif sym.startswith("gemm"): c = "matrix products (gemm crate)"
        elif "optim::passes::leaf" in sym or "optim::" in sym and "norm_squared" not in sym: c = "optimiser step (Adam)"
        elif "norm_squared" in sym: c = "gradient norm (finite check)"
        elif "downhill_nn" in sym: c = "element-wise layers, loss, im2col/pool (downhill-nn)"
        elif "memmove" in sym or "memcpy" in sym: c = "memory copies (batch gathering)"
        else: c = "other (rayon, allocation, setup)"
        tot[c] = tot.get(c, 0) + pct
    return tot
if len(sys.argv) < 2:
    sys.exit(__doc__)
cols = [cats(p) for p in sys.argv[1:]]
keys = sorted({k for c in cols for k in c}, key=lambda k: -sum(c.get(k, 0) for c in cols))
print("| phase | " + " | ".join(sys.argv[1:]) + " |")
print("|---|" + "---:|" * len(cols))
for k in keys:
    print(f"| {k} | " + " | ".join(f"{c.get(k, 0):.1f}%" for c in cols) + " |")
