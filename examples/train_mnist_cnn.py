"""Train the small MNIST CNN that ships with snnconv as its default model.

The network is built to be friendly to rate-coded (IF neuron) SNN conversion:
ReLU activations only, BatchNormalization between each conv and its ReLU (the
convs have no bias; BN is folded into them by the converter), both pooling
kinds, a Dropout (inactive at inference), and a final Dense(10, softmax)::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    Conv2D(16, 3, padding="same", use_bias=False) -> BN -> ReLU
    AveragePooling2D(2)
    Conv2D(32, 3, use_bias=False) -> BN -> ReLU
    MaxPooling2D(2)
    Flatten -> Dropout(0.3) -> Dense(10, softmax)

Data, seeding, the training schedule and the saved file (an uncompiled,
inference-only copy: architecture and weights) are shared with the other
example and described in ``mnist_training.py``.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.

Usage (from the repository root)::

    python examples/train_mnist_cnn.py
    python examples/train_mnist_cnn.py --data /path/to/mnist.npz --epochs 6 \\
        --out snnconv/data/mnist_cnn.keras
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import REPO_ROOT, stem, train_and_save

DEFAULT_OUT = REPO_ROOT / "snnconv" / "data" / "mnist_cnn.keras"


def build_model() -> keras.Model:
    """The conversion-friendly CNN described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = stem(inputs)
    x = layers.Conv2D(32, 3, use_bias=False, name="conv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="maxpool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv)


if __name__ == "__main__":
    sys.exit(main())
