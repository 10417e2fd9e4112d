#!/usr/bin/env python3
"""Where the transformer's training step spends its CPU time, by phase.

    cargo build --release -p downhill-train --example lm_trace
    RAYON_NUM_THREADS=2 perf record --call-graph dwarf,16384 -F 300 -o /tmp/perf-lm.data \
        target/release/examples/lm_trace --steps 12 --out /tmp/lm-phases
    python3 bench/transformer_phases.py /tmp/perf-lm.data

The kernels run inside rayon tasks and SIMD wrappers, so a flat profile
names only those wrappers; this sums perf's *inclusive* shares
(`--children`) of each kernel function instead, from a DWARF call graph.
The attention's own small per-head products count towards the attention,
and again in the last line, which sums every call of the `gemm` crate. Shares are of all samples on both threads, including the
data loading and the final evaluation of the example.
"""
import re, subprocess, sys

# (phase, symbol pattern), most specific first: a sample's share goes to
# the first pattern its inclusive frame matches.
PHASES = [
    ("attention forward (scores, causal softmax, P·V)", r"kernels::attention<|kernels::attention::\{closure"),
    ("attention backward", r"kernels::attention_backward"),
    ("LayerNorm forward and backward", r"kernels::layer_norm"),
    ("GELU forward and backward", r"kernels::gelu"),
    ("cross-entropy and its gradient", r"kernels::cross_entropy"),
    ("bias rows and bias gradients", r"kernels::(add_bias|column_sums)"),
    ("embeddings forward and backward", r"kernels::embed"),
    ("optimiser step (AdamW)", r"downhill::optim::"),
]


def inclusive(path):
    out = subprocess.run(["perf", "report", "-i", path, "--children", "--sort", "symbol", "--stdio",
                          "-g", "none", "--percent-limit", "0.05"], capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*)", line)
        if m:
            rows.append((float(m.group(1)), float(m.group(2)), m.group(3)))
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = inclusive(sys.argv[1])
    table = {}
    for name, pat in PHASES:
        # The largest inclusive share among the frames of this kernel: its
        # outermost frame holds everything under it.
        shares = [c for c, _, sym in rows if re.search(pat, sym)]
        table[name] = max(shares, default=0.0)
    gemm_total = max((c for c, _, sym in rows if re.match(r"gemm<f32>|gemm_f32::gemm::f32::\w+::gemm_basic", sym)), default=0.0)
    print("| phase (inclusive: each kernel with everything it calls) | share of CPU samples |")
    print("|---|---:|")
    for name, share in sorted(table.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {share:.1f}% |")
    print(f"| all matrix products (the `gemm` crate), the attention's own included | {gemm_total:.1f}% |")


if __name__ == "__main__":
    main()
