#!/usr/bin/env bash
# W's (or C's) validation accuracy from lstm-edge next to Keras, on the same sequences.
#
#   scripts/accuracy-vs-keras.sh --train FILE [--preset w|c] [--seeds "42 1 2"] [--threads N] [-- TRAIN_ARGS...]
#
# For each seed, `lstm-edge train --preset w` (or c) trains the notebook's W (or C) on FILE (labelled
# reviews: aclImdb folder, .jsonl[.gz] or .csv) and writes the encoded training and
# validation reviews it used (--write-arrays); Keras (tensorflow-cpu, installed into
# the git-ignored .bench-venv/ by scripts/install-keras.sh) then trains the same
# layers, optimizer and batch size on exactly those sequences, with the same seed.
# Prints each side's validation accuracy per epoch and the means over the seeds.
# TRAIN_ARGS go to lstm-edge (e.g. --vocab-size, --hidden, --epochs); Keras takes the
# run's sizes and training settings (learning rate, batch, epochs, --clip-norm as a
# global norm, --lr-decay per epoch) from its card and the vocabulary from the arrays.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.bench-venv"

train="" preset=w seeds="42" threads=2 extra=()
while (($#)); do
  case "$1" in
    --train) train="$2"; shift ;;
    --preset) preset="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$1' (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$train" ]] || {
  echo "error: give the labelled reviews with --train FILE (e.g. the IMDB train split as .jsonl.gz)" >&2
  exit 2
}
[[ -e "$train" ]] || { echo "error: $train does not exist" >&2; exit 2; }
[[ "$preset" == w || "$preset" == c ]] || {
  echo "error: --preset $preset: the comparison trains the sentiment models, w or c" >&2
  exit 2
}

"$root/scripts/install-keras.sh" >/dev/null
"$root/scripts/install-ort.sh" >&2
(cd "$root" && cargo build --release -q -p lstm-edge)
bin="$root/target/release/lstm-edge"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for seed in $seeds; do
  out="$work/$preset-$seed"
  echo "seed $seed: lstm-edge" >&2
  "$bin" train --preset "$preset" --train "$train" --seed "$seed" --threads "$threads" \
    --write-arrays --quiet --out "$out" "${extra[@]}" >/dev/null
  echo "seed $seed: Keras" >&2
  "$venv/bin/python" "$root/scripts/keras_accuracy.py" "$out/arrays" --card "$out/card.json" \
    --seed "$seed" --threads "$threads" >"$work/keras-$seed.jsonl" 2>"$work/keras.err" || {
    echo "error: Keras failed; its messages:" >&2
    cat "$work/keras.err" >&2
    exit 1
  }
  mv "$out/card.json" "$work/card-$seed.json"
  rm -rf "$out"
done

# Each side's per-epoch validation accuracy: the card's history, Keras' JSON lines.
python3 - "$work" $seeds <<'EOF'
import json, statistics, sys
work, seeds = sys.argv[1], sys.argv[2:]
acc = {}
for seed in seeds:
    for e in json.load(open(f"{work}/card-{seed}.json"))["history"]:
        acc[("lstm-edge", seed, e["epoch"])] = e["val_accuracy"]
    for line in open(f"{work}/keras-{seed}.jsonl"):
        row = json.loads(line)
        acc[("Keras", seed, row["epoch"])] = row["val_accuracy"]
epochs = sorted({epoch for _, _, epoch in acc})
columns = [(side, e) for side in ("lstm-edge", "Keras") for e in epochs]
print(" | ".join(["seed"] + [f"{side} ep{e}" for side, e in columns]))
for seed in seeds:
    print(" | ".join([seed] + [f"{acc[(side, seed, e)]:.4f}" for side, e in columns]))
print(" | ".join(["mean"] + [f"{statistics.mean(acc[(side, s, e)] for s in seeds):.4f}"
                             for side, e in columns]))
EOF
