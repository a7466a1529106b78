#!/usr/bin/env bash
# The project's test command. Installs what it needs, then: formatting, lints,
# the workspace tests, the runtime's Cortex-M4F and Cortex-M3 builds (warnings
# denied), the firmware under QEMU (bit-exact against the host), and the
# runtime on emulated x86-64 CPUs without AVX-512 and without AVX2. Stops at the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n==== %s ====\n' "$*"; }

# Debian's toolchain for the device; a separate target dir keeps its
# artifacts apart from the rustup toolchain's.
device_cargo() { RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@"; }

section "install: ONNX Runtime"
bash scripts/install-ort.sh

section "install: device toolchain (Debian packages)"
bash scripts/install-device-deps.sh

section "cargo fmt --check"
cargo fmt --all -- --check
(cd firmware && cargo fmt -- --check)

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# Debian's toolchain ships no clippy; the firmware's code is target-independent,
# so the rustup clippy checks it for the host.
host_triple=$(rustc -vV | sed -n 's/^host: //p')
(cd firmware && cargo clippy --target "$host_triple" --target-dir ../target/firmware-clippy -- -D warnings)

# The firmware's QEMU tests run in their own section below, after the device builds.
section "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-tests=pass -E 'not binary(firmware_qemu)'
else
    cargo test --workspace -- --skip firmware_
fi

section "doc tests"
cargo test --workspace --doc

section "runtime on emulated x86-64 CPUs: AVX2 without AVX-512, and neither"
bash scripts/test-x86-levels.sh

# Warnings denied: the host's clippy never compiles the bare-metal code
# (`unit_steps`, and `cortex_m_dsp` on the M4F).
for device_target in thumbv7em-none-eabihf thumbv7m-none-eabi; do
    section "device build: runtime for $device_target"
    device_cargo rustc -p lstm-edge-runtime --release --target "$device_target" \
        -Zbuild-std=core --target-dir target/thumb -- -D warnings
done

section "device build: firmware with its default model, run under QEMU"
(cd firmware && device_cargo build --release -Zbuild-std=core --target-dir ../target/firmware)
firmware_elf=target/firmware/thumbv7em-none-eabihf/release/lstm-edge-firmware
arm-none-eabi-size "$firmware_elf"
timeout 120 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 -kernel "$firmware_elf" </dev/null

# Selected from the whole workspace, so the test binary built above is reused
# (a single-package build would unify features differently and rebuild).
section "firmware: QEMU tests against the host, integer and f32 paths"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace -E 'binary(firmware_qemu)'
else
    cargo test --workspace --test firmware_qemu
fi

section "all checks passed"
