"""Train the small VGG-style Fashion-MNIST network for snnconv.

An example model deeper than the MNIST ones, for measuring conversion accuracy
(rate code with calibration, time-to-first-spike) on a network the project was
not tuned on. Three VGG blocks of two bias-free 3x3 convs, each followed by
BatchNormalization (folded by the converter) and ReLU, then 2x2 max pooling;
a small fully connected head with Dropout (inactive at inference)::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    block1  2 x [Conv2D(16, 3, same) -> BN -> ReLU] -> MaxPooling2D(2)  -> (14, 14, 16)
    block2  2 x [Conv2D(24, 3, same) -> BN -> ReLU] -> MaxPooling2D(2)  -> (7, 7, 24)
    block3  2 x [Conv2D(32, 3, same) -> BN -> ReLU] -> MaxPooling2D(2)  -> (3, 3, 32)
    Flatten -> Dense(64, relu) -> Dropout(0.3) -> Dense(10, softmax)

Data (Fashion-MNIST), seeding, the training schedule and the saved file (an
uncompiled, inference-only copy: architecture and weights) are shared with the
MNIST examples and described in ``mnist_training.py``.

Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/train_fashion_vgg.py
    python examples/train_fashion_vgg.py --data /path/to/fashion_mnist.npz \\
        --epochs 12 --out examples/models/fashion_vgg.keras
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "fashion_vgg.keras"

BLOCK_WIDTHS = (16, 24, 32)   # channels of the two convs in each block
HIDDEN = 64                   # units of the hidden Dense layer


def build_model() -> keras.Model:
    """The VGG-style CNN described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = inputs
    for b, filters in enumerate(BLOCK_WIDTHS, start=1):
        for c in (1, 2):
            name = f"block{b}_conv{c}"
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
            x = layers.BatchNormalization(name=name + "_bn")(x)
            x = layers.ReLU(name=name + "_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(HIDDEN, activation="relu", name="fc")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="fashion_vgg")


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv,
                          dataset=FASHION_MNIST)


if __name__ == "__main__":
    sys.exit(main())
