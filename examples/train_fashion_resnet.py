"""Train the small ResNet-style Fashion-MNIST network for snnconv.

An example model deeper than the MNIST ones, for measuring conversion accuracy
(rate code with calibration, time-to-first-spike) on a network the project was
not tuned on. Four residual blocks (two of them stride-2 with a 1x1 stride-2
projection shortcut), each ``conv-BN-ReLU-conv-BN`` -> ``Add`` with the
shortcut -> ``ReLU``. Every conv is bias-free and followed by a
BatchNormalization (folded by the converter); only layers snnconv supports::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    stem    Conv2D(16, 3, same) -> BN -> ReLU                    -> (28, 28, 16)
    block1  stride 2, 24 ch; shortcut Conv2D(24, 1, stride 2) -> BN  -> (14, 14, 24)
    block2  stride 1, 24 ch; identity shortcut                   -> (14, 14, 24)
    block3  stride 2, 32 ch; shortcut Conv2D(32, 1, stride 2) -> BN  -> (7, 7, 32)
    block4  stride 1, 32 ch; identity shortcut                   -> (7, 7, 32)
    GlobalAveragePooling2D -> Dense(10, softmax)

Data (Fashion-MNIST), seeding, the training schedule and the saved file (an
uncompiled, inference-only copy: architecture and weights) are shared with the
MNIST examples and described in ``mnist_training.py``.

Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/train_fashion_resnet.py
    python examples/train_fashion_resnet.py --data /path/to/fashion_mnist.npz \\
        --epochs 12 --out examples/models/fashion_resnet.keras
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "fashion_resnet.keras"

# (channels, stride) of the residual blocks after the 16-channel stem
BLOCKS = ((24, 2), (24, 1), (32, 2), (32, 1))


def conv_bn(x, filters: int, kernel: int, strides: int, name: str):
    """Bias-free Conv2D (same padding) -> BatchNormalization, named ``name``/``name_bn``."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same",
                      use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=name + "_bn")(x)


def residual_block(x, filters: int, strides: int, name: str):
    """conv-BN-ReLU-conv-BN, Add with the shortcut, ReLU. The shortcut is the
    input itself, or a 1x1 conv + BN when the stride or the width changes."""
    y = conv_bn(x, filters, 3, strides, name + "_conv1")
    y = layers.ReLU(name=name + "_relu1")(y)
    y = conv_bn(y, filters, 3, 1, name + "_conv2")
    if strides != 1 or x.shape[-1] != filters:
        shortcut = conv_bn(x, filters, 1, strides, name + "_proj")
    else:
        shortcut = x
    y = layers.Add(name=name + "_add")([y, shortcut])
    return layers.ReLU(name=name + "_relu")(y)


def build_model() -> keras.Model:
    """The ResNet-style CNN described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = conv_bn(inputs, 16, 3, 1, "stem")
    x = layers.ReLU(name="stem_relu")(x)
    for i, (filters, strides) in enumerate(BLOCKS, start=1):
        x = residual_block(x, filters, strides, f"block{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="fashion_resnet")


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv,
                          dataset=FASHION_MNIST)


if __name__ == "__main__":
    sys.exit(main())
