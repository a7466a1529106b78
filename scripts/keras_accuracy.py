#!/usr/bin/env python3
"""Keras side of the W and C accuracy comparison (scripts/accuracy-vs-keras.sh).

  keras_accuracy.py ARRAYS_DIR [--card OUT/card.json] [--seed N] [--threads 2]

ARRAYS_DIR is what `lstm-edge train --write-arrays` wrote (OUT/arrays): the
run's own encoded training and validation reviews. Keras trains the notebook's
W on exactly those sequences (embedding 300 -> LSTM(50, all steps) -> dropout
.2 -> flatten -> dense(1) sigmoid, RMSprop lr 0.001, binary cross-entropy,
batch 32, 2 epochs, shuffled every epoch) and prints one JSON line per epoch:
{"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}. With --card, the
sizes, dropout, learning rate, batch and epochs are that run's instead; a run
without an embedding (C: embed_dim 0) reads its ids one-hot, as lstm-edge does
(a fixed identity embedding, PAD included).
"""

import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arrays")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--embed", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--clip-norm", type=float, help="clip the gradients' global norm")
    parser.add_argument("--lr-decay", type=float, help="learning-rate factor per epoch")
    parser.add_argument("--card", help="the lstm-edge run's card.json: train its hyperparameters")
    args = parser.parse_args()
    if args.card:
        with open(args.card) as f:
            hp = json.load(f)["hyperparameters"]
        shape = (hp["cell"], hp["head"], hp["optimizer"])
        if shape != ("Lstm", "Flatten", "RmsProp"):
            sys.exit(f"error: {args.card} trained {shape}; this script builds W's LSTM, "
                     "flatten head and RMSprop only")
        args.embed, args.hidden, args.dropout = hp["embed_dim"], hp["hidden"], hp["dropout"]
        args.lr, args.batch, args.epochs = hp["learning_rate"], hp["batch_size"], hp["epochs"]
        args.clip_norm, args.lr_decay = hp.get("clip_norm"), hp.get("lr_decay")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import keras
    import tensorflow as tf
    from keras import layers

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)

    def existing(name):
        path = os.path.join(args.arrays, name)
        if not os.path.exists(path):
            sys.exit(f"error: {path} is missing: run `lstm-edge train ... --write-arrays` first")
        return path

    def load(name):
        return np.load(existing(name))

    with open(existing("meta.json")) as f:
        meta = json.load(f)
    x_train = load("train_ids.npy").astype(np.int32)
    y_train = load("train_targets.npy")
    x_val = load("validation_ids.npy").astype(np.int32)
    y_val = load("validation_targets.npy")

    inputs = keras.Input((x_train.shape[1],), dtype="int32")
    rows = meta["vocab_rows"]
    if args.embed > 0:
        x = layers.Embedding(rows, args.embed)(inputs)
    else:
        x = layers.Embedding(rows, rows, embeddings_initializer="identity", trainable=False)(inputs)
    x = layers.LSTM(args.hidden, return_sequences=True)(x)
    x = layers.Dropout(args.dropout)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        # lstm-edge clips the norm of all gradients together, as global_clipnorm does.
        optimizer=keras.optimizers.RMSprop(learning_rate=args.lr, global_clipnorm=args.clip_norm),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch,
        epochs=args.epochs,
        validation_data=(x_val, y_val),
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.LearningRateScheduler(lambda epoch: args.lr * args.lr_decay**epoch)
        ]
        if args.lr_decay
        else [],
    )
    for epoch in range(args.epochs):
        row = {"epoch": epoch + 1}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            row[key] = round(float(history.history[key][epoch]), 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
