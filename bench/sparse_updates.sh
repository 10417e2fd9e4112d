#!/bin/sh
# Lazy against dense updates on sparse data (README, "Sparse data"): writes a
# synthetic 100k-feature LIBSVM text set, then trains logistic regression and
# an MLP with each optimizer in both modes, same seed, 3 repeats each.
#
#   sh bench/sparse_updates.sh [DIR]      (DIR defaults to runs/sparse-text)
set -e
DIR=${1:-runs/sparse-text}
cargo run -q --release -p downhill-data --example make_sparse_text -- "$DIR"
D="libsvm:$DIR/train.svm,$DIR/test.svm"
cargo run -q --release -p downhill-train --example sparse_updates -- "$D" \
    --model logreg --epochs 5 --repeats 3 --threads 2 --seed 1 \
    --optimizers "adam(lr=0.01);adagrad(lr=0.3);sgd(lr=3);sgd(lr=1,momentum=0.9)"
cargo run -q --release -p downhill-train --example sparse_updates -- "$D" \
    --model mlp:64 --epochs 3 --repeats 3 --threads 2 --seed 1 \
    --optimizers "adam(lr=0.001);adagrad(lr=0.03);sgd(lr=1);sgd(lr=0.1,momentum=0.9)"
