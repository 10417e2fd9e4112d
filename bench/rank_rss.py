#!/usr/bin/env python3
"""Peak resident memory of each rank of an MPI job, split into anonymous,
file-backed and shared memory, sampled from /proc every 50 ms.

    python3 bench/rank_rss.py mpirun -n 2 --mca btl_vader_single_copy_mechanism none \
        target/release/downhill train --data builtin:fashion-mnist-small \
        --model mlp:1000,1000 --optimizer adam --limit-test 200 --epochs 2 --threads 1 --quiet \
        [--shard-optimizer-state]

The ranks are found by a tag placed in their environment (OpenMPI passes the
launcher's environment on to local ranks) and by OMPI_COMM_WORLD_RANK.
"""
import os
import subprocess
import sys
import time

tag = f"{os.getpid()}-{time.time()}"
cmd = sys.argv[1:]
env = dict(os.environ, RANK_RSS_TAG=tag, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
p = subprocess.Popen(cmd, env=env)
peak = {}
while p.poll() is None:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            e = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            if f"RANK_RSS_TAG={tag}".encode() not in e:
                continue
            if open(f"/proc/{pid}/comm").read().strip() != "downhill":
                continue
            rank = [x for x in e if x.startswith(b"OMPI_COMM_WORLD_RANK=")][0].decode().split("=")[1]
            st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines())
            vals = {k: int(st[k].split()[0]) for k in ["VmRSS", "RssAnon", "RssFile", "RssShmem"]}
            if vals["VmRSS"] > peak.get(rank, {}).get("VmRSS", 0):
                peak[rank] = vals
        except (OSError, IndexError, KeyError, ValueError):
            pass
    time.sleep(0.05)
for rank, v in sorted(peak.items()):
    print(f"rank {rank}: " + ", ".join(f"{k} {n} KiB" for k, n in v.items()))
sys.exit(p.returncode)
