#!/usr/bin/env python3
"""Peak memory of a long `downhill train` run, epoch by epoch.

Starts the run, samples /proc/PID/status (VmRSS: resident now; VmHWM: the
peak so far) every few milliseconds, and reads the epoch count from the
run's metrics.jsonl. For every epoch it reports the largest VmRSS seen while
that epoch ran and VmHWM at its end. Memory is flat when the epoch-50 numbers
equal the epoch-1 numbers up to allocator noise.

    scripts/rss_long_run.py [--downhill PATH] [--epochs 50] [--model mlp:64]
        [--batch-size 128] [--checkpoint-every 20] [-- more train flags]
    scripts/rss_long_run.py --data builtin:shakespeare --steps 3000 --epochs 30 \
        --model transformer:layers=2,d=64,heads=4,context=64 --batch-size 32

Defaults: mlp:64 with Adam on the built-in Fashion-MNIST subset (5400
training images after a 10% validation carve, 1000 test images), batch 128,
50 epochs, a checkpoint every 20 steps (so checkpoint writing is measured
too), one thread. The binary defaults to $CARGO_TARGET_DIR/release/downhill
(or target/release/downhill); build it with
`cargo build -p downhill-cli --release`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def epochs_done(metrics):
    try:
        with open(metrics) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--downhill", default=os.path.join(target, "release", "downhill"))
    ap.add_argument("--epochs", type=int, default=50,
                    help="epochs, or with --steps the number of evaluation periods")
    ap.add_argument("--steps", type=int, help="train by steps: this many, in --epochs periods")
    ap.add_argument("--data", default="builtin:fashion-mnist-small",
                    help="data spec; text (text:, builtin:shakespeare) needs a transformer --model")
    ap.add_argument("--model", default="mlp:64")
    ap.add_argument("--batch-size", default="128")
    ap.add_argument("--checkpoint-every", default="20")
    ap.add_argument("--interval", type=float, default=0.005, help="seconds between samples")
    ap.add_argument("extra", nargs="*", help="more `downhill train` flags (after --)")
    args = ap.parse_args()
    if not os.path.exists(args.downhill):
        sys.exit(f"{args.downhill}: not found; build with cargo build -p downhill-cli --release")

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        # By steps (language models): one metrics line per period.
        budget = (["--steps", str(args.steps), "--eval-every", str(max(1, args.steps // args.epochs))]
                  if args.steps else ["--epochs", str(args.epochs)])
        carve = [] if args.data.startswith(("text:", "builtin:shakespeare")) else ["--valid-fraction", "0.1"]
        cmd = [
            args.downhill, "train",
            "--data", args.data,
            *carve,
            "--model", args.model,
            "--optimizer", "adam",
            "--batch-size", args.batch_size,
            *budget,
            "--checkpoint-every", args.checkpoint_every,
            "--threads", "1",
            "--seed", "1",
            "--quiet",
            "--out", out,
        ] + args.extra
        started = time.monotonic()
        child = subprocess.Popen(cmd)
        metrics = os.path.join(out, "metrics.jsonl")
        peak_rss = {}  # epoch (1-based, the one running) -> largest VmRSS
        hwm_at_end = {}  # epoch -> VmHWM when its line appeared
        last_hwm = None
        while child.poll() is None:
            rss = status_kib(child.pid, "VmRSS")
            hwm = status_kib(child.pid, "VmHWM")
            done = epochs_done(metrics)
            if rss is not None:
                running = min(done + 1, args.epochs)
                peak_rss[running] = max(peak_rss.get(running, 0), rss)
                last_hwm = hwm
                for e in range(1, done + 1):
                    hwm_at_end.setdefault(e, hwm)
            time.sleep(args.interval)
        seconds = time.monotonic() - started
        if child.returncode != 0:
            sys.exit(f"the run failed with status {child.returncode}")
        done = epochs_done(metrics)
        for e in range(1, done + 1):
            hwm_at_end.setdefault(e, last_hwm)
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)

    print(f"command: {' '.join(cmd[1:])}")
    unit = "evaluation periods" if args.steps else "epochs"
    print(f"{done} {unit} in {seconds:.1f} s; final test loss {summary['last']['test_loss']:.4f}, "
          f"accuracy {summary['last']['test_accuracy']:.4f}")
    first, last = 1, max(peak_rss)
    print(f"{'epoch':>5} {'peak VmRSS MiB':>15} {'VmHWM MiB at end':>17}")
    for e in sorted(peak_rss):
        hwm = hwm_at_end.get(e)
        if e <= 3 or e > last - 3 or e % 10 == 0:
            print(f"{e:>5} {peak_rss[e] / 1024:>15.1f} "
                  f"{(hwm / 1024) if hwm else float('nan'):>17.1f}")
    growth = peak_rss[last] - peak_rss[first]
    print(f"epoch {first}: peak RSS {peak_rss[first] / 1024:.1f} MiB; "
          f"epoch {last}: peak RSS {peak_rss[last] / 1024:.1f} MiB; "
          f"growth {growth / 1024:+.1f} MiB; "
          f"VmHWM at the end {(last_hwm or 0) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
