#!/usr/bin/env bash
# Data-parallel scaling on this machine (feature `mpi`): samples/s of
# 1 process × 1 thread, 1 process × 2 threads and 2 ranks × 1 thread, for the
# MLP and the CNN on Fashion-MNIST, Adam, batch 128; the time in the gradient
# collectives against the step; bytes received against a ring allreduce's
# 2·(N−1)/N of the parameter bytes; peak RSS per rank, sharded and not.
#
#   cargo build --release -p downhill-cli --features mpi
#   bench/mpi_scaling.sh [ROUNDS]      # default 3 rounds, interleaved
#
# Each figure is the second epoch's (the first warms up); the rounds
# interleave the configurations so that load from other jobs falls on all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/downhill}
DATA=${DATA:-idx:/usr/share/datasets/fashion-mnist}
ROUNDS=${1:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Waiting ranks yield the core instead of spinning: on a machine shared with
# other jobs this doubled the 2-rank throughput (docs/book/src/distributed.md).
MPI=(mpirun -n 2 --mca btl_vader_single_copy_mechanism none --mca mpi_yield_when_idle 1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

common=(--data "$DATA" --optimizer adam --batch-size 128 --limit-test 500 --quiet)
mlp=(--model mlp:1000,1000 --limit-train 12800)
cnn=(--model cnn:32,32,64 --limit-train 2560)

field() { # FILE KEY: the key of the last line of metrics.jsonl
    python3 -c "import json,sys; r=[json.loads(l) for l in open(sys.argv[1])][-1]; print(eval(sys.argv[2]))" "$1" "$2"
}

run() { # NAME MODEL-ARGS... : prints samples/s of epoch 2
    local name=$1; shift
    local out="$TMP/$name-$RANDOM"
    case $name in
        1x1) "$BIN" train "${common[@]}" "$@" --epochs 2 --threads 1 --out "$out" ;;
        1x2) "$BIN" train "${common[@]}" "$@" --epochs 2 --threads 2 --out "$out" ;;
        2x1) "${MPI[@]}" "$BIN" train "${common[@]}" "$@" --epochs 2 --threads 1 --out "$out" ;;
    esac
    echo "$out"
}

for model in mlp cnn; do
    declare -n margs=$model
    for round in $(seq "$ROUNDS"); do
        for cfg in 1x1 1x2 2x1; do
            out=$(run "$cfg" "${margs[@]}")
            sps=$(field "$out/metrics.jsonl" "round(r['samples_per_sec'])")
            line="$model round $round $cfg samples/s $sps"
            if [ "$cfg" = 2x1 ]; then
                steps=$(( $(field "$out/metrics.jsonl" "r['step']") / 2 ))
                params=$(python3 -c "import json; print(json.load(open('$out/summary.json'))['parameters'])")
                line+=" | comm $(field "$out/metrics.jsonl" "round(r['comm']['seconds'],3)") s of train $(field "$out/metrics.jsonl" "round(r['seconds'],3)") s (epoch, eval included)"
                line+=" | received $(field "$out/metrics.jsonl" "r['comm']['bytes_received']") B, ring bound $((steps * params * 4)) B over $steps steps"
            fi
            echo "$line"
        done
    done
done

# Peak RSS per rank, Adam on the MLP, sharded against not (and one process).
/usr/bin/time -f "peak RSS one-process %M KiB" "$BIN" train "${common[@]}" "${mlp[@]}" \
    --epochs 1 --threads 1 --out "$TMP/rss-$RANDOM" 2>&1 | grep "peak RSS"
for shard in "" --shard-optimizer-state; do
    "${MPI[@]}" /usr/bin/time -f "peak RSS ${shard:-unsharded} %M KiB" \
        "$BIN" train "${common[@]}" "${mlp[@]}" --epochs 1 --threads 1 $shard --out "$TMP/rss-$RANDOM" 2>&1 | grep "peak RSS"
done
