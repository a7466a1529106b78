#!/usr/bin/env bash
# Rebuilds data/imdb-sample/{train,test}.jsonl.gz from the full IMDB JSONL files.
#
# Usage: scripts/make-imdb-sample.sh [SOURCE_DIR]
#   SOURCE_DIR holds imdb_train.jsonl.gz and imdb_test.jsonl.gz (default ../shared/data
#   next to the repository). The output is deterministic: the same lines are picked
#   (evenly spaced through each label, in the source order), copied verbatim, and
#   compressed with `gzip -9 -n` (no name or time stamp in the header).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
source_dir="${1:-$repo/../shared/data}"
out="$repo/data/imdb-sample"
mkdir -p "$out"

# pick SPLIT PER_LABEL: PER_LABEL negatives then PER_LABEL positives.
pick() {
    local split="$1" per_label="$2"
    local input="$source_dir/imdb_${split}.jsonl.gz"
    [[ -f "$input" ]] || { echo "missing $input (pass the folder that holds it)" >&2; exit 1; }
    gzip -dc "$input" | python3 -c '
import json, sys
per_label = int(sys.argv[1])
lines = {0: [], 1: []}
for number, line in enumerate(sys.stdin.buffer, 1):
    label = json.loads(line)["label"]
    if label not in lines:
        sys.exit(f"line {number}: label {label!r} is not 0 or 1")
    lines[label].append(line)
for label in (0, 1):
    pool = lines[label]
    if len(pool) < per_label:
        sys.exit(f"only {len(pool)} reviews with label {label}, {per_label} asked")
    for i in range(per_label):
        sys.stdout.buffer.write(pool[i * len(pool) // per_label])
' "$per_label" | gzip -9 -n > "$out/$split.jsonl.gz.tmp"
    mv "$out/$split.jsonl.gz.tmp" "$out/$split.jsonl.gz"
}

pick train 2000
pick test 500
ls -l "$out"
