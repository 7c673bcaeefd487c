"""Shared training loop of the example models (train_mnist_*.py, train_fashion_*.py).

Each script trains on one dataset, an :class:`ImageDataset`: ``MNIST`` (the
default) or ``FASHION_MNIST``. The full data file (Keras ``mnist.npz`` layout:
``x_train``, ``y_train``, ``x_test``, ``y_test``, uint8) comes from ``--data``
(default ``../shared/data/mnist.npz`` or ``../shared/data/fashion_mnist.npz``
beside the repository); without it the scripts fall back to the bundled
subset's ``x_norm`` images (1000 MNIST / 500 Fashion-MNIST), which gives a much
weaker model (the default CNN: 94.2 % instead of 98.95 % on the bundled
2000 test images, 30 epochs by default in that mode). Nothing is downloaded.
Training is seeded (``keras.utils.set_random_seed``, TF op determinism) and
uses Adam with a cosine-decayed learning rate (2e-3 -> 0), batch size 64.
Inputs are float32 (N, 28, 28, 1) in [0, 1] (= uint8 / 255).
The saved file is an uncompiled, inference-only copy of the trained model
(architecture and weights, no optimizer state), which keeps it small.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.
Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist.npz"
SUBSET = REPO_ROOT / "snnconv" / "data" / "mnist_subset.npz"

SEED = 1234


@dataclass(frozen=True)
class ImageDataset:
    """A 28x28 grey-scale, 10-class data set in the Keras ``mnist.npz`` layout."""

    name: str            # as printed, e.g. "MNIST"
    default_data: Path   # full .npz (x_train, y_train, x_test, y_test)
    subset: Path         # bundled subset (x_test, y_test, x_norm, y_norm)
    epochs: int          # default epochs on the full training set
    fallback_epochs: int  # default epochs on the subset's x_norm images


MNIST = ImageDataset("MNIST", DEFAULT_DATA, SUBSET, epochs=6, fallback_epochs=30)
FASHION_MNIST = ImageDataset(
    "Fashion-MNIST",
    REPO_ROOT.parent / "shared" / "data" / "fashion_mnist.npz",
    REPO_ROOT / "snnconv" / "data" / "fashion_subset.npz",
    epochs=12, fallback_epochs=30)


def stem(inputs):
    """The first block both example models share: conv (no bias) -> BN -> ReLU -> avg pool."""
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    return layers.AveragePooling2D(2, name="avgpool1")(x)


def to_input(x: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28[, 1]) -> float32 (N, 28, 28, 1) in [0, 1]."""
    return (x.reshape(-1, 28, 28, 1).astype("float32") / 255.0)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    pred = model.predict(to_input(x), batch_size=500, verbose=0).argmax(axis=1)
    return float(np.mean(pred == y.reshape(-1)))


def train_and_save(build_model, default_out: Path, description: str,
                   argv: list[str] | None = None,
                   dataset: ImageDataset = MNIST, jit_compile="auto") -> int:
    """Parse ``--data/--epochs/--out``, train ``build_model()`` on ``dataset``
    and save an uncompiled inference copy (architecture + weights, no
    optimizer state). ``jit_compile`` is passed to ``Model.compile``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=Path, default=dataset.default_data,
                   help=f"full {dataset.name} .npz (default: {dataset.default_data})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default {dataset.epochs} on full "
                        f"{dataset.name}, {dataset.fallback_epochs} on the "
                        "bundled-subset fallback)")
    p.add_argument("--out", type=Path, default=default_out,
                   help=f"output .keras file (default: {default_out})")
    args = p.parse_args(argv)

    keras.utils.set_random_seed(SEED)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()

    with np.load(dataset.subset) as s:
        x_sub, y_sub = s["x_test"], s["y_test"]
        x_norm, y_norm = s["x_norm"], s["y_norm"]

    full = args.data.is_file()
    if full:
        with np.load(args.data) as d:
            x_train, y_train = d["x_train"], d["y_train"]
            x_test, y_test = d["x_test"], d["y_test"]
        print(f"training on full {dataset.name} from {args.data} ({len(x_train)} images)")
    else:
        x_train, y_train = x_norm, y_norm
        x_test = y_test = None
        print(f"WARNING: {args.data} not found; training on the bundled subset's "
              f"{len(x_train)} x_norm images only -- the model will be much weaker.",
              file=sys.stderr)

    batch_size = 64 if full else 32
    if args.epochs is None:
        args.epochs = dataset.epochs if full else dataset.fallback_epochs
    steps = args.epochs * int(np.ceil(len(x_train) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)

    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    model.summary()

    t0 = time.perf_counter()
    model.fit(to_input(x_train), y_train.astype("int64"), batch_size=batch_size,
              epochs=args.epochs, shuffle=True, verbose=2)
    train_s = time.perf_counter() - t0
    print(f"training time: {train_s:.1f} s")

    if full:
        acc_full = accuracy(model, x_test, y_test)
        print(f"test accuracy, full test set ({len(x_test)}): {acc_full:.4f}")
    acc_sub = accuracy(model, x_sub, y_sub)
    print(f"test accuracy, bundled subset ({len(x_sub)}): {acc_sub:.4f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Save an uncompiled copy: same architecture and weights, no optimizer state.
    inference_model = build_model()
    inference_model.set_weights(model.get_weights())
    inference_model.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0
