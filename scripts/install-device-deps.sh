#!/usr/bin/env bash
# Installs the Debian packages that build and emulate the Cortex-M4 firmware:
# rustc-web/cargo-web/rust-web-src (a rustc whose core source matches it, for
# -Zbuild-std=core), binutils-arm-none-eabi (the linker) and qemu-system-arm;
# and qemu-user, whose qemu-x86_64 runs the runtime on x86-64 CPUs without
# AVX-512 or AVX2 (scripts/test-x86-levels.sh).
# Idempotent: when every package is already installed it only checks and exits.
set -euo pipefail

packages=(rustc-web cargo-web rust-web-src binutils-arm-none-eabi qemu-system-arm qemu-user)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg -s "$package" >/dev/null 2>&1; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "device toolchain: all Debian packages present (${packages[*]})"
    exit 0
fi

echo "device toolchain: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "error: not root and no sudo; install as root: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
