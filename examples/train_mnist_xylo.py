"""Train a small MNIST network that fits a Xylo chip (SynSense Xylo Audio 3).

Xylo reads 16 input channels, so the image is averaged over 7x7 pixel
blocks into a 4x4 grid first — inside the model, as an AveragePooling2D
layer, which the Xylo mapping runs on the host as input preprocessing.
Two small ReLU layers follow (the first may have at most 128 neurons: on
Xylo Audio 3 the input reaches the first 128 hidden neurons, and the
readout reads the last 128)::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    AveragePooling2D(7) -> Flatten                     -> 16 channels
    Dense(128, relu) -> Dense(64, relu) -> Dense(10, softmax)

Data, seeding, the training schedule and the saved file are shared with the
other examples and described in ``mnist_training.py``.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.

Usage (from the repository root)::

    python examples/train_mnist_xylo.py [--data /path/to/mnist.npz] [--epochs 20]
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "mnist_xylo.keras"


def build_model() -> keras.Model:
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.AveragePooling2D(7, name="pool7")(inputs)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense1")(x)
    x = layers.Dense(64, activation="relu", name="dense2")(x)
    outputs = layers.Dense(10, activation="softmax", name="readout")(x)
    return keras.Model(inputs, outputs, name="mnist_xylo")


if __name__ == "__main__":
    sys.exit(train_and_save(build_model, DEFAULT_OUT, __doc__.splitlines()[0], sys.argv[1:]))
