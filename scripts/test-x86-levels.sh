#!/usr/bin/env bash
# The runtime on x86-64 CPUs without this host's kernels: under qemu-x86_64,
# an emulated Haswell (AVX2, no AVX-512) and Nehalem (neither) run the
# runtime's tests, then score and generate with the shipped models, whose
# output must equal this host's byte for byte (the kernels of both paths equal the
# portable code exactly). Needs qemu-x86_64 (Debian's qemu-user, installed by
# scripts/install-device-deps.sh) and the workspace's test build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "error: qemu-x86_64 is missing: run bash scripts/install-device-deps.sh (Debian package qemu-user)" >&2
    exit 1
fi

# Emulated CPU model and the best kernels the runtime should find on it
# (Haswell without the system features QEMU's TCG warns it lacks).
levels=("Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl avx2" "Nehalem portable")

# The runtime's test executables and the command line, as the workspace's
# test build made them (a single-package or plain build would unify features
# or optimise differently, and build again).
mapfile -t built < <(
    cargo test --workspace --no-run -q --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if m["profile"]["test"] and "lstm-edge-runtime" in m["package_id"]:
        print("runtime", m["executable"])
    # The binary itself, not the test harness of its own unit tests.
    elif m["target"]["name"] == "lstm-edge" and "bin" in m["target"]["kind"] and not m["profile"]["test"]:
        print("cli", m["executable"])'
)
runtime_tests=() cli=
for entry in "${built[@]}"; do
    case $entry in
    runtime\ *) runtime_tests+=("${entry#runtime }") ;;
    cli\ *) cli=${entry#cli } ;;
    esac
done
if [ "${#runtime_tests[@]}" -lt 2 ] || [ -z "$cli" ]; then
    echo "error: cargo test --workspace --no-run built ${#runtime_tests[@]} runtime test executables and ${cli:-no} lstm-edge" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for level in "${levels[@]}"; do
    read -r cpu kernels <<<"$level"
    echo "runtime tests on an emulated ${cpu%%,*} ($kernels kernels):"
    for test in "${runtime_tests[@]}"; do
        # Cargo runs a package's tests from its folder. The mean over four
        # million steps (2 s natively) took over 12 minutes under QEMU's
        # emulated AVX2 on an Intel Xeon host; it checks the head's f64 sum,
        # not a kernel, and the kernels' bits are checked at each level by the
        # rest, and natively by runtime/tests/kernel_levels.rs.
        if ! (cd runtime && LSTM_EDGE_X86_KERNELS=$kernels \
            qemu-x86_64 -cpu "$cpu" "$test" -q \
            --skip a_mean_over_millions_of_steps_keeps_the_f32_precision >"$work/log" 2>&1); then
            cat "$work/log"
            echo "error: $(basename "$test") failed on the emulated ${cpu%%,*}" >&2
            exit 1
        fi
        printf '  %-28s %s\n' "$(basename "$test" | sed 's/-[0-9a-f]*$//')" \
            "$(grep '^test result' "$work/log")"
    done
done

# The first 100 reviews of the bundled test sample, one per line.
python3 -c '
import gzip, json, sys
with gzip.open(sys.argv[1], "rt", encoding="utf-8") as f:
    for _, line in zip(range(100), f):
        print(" ".join(json.loads(line)["text"].split()))' \
    data/imdb-sample/test.jsonl.gz >"$work/reviews.txt"

# Each shipped model's integer and f32 blobs (both paths have x86 kernels):
# per-review scores, or 600 sampled chars and 200 greedy ones.
run_models() {
    local prefix=("$@") model blob
    for model in w c c-mean; do
        for blob in model.blob model-f32.blob; do
            "${prefix[@]}" "$cli" score --model "models/$model/$blob" --lines --json \
                --file "$work/reviews.txt"
        done
    done
    for model in g g-gru; do
        for blob in model.blob model-f32.blob; do
            "${prefix[@]}" "$cli" generate --model "models/$model/$blob" --prompt "ROMEO: " \
                --length 600 --temperature 0.8
            "${prefix[@]}" "$cli" generate --model "models/$model/$blob" --prompt "JULIET: " \
                --length 200 --temperature 0
        done
    done
}

run_models >"$work/host.txt"
lines=$(wc -l <"$work/host.txt")
for level in "${levels[@]}"; do
    read -r cpu _ <<<"$level"
    name=${cpu%%,*}
    run_models qemu-x86_64 -cpu "$cpu" >"$work/$name.txt"
    if ! cmp -s "$work/host.txt" "$work/$name.txt"; then
        diff "$work/host.txt" "$work/$name.txt" | head -20
        echo "error: the shipped models' output on the emulated $name differs from this host's" >&2
        exit 1
    fi
    echo "shipped models on an emulated $name: the same $lines lines of scores and text as this host"
done
