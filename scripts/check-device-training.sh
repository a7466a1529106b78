#!/usr/bin/env bash
# Trains G on a device and checks that seeded runs repeat there, then times the
# training step. This is the check behind the GPU figures in docs/training-speed.md.
#
#   scripts/check-device-training.sh [--device cuda|cuda:N|cpu] [--epochs N] [--out DIR]
#
# 1. G with its preset on the three plays for --epochs (default 12): per-epoch
#    samples/s and the held-out loss.
# 2. Two seeded 1-epoch runs must give byte-identical ONNX files, and a run resumed
#    after epoch 1 must end byte-identical to an uninterrupted 2-epoch run. On the
#    CPU, a 1-epoch run on 2 threads must also equal the one on 1 thread.
# 3. The training bench for G (LSTM and GRU, Scan and unrolled), when its binary is
#    there.
#
# Needs a release build (`cargo build --release -p lstm-edge`; the bench binary from
# `cargo bench -p lstm-edge-trainer --bench training --no-run`) and, for CUDA, the
# GPU build of ONNX Runtime (`bash scripts/install-ort.sh --gpu`). LSTM_EDGE and
# TRAINING_BENCH name the two binaries when they were built elsewhere. On the CPU the
# runs use one thread, as the shipped models' commands do.
# Exits non-zero when a run fails or a repeat check does not hold.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cuda epochs=12 out=""
while (($#)); do
  case "$1" in
    --device) device="$2"; shift ;;
    --epochs) epochs="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "error: --epochs wants a whole number >= 1, got '$epochs'" >&2; exit 2; }

bin="${LSTM_EDGE:-$root/target/release/lstm-edge}"
[[ -x "$bin" ]] || { echo "error: $bin not found: run \`cargo build --release -p lstm-edge\` or set LSTM_EDGE" >&2; exit 1; }
bench="${TRAINING_BENCH:-$(ls -t "$root"/target/release/deps/training-* 2>/dev/null | grep -v '\.d$' | head -n1 || true)}"
out="${out:-$(mktemp -d)}"
mkdir -p "$out"
cd "$root"

corpus=(data/shakespeare/shakespeare-caesar.txt data/shakespeare/shakespeare-hamlet.txt
        data/shakespeare/shakespeare-macbeth.txt)
threads=()
[[ "$device" == cpu ]] && threads=(--threads 1)
train() {
  local dir="$1"; shift
  echo "== lstm-edge train --preset g --device $device $* -> $dir"
  "$bin" train --preset g --device "$device" "${threads[@]}" --corpus "${corpus[@]}" \
    --out "$dir" "$@" 2>&1 | tr '\r' '\n' \
    | grep -E '^(epoch|f32 blob|int blob|Error|Caused| )'
}
same() {
  if cmp -s "$1" "$2"; then echo "same: $3"; else echo "DIFFERENT: $3 ($1, $2)"; failed=1; fi
}

failed=0
train "$out/g" --epochs "$epochs"

train "$out/a" --epochs 1
train "$out/b" --epochs 1
same "$out/a/model.onnx" "$out/b/model.onnx" "two seeded 1-epoch runs"
if [[ "$device" == cpu ]]; then
  threads=(--threads 2)
  train "$out/two-threads" --epochs 1
  threads=(--threads 1)
  same "$out/a/model.onnx" "$out/two-threads/model.onnx" "1-epoch runs on 1 and 2 threads"
fi
cp -r "$out/a" "$out/resumed"
train "$out/resumed" --epochs 2 --resume
train "$out/whole" --epochs 2
same "$out/resumed/model.onnx" "$out/whole/model.onnx" "resumed vs uninterrupted, ONNX"
same "$out/resumed/model.blob" "$out/whole/model.blob" "resumed vs uninterrupted, integer blob"

if [[ -n "$bench" && -x "$bench" ]]; then
  echo "== training bench, G"
  DEVICE="$device" STEPS=20 THREADS=4 "$bench" G
else
  echo "(no training bench binary: \`cargo bench -p lstm-edge-trainer --bench training --no-run\`)"
fi
echo "models in $out"
exit "$failed"
