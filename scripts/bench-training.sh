#!/usr/bin/env bash
# Training speed of lstm-edge next to Keras, on this machine, in one run.
#
#   scripts/bench-training.sh [--json] [--rounds N] [--steps N] [--threads N] [--gru] [G] [W] [C]
#
# The shapes are lstm-edge's presets (the bench prints their dimensions, cell
# included, for Keras to build the same models). For each shape (default: G W C)
# and each round, both sides run the same number of whole training steps on one
# prepared random batch (RMSprop, the notebook's batch sizes), one side after
# the other, the order flipping every round, so both see the same machine load. Both stay warm between rounds: models are
# built and warmed up (two steps) on their first request, outside the timing.
# The table gives samples/s of the median and of the fastest step, and the
# ratio lstm-edge / Keras; --json prints the same as one JSON document.
#
# Keras is tensorflow-cpu, installed on first use into the project-local,
# git-ignored .bench-venv/ by scripts/install-keras.sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.bench-venv"

json=0 rounds=3 steps="" threads=2 cell_flag=() shapes=()
while (($#)); do
  case "$1" in
    --json) json=1 ;;
    --rounds) rounds="$2"; shift ;;
    --steps) steps="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --gru) cell_flag=(--gru) ;;
    G|W|C) shapes+=("$1") ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "error: unknown argument '$1' (see $0 --help)" >&2; exit 2 ;;
  esac
  shift
done
((${#shapes[@]})) || shapes=(G W C)
# Timed steps per shape and round: about one second of Keras work each.
default_steps() { case "$1" in G) echo 20 ;; W) echo 10 ;; C) echo 4 ;; esac; }
log() { echo "$@" >&2; }

# Progress goes to stderr so that --json output stays clean.
TF_VERSION="$("$root/scripts/install-keras.sh")"
"$root/scripts/install-ort.sh" >&2

log "building the lstm-edge bench"
bench_bin="$(cd "$root" && cargo bench -p lstm-edge-trainer --bench training --no-run \
  --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "training" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$bench_bin" ]] || { log "error: cargo built no training bench executable"; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  exec 3>&- 4<&- 5>&- 6<&- 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
"$bench_bin" --shapes "${cell_flag[@]}" >"$work/shapes.json"
mkfifo "$work/rust.in" "$work/rust.out" "$work/keras.in" "$work/keras.out"
THREADS="$threads" "$bench_bin" --serve "${cell_flag[@]}" \
  <"$work/rust.in" >"$work/rust.out" 2>"$work/rust.err" &
pids+=($!)
exec 3>"$work/rust.in" 4<"$work/rust.out"
cell=lstm; ((${#cell_flag[@]})) && cell=gru
"$venv/bin/python" "$root/scripts/keras_bench.py" serve --shapes "$work/shapes.json" \
  --threads "$threads" \
  <"$work/keras.in" >"$work/keras.out" 2>"$work/keras.err" &
pids+=($!)
exec 5>"$work/keras.in" 6<"$work/keras.out"

# reply SIDE FD: one line from a server; a closed pipe or an error reply stops the run.
reply() {
  local side="$1" fd="$2" line
  if ! IFS= read -r line <&"$fd"; then
    log "error: the $side bench stopped; its log:"; cat "$work/$side.err" >&2; exit 1
  fi
  if [[ "$line" == *'"error"'* ]]; then log "error from the $side bench: $line"; exit 1; fi
  printf '%s\n' "$line"
}
reply rust 4 >/dev/null
reply keras 6 >/dev/null

records="$work/records.jsonl"
printf '{"meta": {"cpus": %s, "threads": %s, "tensorflow": "%s", "cell": "%s", "ort_spinning": "%s", "load_before": "%s"}}\n' \
  "$(nproc)" "$threads" "$TF_VERSION" "$cell" "${LSTM_EDGE_ORT_SPINNING:-1}" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" >"$records"
for ((round = 0; round < rounds; round++)); do
  for shape in "${shapes[@]}"; do
    n="${steps:-$(default_steps "$shape")}"
    log "round $((round + 1))/$rounds: $shape, $n steps each"
    order=(rust keras); ((round % 2)) && order=(keras rust)
    for side in "${order[@]}"; do
      if [[ $side == rust ]]; then
        echo "$shape $n" >&3
        reply rust 4 | sed 's/^{/{"side": "lstm-edge", /' >>"$records"
      else
        echo "$shape $n" >&5
        reply keras 6 | sed 's/^{/{"side": "keras", /' >>"$records"
      fi
    done
  done
done
printf '{"meta": {"load_after": "%s"}}\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$records"

summary_args=("$records" --shapes "$work/shapes.json")
((json)) && summary_args+=(--json)
python3 "$root/scripts/keras_bench.py" summarize "${summary_args[@]}"
