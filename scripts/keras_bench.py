#!/usr/bin/env python3
"""Keras side of the training-speed comparison (scripts/bench-training.sh).

  keras_bench.py serve --shapes FILE [--threads N]
      FILE is the JSON object the lstm-edge bench prints with --shapes: the
      dimensions of each shape, as lstm-edge's presets give them.
      Reads requests "SHAPE STEPS" (SHAPE one of FILE's, e.g. G, W, C) on stdin, one per
      line, and answers each with one JSON line
      {"shape", "batch", "seconds": [wall time of each timed train_on_batch]}.
      A shape's model is built, compiled and warmed up (two steps) on its
      first request, outside the timed steps.
  keras_bench.py summarize FILE [--shapes FILE] [--json]
      Reads the JSON lines both sides wrote ({"side", "shape", "batch",
      "seconds"}, and {"meta": {...}} lines about the machine) and prints
      the comparison table (or one JSON document).

The shapes are the notebook's workloads (lstm-edge's presets) with the notebook's layers, optimizer
(RMSprop) and batch sizes; the data is random, prepared before any timing.
"""

import argparse
import json
import os
import statistics
import sys

WARMUP_STEPS = 2


def build(s):
    """Model, data and targets for one shape `s` (an entry of the --shapes file).

    Word models (W) read ids through an embedding; char models (G, C) read
    one-hot rows."""
    import numpy as np
    import keras
    from keras import layers

    rng = np.random.default_rng(1)
    recurrent = {"lstm": layers.LSTM, "gru": layers.GRU}[s["cell"]]
    if s["head"] not in ("last", "flatten"):
        raise ValueError(f"the Keras bench builds last-state and flatten heads, not {s['head']!r}")
    if s["embed"]:
        inputs = keras.Input((s["maxlen"],), dtype="int32")
        x = layers.Embedding(s["vocab"], s["embed"])(inputs)
        data = rng.integers(0, s["vocab"], (s["batch"], s["maxlen"]), dtype=np.int32)
    else:
        inputs = keras.Input((s["maxlen"], s["vocab"]))
        x = inputs
        ids = rng.integers(0, s["vocab"], (s["batch"], s["maxlen"]))
        data = np.eye(s["vocab"], dtype=np.float32)[ids]
    if s["head"] == "last":
        x = recurrent(s["hidden"])(x)
    else:
        x = recurrent(s["hidden"], return_sequences=True)(x)
    if s["dropout"]:
        x = layers.Dropout(s["dropout"])(x)
    if s["head"] == "flatten":
        x = layers.Flatten()(x)
    if s["classes"]:
        outputs = layers.Dense(s["classes"], activation="softmax")(x)
        classes = rng.integers(0, s["classes"], s["batch"])
        targets = np.eye(s["classes"], dtype=np.float32)[classes]
        loss = "categorical_crossentropy"
    else:
        outputs = layers.Dense(1, activation="sigmoid")(x)
        targets = (np.arange(s["batch"]) % 2).astype(np.float32)
        loss = "binary_crossentropy"
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=s["lr"]),
        loss=loss,
        metrics=["accuracy"],
    )
    for _ in range(WARMUP_STEPS):
        model.train_on_batch(data, targets)
    return model, data, targets


def serve(args):
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import time
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with open(args.shapes) as f:
        shapes = json.load(f)
    built = {}
    # Announce readiness once TensorFlow is imported and configured.
    print(json.dumps({"ready": True, "tensorflow": tf.__version__}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if len(words) != 2 or words[0] not in shapes or not words[1].isdigit():
            want = "|".join(shapes)
            print(json.dumps({"error": f"bad request {line.strip()!r}: want '{want} STEPS'"}),
                  flush=True)
            continue
        shape, steps = words[0], int(words[1])
        if shape not in built:
            built[shape] = build(shapes[shape])
        model, data, targets = built[shape]
        seconds = []
        for _ in range(steps):
            started = time.perf_counter()
            model.train_on_batch(data, targets)
            seconds.append(time.perf_counter() - started)
        reply = {"shape": shape, "batch": shapes[shape]["batch"], "seconds": seconds}
        print(json.dumps(reply), flush=True)


def summarize(args):
    per_side = {}
    meta = {}
    machine = {}
    with open(args.file) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                if "meta" in record:
                    machine.update(record["meta"])
                    continue
                side, shape, batch = record["side"], record["shape"], record["batch"]
                seconds = record["seconds"]
            except (ValueError, KeyError) as e:
                sys.exit(f"{args.file}:{number}: not a bench record ({e}): {line.strip()!r}")
            per_side.setdefault((shape, side), []).extend(seconds)
            meta[shape] = batch
    described = {}
    if args.shapes:
        with open(args.shapes) as f:
            described = {name: s["describe"] for name, s in json.load(f).items()}
    rows = []
    for shape in meta:
        batch = meta[shape]
        row = {"shape": shape, "batch": batch}
        if shape in described:
            row["describe"] = described[shape]
        for side in ("lstm-edge", "keras"):
            seconds = per_side.get((shape, side), [])
            if seconds:
                row[side] = {
                    "steps": len(seconds),
                    "median_samples_per_s": batch / statistics.median(seconds),
                    "best_samples_per_s": batch / min(seconds),
                }
        if "lstm-edge" in row and "keras" in row:
            row["ratio_median"] = (row["lstm-edge"]["median_samples_per_s"]
                                   / row["keras"]["median_samples_per_s"])
            row["ratio_best"] = (row["lstm-edge"]["best_samples_per_s"]
                                 / row["keras"]["best_samples_per_s"])
        rows.append(row)
    if args.json:
        print(json.dumps({"machine": machine, "shapes": rows}, indent=2))
        return
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print("training samples/s (median step; best step in parentheses)")
    print(f"{'shape':<6}{'batch':>6}  {'lstm-edge':>18}  {'keras':>18}  {'ratio':>12}  dimensions")
    for row in rows:
        def cell(side):
            r = row.get(side)
            return (f"{r['median_samples_per_s']:.0f} ({r['best_samples_per_s']:.0f})"
                    if r else "-")
        ratio = (f"{row['ratio_median']:.2f}x ({row['ratio_best']:.2f}x)"
                 if "ratio_median" in row else "-")
        print(f"{row['shape']:<6}{row['batch']:>6}  {cell('lstm-edge'):>18}  "
              f"{cell('keras'):>18}  {ratio:>12}  {row.get('describe', '')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--shapes", required=True)
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("summarize")
    p.add_argument("file")
    p.add_argument("--shapes")
    p.add_argument("--json", action="store_true")
    args = parser.parse_args()
    {"serve": serve, "summarize": summarize}[args.command](args)


if __name__ == "__main__":
    main()
