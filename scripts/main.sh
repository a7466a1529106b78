#!/usr/bin/env bash
# The project's main job: installs what it needs, builds the `lstm-edge`
# command line, and runs one model blob on the host and on the emulated
# Cortex-M4F (QEMU mps2-an386), where the integer path gives the same text.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n==== %s ====\n' "$*"; }

# The model the firmware embeds by default: a small char-level LSTM generator
# with the notebook's 50 Shakespeare symbols (fixed random weights, untrained).
model=firmware/models/default.bin
prompt="the king hath "
temperature=0.5
length=120
seed=42

section "install: ONNX Runtime"
if [ -f scripts/install-ort.sh ]; then
    bash scripts/install-ort.sh
else
    echo "scripts/install-ort.sh not present; skipping"
fi

section "install: device toolchain (Debian packages)"
bash scripts/install-device-deps.sh

section "build: the lstm-edge command line"
cargo build --release -p lstm-edge
lstm_edge=target/release/lstm-edge

section "inspect: $model"
"$lstm_edge" inspect "$model"

section "generate on the host (integer path)"
"$lstm_edge" generate --model "$model" --prompt "$prompt" \
    --temperature "$temperature" --length "$length" --seed "$seed"

section "generate on the emulated Cortex-M4F (same blob, prompt and seed)"
"$lstm_edge" firmware run --model "$model" --prompt "$prompt" \
    --temperature "$temperature" --length "$length" --seed "$seed"

section "main job done"
