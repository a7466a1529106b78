#!/usr/bin/env bash
# The project's main job: installs what it needs, builds the `lstm-edge`
# command line, trains a quick char-level generator (G) on the bundled plays,
# exports, quantizes and verifies it, then generates text with it on the host
# and on the emulated Cortex-M4F (QEMU mps2-an386), where the integer path gives
# the same text.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n==== %s ====\n' "$*"; }

# A small, quick G: the notebook's shape scaled down to train in minutes on 2 cores.
model=out/quick-g
prompt="first citizen: "
temperature=0.5
length=200
seed=42

section "install: ONNX Runtime"
bash scripts/install-ort.sh

section "install: device toolchain (Debian packages)"
bash scripts/install-device-deps.sh

section "build: the lstm-edge command line"
cargo build --release -p lstm-edge
lstm_edge=target/release/lstm-edge

section "train: quick G on the three bundled plays (ONNX, blobs and card in $model)"
"$lstm_edge" train --preset g \
    --corpus data/shakespeare/shakespeare-caesar.txt data/shakespeare/shakespeare-hamlet.txt \
    data/shakespeare/shakespeare-macbeth.txt \
    --hidden 64 --window-step 9 --epochs 3 --seed "$seed" --quiet --out "$model"

section "eval: held-out loss of the f32 and integer blobs"
"$lstm_edge" eval --model "$model"

section "verify: tract on the ONNX against the runtime's f32 and integer paths"
"$lstm_edge" verify --model "$model"

section "inspect: the integer blob"
"$lstm_edge" inspect "$model/model.blob"

section "generate on the host (integer path)"
"$lstm_edge" generate --model "$model/model.blob" --prompt "$prompt" \
    --temperature "$temperature" --length "$length" --seed "$seed"

section "generate on the emulated Cortex-M4F (same blob, prompt and seed)"
"$lstm_edge" firmware run --model "$model/model.blob" --prompt "$prompt" \
    --temperature "$temperature" --length "$length" --seed "$seed"

for sentiment in w c-mean; do
    section "score two reviews with the shipped sentiment model models/$sentiment"
    "$lstm_edge" score --model "models/$sentiment/model.blob" \
        "A moving, beautifully acted film: the best thing I have seen this year."
    "$lstm_edge" score --model "models/$sentiment/model.blob" \
        "A dull, lifeless mess with wooden acting. I want my two hours back."
done

section "main job done"
