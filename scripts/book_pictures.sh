#!/bin/sh
# Remakes the pictures of the book (docs/book/src/images) and the README's
# (docs/images) with downhill's own commands. Run from anywhere:
#     sh scripts/book_pictures.sh
# The Fashion-MNIST curves of the `modern` preset come from its run
# (docs/book/src/choosing.md gives the command); this script makes the
# optimiser paths, which take seconds.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q -p downhill-cli
bin=target/release/downhill
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
paths() { # NAME FUNCTION SPECS
    "$bin" landscape --function "$2" --optimizers "$3" --out "$tmp/$1" >/dev/null
    cp "$tmp/$1/paths.png" "docs/book/src/images/$1-paths.png"
}
paths first-order rosenbrock "sgd(lr=0.001),sgd(lr=0.001,momentum=0.9),sgd(lr=0.001,momentum=0.9,nesterov=true)"
paths adaptive rosenbrock "adagrad(lr=0.5),rmsprop(lr=0.005),adam(lr=0.05),nadam(lr=0.05)"
paths modern rosenbrock "lion(lr=0.01,weight_decay=0),adabelief(lr=0.05),adan(lr=0.05),ademamix(lr=0.05),adopt(lr=0.05)"
paths second-order quadratic "lbfgs(line_search_fn=strong_wolfe),newton,shampoo(lr=0.3,epsilon=1e-4),soap(lr=0.3,precondition_1d=true,weight_decay=0)"
cp docs/book/src/images/adaptive-paths.png docs/images/rosenbrock-paths.png
echo "wrote docs/book/src/images/*-paths.png and docs/images/rosenbrock-paths.png"
