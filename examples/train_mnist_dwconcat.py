"""Train the small branched MNIST network (DepthwiseConv2D + Concatenate) for snnconv.

A second example model, next to the default ``snnconv/data/mnist_cnn.keras``
(made by ``examples/train_mnist_cnn.py``). It exercises a depthwise
convolution, a fan-out into two branches and a channel concatenation, and is
meant for conversion to spiking networks with both rate and time-to-first-spike
codes. It keeps to ReLU activations, BatchNormalization between each bias-free
conv and its ReLU (folded by the converter), both pooling kinds, a Dropout
(inactive at inference) and a final Dense(10, softmax)::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    Conv2D(16, 3, padding="same", use_bias=False) -> BN -> ReLU
    AveragePooling2D(2)                                   -> (14, 14, 16)
    branch a: DepthwiseConv2D(3, padding="same", use_bias=False) -> BN -> ReLU
    branch b: Conv2D(8, 1) -> ReLU
    Concatenate([a, b])                                   -> (14, 14, 24)
    Conv2D(24, 3, use_bias=False) -> BN -> ReLU           -> (12, 12, 24)
    MaxPooling2D(2)                                       -> (6, 6, 24)
    Flatten -> Dropout(0.3) -> Dense(10, softmax)

Data: the full MNIST file (Keras ``mnist.npz`` layout) given by ``--data``
(default ``../shared/data/mnist.npz`` relative to the repository root). If that
file does not exist, the script falls back to the bundled subset
``snnconv/data/mnist_subset.npz`` and trains on its 1000 ``x_norm`` images only
(30 epochs by default in that mode); this gives a MUCH weaker model and is
meant only to let the script run without the full data set. Nothing is ever
downloaded.

Training is seeded (``keras.utils.set_random_seed``, TF op determinism) and
uses Adam with a cosine-decayed learning rate (2e-3 -> 0), batch size 64.

The saved file holds an uncompiled, inference-only copy of the trained model
(architecture + weights, no optimizer state), which keeps it small; compile it
yourself if you want ``model.evaluate``.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.

Usage (from the repository root)::

    python examples/train_mnist_dwconcat.py
    python examples/train_mnist_dwconcat.py --data /path/to/mnist.npz --epochs 6 \\
        --out examples/models/mnist_dwconcat.keras
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist.npz"
DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "mnist_dwconcat.keras"
SUBSET = REPO_ROOT / "snnconv" / "data" / "mnist_subset.npz"

SEED = 1234


def build_model() -> keras.Model:
    """The branched depthwise/concatenate CNN described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.AveragePooling2D(2, name="avgpool1")(x)

    a = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dwconv")(x)
    a = layers.BatchNormalization(name="bn_dw")(a)
    a = layers.ReLU(name="relu_dw")(a)

    b = layers.Conv2D(8, 1, name="conv_1x1")(x)
    b = layers.ReLU(name="relu_1x1")(b)

    x = layers.Concatenate(axis=-1, name="concat")([a, b])
    x = layers.Conv2D(24, 3, use_bias=False, name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="maxpool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="mnist_dwconcat")


def to_input(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28[, 1]) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (x.reshape(-1, 28, 28, 1).astype("float32") / 255.0)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    pred = model.predict(to_input(x), batch_size=500, verbose=0).argmax(axis=1)
    return float(np.mean(pred == y.reshape(-1)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help=f"full MNIST .npz (default: {DEFAULT_DATA})")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 6 on full MNIST, 30 on the "
                        "1000-image fallback)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output .keras file (default: {DEFAULT_OUT})")
    args = p.parse_args(argv)

    keras.utils.set_random_seed(SEED)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()

    with np.load(SUBSET) as s:
        x_sub, y_sub = s["x_test"], s["y_test"]
        x_norm, y_norm = s["x_norm"], s["y_norm"]

    full = args.data.is_file()
    if full:
        with np.load(args.data) as d:
            x_train, y_train = d["x_train"], d["y_train"]
            x_test, y_test = d["x_test"], d["y_test"]
        print(f"training on full MNIST from {args.data} ({len(x_train)} images)")
    else:
        x_train, y_train = x_norm, y_norm
        x_test = y_test = None
        print(f"WARNING: {args.data} not found; training on the bundled subset's "
              f"{len(x_train)} x_norm images only -- the model will be much weaker.",
              file=sys.stderr)

    batch_size = 64 if full else 32
    if args.epochs is None:
        args.epochs = 6 if full else 30
    steps = args.epochs * int(np.ceil(len(x_train) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)

    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()

    t0 = time.perf_counter()
    model.fit(to_input(x_train), y_train.astype("int64"), batch_size=batch_size,
              epochs=args.epochs, shuffle=True, verbose=2)
    train_s = time.perf_counter() - t0
    print(f"training time: {train_s:.1f} s")

    if full:
        acc_full = accuracy(model, x_test, y_test)
        print(f"test accuracy, full test set ({len(x_test)}): {acc_full:.4f}")
    # The bundled subset's x_test are the first 2000 MNIST test images.
    acc_sub = accuracy(model, x_sub, y_sub)
    print(f"test accuracy, first {len(x_sub)} test images (bundled subset): "
          f"{acc_sub:.4f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Save an uncompiled copy: same architecture and weights, no optimizer state.
    inference_model = build_model()
    inference_model.set_weights(model.get_weights())
    inference_model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
