"""Train Keras's MobileNetV2 (alpha 0.35) on Fashion-MNIST padded to 32x32, for snnconv.

A network built as users build theirs: ``keras.applications.MobileNetV2``
(inverted residual blocks: 1x1 expansion conv -> BN -> ReLU6 -> depthwise
conv -> BN -> ReLU6 -> 1x1 projection conv -> BN, with residual ``Add``;
``weights=None``, trained from scratch) on the 28x28 images zero-padded to
32x32 inside the model, so the model takes the dataset's images as they are::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    ZeroPadding2D(2) -> (32, 32, 1)
    MobileNetV2(alpha=0.35, include_top=False, weights=None) -> (1, 1, 1280)
    GlobalAveragePooling2D -> Dense(10, softmax)

It exercises the ReLU6 activations and the many folded BNs of the
architecture. Data, seeding, the schedule and the saved file are shared with
the other examples (``mnist_training.py``). Fashion-MNIST: Copyright 2017
Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/train_fashion_mobilenetv2.py [--epochs 8] \\
        [--out examples/models/fashion_mobilenetv2.keras]
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "fashion_mobilenetv2.keras"


def build_model() -> keras.Model:
    """MobileNetV2 (alpha 0.35) on the padded image, as in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.ZeroPadding2D(2, name="pad32")(inputs)
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 1), alpha=0.35,
                                              include_top=False, weights=None)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="fashion_mobilenetv2")


def main(argv: list[str] | None = None) -> int:
    # XLA makes this network's training step about 6x slower on CPU (3.1 s
    # against 0.49 s per batch of 256, measured on 2 cores)
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv,
                          dataset=FASHION_MNIST, jit_compile=False)


if __name__ == "__main__":
    sys.exit(main())
