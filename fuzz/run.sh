#!/usr/bin/env bash
# Runs downhill's fuzz targets with libFuzzer on a stable Rust toolchain.
#
#   fuzz/run.sh TARGET SECONDS     one target for SECONDS
#   fuzz/run.sh all SECONDS        every target in turn, SECONDS each
#   fuzz/run.sh list               the target names
#   fuzz/run.sh build              build every target (done by the others too)
#
# Environment:
#   CARGO_TARGET_DIR   where to build (default: fuzz/target)
#   FUZZ_JOBS          libFuzzer processes per target (default 1: one core)
#   FUZZ_LANES         with `all`: targets run this many at a time (default 1)
#   FUZZ_SANITIZER     address (default) or none
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov passes);
# RUSTC_BOOTSTRAP=1 lets the stable compiler accept them. AddressSanitizer is
# on by default because libFuzzer's -malloc_limit_mb only sees allocations
# through the sanitizer's malloc hooks: with it, a header that makes the code
# allocate more than MALLOC_LIMIT_MB in one go is reported as a crash.
#
# Per target the script reads fuzz/dicts/TARGET.dict (-dict=) and
# fuzz/seeds/TARGET/ (written by make_seeds on every invocation), and writes:
#   fuzz/corpus/TARGET/     the growing corpus (what libFuzzer adds to the seeds)
#   fuzz/artifacts/TARGET/  crashing, leaking, timing-out or memory-hungry inputs
#   fuzz/logs/TARGET.log    libFuzzer's output, ending with its final stats
# and prints one summary line: target, seconds, executions, findings.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

TARGETS=(idx_images idx_labels cifar_batch imdb_tokenize imdb_folder
         libsvm_parse libsvm_stream config_toml checkpoint_read optimizer_state)
RSS_LIMIT_MB=2048
MALLOC_LIMIT_MB=256
SANITIZER="${FUZZ_SANITIZER:-address}"
JOBS="${FUZZ_JOBS:-1}"
export RUSTC_BOOTSTRAP=1
TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/target}"
export CARGO_TARGET_DIR="$TARGET_DIR"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$TARGET_DIR/$TRIPLE/release"

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

build() {
    command -v cargo-fuzz >/dev/null || {
        echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
        exit 1
    }
    # One build for every target, then the binaries run directly: a
    # `cargo fuzz run` per target would rebuild whenever the tree changed.
    cargo fuzz build -O --sanitizer "$SANITIZER" >&2
}

# The seeds (valid files of every format, and regression seeds holding
# boundary values such as a step of u64::MAX) are written afresh into seeds/
# on every invocation, so an older corpus/ never misses a new one; libFuzzer
# reads them beside corpus/TARGET/, which keeps only what it adds.
write_seeds() {
    rm -rf seeds
    cargo run --quiet --release --bin make_seeds -- seeds >&2
}

# Bigger than the default 4096 where one valid input is bigger: a CIFAR
# record is 3073 bytes, a checkpoint's five files several kilobytes.
max_len() {
    case "$1" in
        cifar_batch) echo 16384 ;;
        checkpoint_read) echo 32768 ;;
        *) echo 4096 ;;
    esac
}

run_one() {
    local t="$1" secs="$2"
    mkdir -p "corpus/$t" "artifacts/$t" logs
    # Boundary numbers and the format's keys and magic bytes: libFuzzer
    # splices these tokens in, where byte mutations rarely reach them.
    local dict="dicts/$t.dict"
    [ -f "$dict" ] || {
        echo "no dictionary $dict for target $t" >&2
        exit 1
    }
    local log="logs/$t.log"
    local before
    before=$(ls "artifacts/$t" | wc -l)
    # -fork keeps fuzzing after a finding (each crash is saved and counted);
    # -ignore_crashes/-ignore_ooms/-ignore_timeouts make that so. The limits
    # stay on: a finding is still written to artifacts/.
    set +e
    "$BIN_DIR/$t" "corpus/$t" "seeds/$t" -dict="$dict" \
        -fork="$JOBS" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb="$RSS_LIMIT_MB" -malloc_limit_mb="$MALLOC_LIMIT_MB" \
        -max_len="$(max_len "$t")" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1
    local rc=$?
    set -e
    local execs findings
    # In fork mode the parent reports "#N: cov: ... exec/s: ..." lines; the
    # last one carries the total executions of all children.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    findings=$(( $(ls "artifacts/$t" | wc -l) - before ))
    printf '%-16s %6ss  executions %-10s new findings %s  (exit %s, log fuzz/%s)\n' \
        "$t" "$secs" "${execs:-?}" "$findings" "$rc" "$log"
}

[ $# -ge 1 ] || usage
case "$1" in
    list) printf '%s\n' "${TARGETS[@]}" ;;
    build) build ;;
    all)
        [ $# -eq 2 ] || usage
        build
        lanes="${FUZZ_LANES:-1}"
        # Seeds first: make_seeds writes them all at once, and lanes must
        # not race to do it.
        write_seeds
        # Lane k runs targets k, k+lanes, ...; each lane prints its lines.
        for ((k = 0; k < lanes; k++)); do
            (
                for ((i = k; i < ${#TARGETS[@]}; i += lanes)); do
                    run_one "${TARGETS[$i]}" "$2"
                done
            ) &
        done
        wait
        ;;
    *)
        [ $# -eq 2 ] || usage
        printf '%s\n' "${TARGETS[@]}" | grep -qx "$1" || {
            echo "unknown target $1; targets: ${TARGETS[*]}" >&2
            exit 2
        }
        build
        write_seeds
        run_one "$1" "$2"
        ;;
esac
