"""Writes the foreign-model fixtures under tests/fixtures/foreign/.

Small LSTM/GRU text models with seeded random weights, built in PyTorch or Keras,
exported to ONNX (torch.onnx's TorchScript exporter; tf2onnx for Keras), with the
framework's own outputs on fixed token ids recorded beside each .onnx file. The
importer's tests compare the converted blobs against those outputs, never against
our own reading of the graph.

    python make_foreign_fixtures.py torch OUT_DIR
    python make_foreign_fixtures.py keras OUT_DIR

Run through scripts/make-foreign-fixtures.sh, which makes the virtual environments.
"""

import json
import os
import sys

import numpy as np

# Token ids: 18 chars, then UNK (18), then PAD (19), as `lstm-edge import --chars
# abcdefghijklmnopqr --unk --pad` reads them.
CHARS = "abcdefghijklmnopqr"
CHAR_TOKENS = {"chars": CHARS, "unk": True, "pad": True}
VOCAB_ROWS = len(CHARS) + 2
PAD_ID = VOCAB_ROWS - 1
# A word list in the foreign model's own id order (not sorted), PAD and UNK first.
WORDS = ["<pad>", "<unk>", "the", "movie", "was", "great", "bad", "plot", "acting", "and",
         "not", "very", "good", "boring", "fun", "story", "i", "it", "love", "hate"]
MAXLEN = 12
EMBED = 6
HIDDEN = 8


def fixed_ids(seed, rows, length, pad_tail=True):
    """Token ids to feed: random ids, some rows ending in PAD."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB_ROWS - 1, size=(rows, length))
    if pad_tail:
        for row in range(1, rows, 2):
            ids[row, length - 1 - row:] = PAD_ID
    return ids


def write_fixture(out_dir, name, source, tokens, ids, outputs, expect):
    record = {
        "source": source,
        "model": f"{name}.onnx",
        "tokens": tokens,
        "expect": expect,
        "ids": [[int(i) for i in row] for row in ids],
        "outputs": [[float(v) for v in row] for row in outputs],
    }
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def write_unsupported(out_dir, name, source, tokens, error_contains):
    record = {
        "source": source,
        "model": f"{name}.onnx",
        "tokens": tokens,
        "error_contains": error_contains,
    }
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


def make_torch(out_dir):
    import torch
    from torch import nn

    source = f"PyTorch {torch.__version__.split('+')[0]}, torch.onnx TorchScript exporter, opset 14"

    class Net(nn.Module):
        """Embedding or one-hot -> LSTM/GRU (batch_first) -> head -> Linear -> activation."""

        def __init__(self, cell, head, outputs, onehot=False, layers=1, bidirectional=False):
            super().__init__()
            self.onehot = onehot
            self.head = head
            width = VOCAB_ROWS if onehot else EMBED
            if not onehot:
                self.embedding = nn.Embedding(VOCAB_ROWS, EMBED)
            rnn = nn.LSTM if cell == "lstm" else nn.GRU
            self.rnn = rnn(width, HIDDEN, num_layers=layers, batch_first=True,
                           bidirectional=bidirectional)
            directions = 2 if bidirectional else 1
            features = (MAXLEN if head == "flatten" else 1) * HIDDEN * directions
            self.dense = nn.Linear(features, outputs)
            self.outputs = outputs

        def forward(self, ids):
            if self.onehot:
                x = nn.functional.one_hot(ids, VOCAB_ROWS).float()
            else:
                x = self.embedding(ids)
            y, state = self.rnn(x)
            if self.head == "flatten":
                features = y.reshape(y.shape[0], -1)
            elif self.head == "last":
                features = y[:, -1, :]
            elif self.head == "state":
                h_n = state[0] if isinstance(state, tuple) else state
                features = h_n[-1]
            else:
                features = y.mean(dim=1)
            logits = self.dense(features)
            if self.outputs == 1:
                return torch.sigmoid(logits)
            return torch.softmax(logits, dim=-1)

    def export(name, net, dynamic_time=False):
        net.eval()
        dummy = torch.zeros(1, MAXLEN, dtype=torch.long)
        axes = {"ids": {0: "batch", 1: "time"} if dynamic_time else {0: "batch"}}
        torch.onnx.export(net, (dummy,), os.path.join(out_dir, f"{name}.onnx"), dynamo=False,
                          opset_version=14, input_names=["ids"], output_names=["probs"],
                          dynamic_axes=axes)

    cases = [
        # name, cell, head, outputs, one-hot, tokens, dynamic time
        ("torch_lstm_flatten_sigmoid", "lstm", "flatten", 1, False, CHAR_TOKENS, False),
        ("torch_gru_last_softmax", "gru", "last", 5, False, CHAR_TOKENS, True),
        ("torch_lstm_state_words", "lstm", "state", 1, False, {"vocab": WORDS}, False),
        ("torch_gru_onehot_mean_sigmoid", "gru", "mean", 1, True, CHAR_TOKENS, True),
    ]
    for k, (name, cell, head, outputs, onehot, tokens, dynamic_time) in enumerate(cases):
        torch.manual_seed(100 + k)
        net = Net(cell, head, outputs, onehot)
        # Larger than the default init, so gates leave their linear range.
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(2.0)
        # Flatten pads to maxlen, so its rows end in PAD; the others see real ids only.
        ids = fixed_ids(7 + k, 4, MAXLEN, pad_tail=head == "flatten")
        with torch.no_grad():
            out = net.eval()(torch.tensor(ids, dtype=torch.long)).numpy()
        export(name, net, dynamic_time)
        expect = {"cell": cell, "hidden": HIDDEN,
                  "head": "last" if head == "state" else head,
                  "classes": outputs}
        if head == "flatten":
            expect["maxlen"] = MAXLEN
        write_fixture(out_dir, name, source, tokens, ids, out, expect)

    torch.manual_seed(1)
    export("torch_bilstm_unsupported", Net("lstm", "last", 1, bidirectional=True))
    write_unsupported(out_dir, "torch_bilstm_unsupported", source, CHAR_TOKENS, ["bidirectional"])
    torch.manual_seed(2)
    export("torch_lstm_2layer_unsupported", Net("lstm", "last", 1, layers=2))
    write_unsupported(out_dir, "torch_lstm_2layer_unsupported", source, CHAR_TOKENS,
                      ["second recurrent layer"])

    # Variants no exporter writes by default, edited into a PyTorch export with onnx.
    import onnx
    from onnx import helper

    def edited(src, name, edit, needles):
        model = onnx.load(os.path.join(out_dir, f"{src}.onnx"))
        node = next(n for n in model.graph.node if n.op_type in ("LSTM", "GRU"))
        edit(node)
        onnx.save(model, os.path.join(out_dir, f"{name}.onnx"))
        write_unsupported(out_dir, name, source + ", edited with onnx", CHAR_TOKENS, needles)

    def set_attr(node, name, value):
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept + [helper.make_attribute(name, value)])

    edited("torch_gru_last_softmax", "torch_gru_reset_before_unsupported",
           lambda n: set_attr(n, "linear_before_reset", 0), ["linear_before_reset"])
    edited("torch_gru_last_softmax", "torch_gru_clip_unsupported",
           lambda n: set_attr(n, "clip", 3.0), ["clip"])
    edited("torch_lstm_flatten_sigmoid", "torch_lstm_activations_unsupported",
           lambda n: set_attr(n, "activations", ["Sigmoid", "Relu", "Tanh"]), ["activations"])


def make_keras(out_dir):
    # Keras 2 (tf_keras): tf2onnx rewrites its LSTM and GRU layers into the ONNX ops.
    # Keras 3 GRU layers stay a Loop; one such model checks the importer's refusal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import keras as keras3
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    source = (f"Keras {keras.__version__} (tf_keras, TensorFlow {tf.__version__}), "
              f"tf2onnx {tf2onnx.__version__}, opset 14")

    def build(layers_mod, cell, head, outputs, onehot=False, reset_after=True):
        layers = layers_mod.layers
        if onehot:
            inp = layers_mod.Input(shape=(MAXLEN, VOCAB_ROWS), dtype="float32", name="onehot")
            x = inp
        else:
            inp = layers_mod.Input(shape=(MAXLEN,), dtype="int32", name="ids")
            x = layers.Embedding(VOCAB_ROWS, EMBED)(inp)
        sequences = head == "flatten"
        if cell == "lstm":
            x = layers.LSTM(HIDDEN, return_sequences=sequences)(x)
        else:
            x = layers.GRU(HIDDEN, return_sequences=sequences, reset_after=reset_after)(x)
        if sequences:
            x = layers.Flatten()(x)
        activation = "sigmoid" if outputs == 1 else "softmax"
        out = layers.Dense(outputs, activation=activation)(x)
        return layers_mod.Model(inp, out)

    def randomize(model, seed):
        # Non-zero biases everywhere, so a misplaced bias cannot hide.
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0.0, 0.5, size=w.shape).astype(np.float32)
                           for w in model.get_weights()])

    def spec(onehot):
        if onehot:
            return (tf.TensorSpec((None, MAXLEN, VOCAB_ROWS), tf.float32, name="onehot"),)
        return (tf.TensorSpec((None, MAXLEN), tf.int32, name="ids"),)

    def export(name, model, onehot=False):
        tf2onnx.convert.from_keras(model, input_signature=spec(onehot), opset=14,
                                   output_path=os.path.join(out_dir, f"{name}.onnx"))

    cases = [
        ("keras_lstm_flatten_sigmoid", "lstm", "flatten", 1, False),
        ("keras_gru_last_softmax", "gru", "last", 5, False),
        ("keras_lstm_onehot_last_sigmoid", "lstm", "last", 1, True),
        ("keras_gru_flatten_sigmoid", "gru", "flatten", 1, False),
    ]
    for k, (name, cell, head, outputs, onehot) in enumerate(cases):
        keras.utils.set_random_seed(200 + k)
        model = build(keras, cell, head, outputs, onehot)
        randomize(model, 300 + k)
        ids = fixed_ids(17 + k, 4, MAXLEN, pad_tail=head == "flatten")
        x = np.eye(VOCAB_ROWS, dtype=np.float32)[ids] if onehot else ids.astype(np.int32)
        out = model(x, training=False).numpy()
        export(name, model, onehot)
        expect = {"cell": cell, "hidden": HIDDEN, "head": head, "classes": outputs}
        if head == "flatten":
            expect["maxlen"] = MAXLEN
        write_fixture(out_dir, name, source, CHAR_TOKENS, ids, out, expect)

    keras.utils.set_random_seed(9)
    model = build(keras, "gru", "last", 1, reset_after=False)
    randomize(model, 9)
    export("keras_gru_reset_before_unsupported", model)
    # tf2onnx leaves reset_after=False GRU layers as a Loop.
    write_unsupported(out_dir, "keras_gru_reset_before_unsupported", source, CHAR_TOKENS,
                      ["Loop"])

    keras3.utils.set_random_seed(10)
    model = build(keras3, "gru", "last", 1)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec(False), opset=14,
                                  output_path=os.path.join(out_dir, "keras3_gru_loop_unsupported.onnx"))
    source3 = f"Keras {keras3.__version__} (TensorFlow {tf.__version__}), tf2onnx {tf2onnx.__version__}"
    write_unsupported(out_dir, "keras3_gru_loop_unsupported", source3, CHAR_TOKENS, ["Loop"])


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("torch", "keras"):
        sys.exit("usage: make_foreign_fixtures.py torch|keras OUT_DIR")
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    if sys.argv[1] == "torch":
        make_torch(out_dir)
    else:
        make_keras(out_dir)


if __name__ == "__main__":
    main()
