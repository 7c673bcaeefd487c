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

Data, seeding, the training schedule and the saved file (an uncompiled,
inference-only copy: architecture and weights) are shared with the other
example and described in ``mnist_training.py``.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.

Usage (from the repository root)::

    python examples/train_mnist_dwconcat.py
    python examples/train_mnist_dwconcat.py --data /path/to/mnist.npz --epochs 6 \\
        --out examples/models/mnist_dwconcat.keras
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import REPO_ROOT, stem, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "mnist_dwconcat.keras"


def build_model() -> keras.Model:
    """The branched depthwise/concatenate CNN described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = stem(inputs)

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


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
