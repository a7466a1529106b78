#!/usr/bin/env bash
# W's validation accuracy from lstm-edge next to Keras, on the same sequences.
#
#   scripts/accuracy-vs-keras.sh --train FILE [--seeds "42 1 2"] [--threads N] [-- TRAIN_ARGS...]
#
# For each seed, `lstm-edge train --preset w` trains the notebook's W on FILE (labelled
# reviews: aclImdb folder, .jsonl[.gz] or .csv) and writes the encoded training and
# validation reviews it used (--write-arrays); Keras (tensorflow-cpu, the version
# bench-training.sh pins, in the git-ignored .bench-venv/) then trains the same
# layers, optimizer and batch size on exactly those sequences, with the same seed.
# Prints each side's validation accuracy per epoch and the means over the seeds.
# TRAIN_ARGS go to lstm-edge only: data options such as --vocab-size or --limit, which
# reach Keras through the arrays; Keras keeps the notebook's layers and optimizer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.bench-venv"
TF_VERSION="$(sed -n 's/^TF_VERSION=//p' "$root/scripts/bench-training.sh")"

train="" seeds="42" threads=2 extra=()
while (($#)); do
  case "$1" in
    --train) train="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1' (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$train" ]] || {
  echo "error: give the labelled reviews with --train FILE (e.g. the IMDB train split as .jsonl.gz)" >&2
  exit 2
}
[[ -e "$train" ]] || { echo "error: $train does not exist" >&2; exit 2; }

if ! "$venv/bin/python" -c "import sys, tensorflow as tf; sys.exit(tf.__version__ != '$TF_VERSION')" \
    2>/dev/null; then
  echo "installing tensorflow-cpu $TF_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --no-input -q "tensorflow-cpu==$TF_VERSION" >&2
fi
"$root/scripts/install-ort.sh" >&2
(cd "$root" && cargo build --release -q -p lstm-edge)
bin="$root/target/release/lstm-edge"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
for seed in $seeds; do
  out="$work/w-$seed"
  echo "seed $seed: lstm-edge" >&2
  "$bin" train --preset w --train "$train" --seed "$seed" --threads "$threads" \
    --write-arrays --quiet --out "$out" "${extra[@]}" >/dev/null
  python3 -c '
import json, sys
card = json.load(open(sys.argv[1]))
for e in card["history"]:
    print(json.dumps({"side": "lstm-edge", "seed": int(sys.argv[2]), "epoch": e["epoch"],
                      "val_accuracy": e["val_accuracy"]}))' "$out/card.json" "$seed" >>"$results"
  echo "seed $seed: Keras" >&2
  "$venv/bin/python" "$root/scripts/keras_accuracy.py" "$out/arrays" --seed "$seed" \
    --threads "$threads" 2>"$work/keras.err" | python3 -c '
import json, sys
for line in sys.stdin:
    row = json.loads(line)
    print(json.dumps({"side": "Keras", "seed": int(sys.argv[1]), "epoch": row["epoch"],
                      "val_accuracy": row["val_accuracy"]}))' "$seed" >>"$results" || {
    echo "error: Keras failed; its messages:" >&2
    cat "$work/keras.err" >&2
    exit 1
  }
  rm -rf "$out"
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
epochs = sorted({r["epoch"] for r in rows})
seeds = list(dict.fromkeys(r["seed"] for r in rows))
acc = {(r["side"], r["seed"], r["epoch"]): r["val_accuracy"] for r in rows}
header = ["seed"] + [f"{side} ep{e}" for side in ("lstm-edge", "Keras") for e in epochs]
print(" | ".join(header))
for seed in seeds:
    cells = [str(seed)] + [f"{acc[(side, seed, e)]:.4f}" for side in ("lstm-edge", "Keras") for e in epochs]
    print(" | ".join(cells))
means = ["mean"] + [f"{statistics.mean(acc[(side, s, e)] for s in seeds):.4f}"
                    for side in ("lstm-edge", "Keras") for e in epochs]
print(" | ".join(means))
EOF
