#!/usr/bin/env bash
# The project's main job: installs what it needs, builds the `lstm-edge`
# command line, and runs the model on the emulated Cortex-M4F.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n==== %s ====\n' "$*"; }
device_cargo() { RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@"; }

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
./target/release/lstm-edge --help

section "device: firmware with its default model on the emulated Cortex-M4F (QEMU mps2-an386)"
(cd firmware && device_cargo build --release -Zbuild-std=core --target-dir ../target/firmware)
firmware_elf=target/firmware/thumbv7em-none-eabihf/release/lstm-edge-firmware
arm-none-eabi-size "$firmware_elf"
timeout 120 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 -kernel "$firmware_elf"

section "main job done"
