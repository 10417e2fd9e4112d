#!/usr/bin/env python3
"""A `downhill compare` run by steps, read at equal steps and at equal time.

    python3 bench/equal_time.py runs/modern-lm

For every run under DIR/runs: the held-out loss (nats, and bits per
character when the data is text) after its last step, the seconds it took,
and its held-out loss at the last evaluation it had reached when the fastest
run finished (every run's clock counts its own training and evaluation, as
metrics.jsonl records them). Prints a Markdown table, best final loss first.
"""
import json, math, os, sys


def short(spec):
    """`adamw(lr=...)` → `adamw`; `partition(hidden=muon(...),all=adamw(...))`
    → `muon + adamw`."""
    if spec.startswith("partition(hidden="):
        inner = spec[len("partition(hidden="):]
        rest = spec[spec.index("all=") + 4:] if "all=" in spec else "adamw"
        return f"{inner.split('(')[0].split(',')[0]} + {rest.split('(')[0]}"
    return spec.split("(")[0]


def records(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = os.path.join(sys.argv[1], "runs")
    runs = {}
    for name in sorted(os.listdir(root)):
        recs = records(os.path.join(root, name))
        with open(os.path.join(root, name, "config.toml")) as f:
            label = next((l.split("=", 1)[1].strip().strip('"') for l in f if l.startswith("optimizer")), name)
        clock, points = 0.0, []
        for r in recs:
            clock += r["seconds"]
            points.append((r["step"], clock, r["test_loss"]))
        runs[label] = points
    budget = min(p[-1][1] for p in runs.values())
    print(f"| optimizer | held-out loss at step {max(p[-1][0] for p in runs.values())} (bits/char) | seconds | "
          f"held-out loss at {budget:.0f} s (step reached) |")
    print("|---|---:|---:|---:|")
    for label, p in sorted(runs.items(), key=lambda kv: kv[1][-1][2]):
        step, secs, loss = p[-1]
        within = [q for q in p if q[1] <= budget + 1e-9]
        at = f"{within[-1][2]:.3f} ({within[-1][0]})" if within else "none yet"
        print(f"| {short(label)} | {loss:.3f} ({loss / math.log(2):.2f}) | {secs:.0f} | {at} |")


if __name__ == "__main__":
    main()
