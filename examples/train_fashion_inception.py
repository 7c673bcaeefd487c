"""Train a small Inception-style Fashion-MNIST network with a residual block, for snnconv.

A held-out check network: it was made after the conversion defaults had been
chosen on the other examples, to measure them on a network they were not
tuned on. It mixes what users' networks have and the other examples combine
differently: parallel branches of different depth joined by ``Concatenate``,
a max-pooling branch inside a block, a residual ``Add`` of a two-conv path
with the block's input, average and global average pooling::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    stem     Conv2D(24, 3, same) -> BN -> ReLU -> MaxPooling2D(2)         -> (14, 14, 24)
    incept1  [1x1(16)] | [1x1(16) -> 3x3(24)] | [MaxPool(3, 1, same) -> 1x1(8)]
             -> Concatenate                                               -> (14, 14, 48)
    res      3x3(48) -> BN -> ReLU -> 3x3(48) -> BN, Add with incept1 -> ReLU
             -> AveragePooling2D(2)                                      -> (7, 7, 48)
    incept2  [1x1(24)] | [1x1(24) -> 3x3(32)] | [MaxPool(3, 1, same) -> 1x1(8)]
             -> Concatenate                                               -> (7, 7, 64)
    GlobalAveragePooling2D -> Dense(10, softmax)

Every conv but the last of the residual path is Conv2D -> BN -> ReLU (BN
folded by the converter). Data (Fashion-MNIST), seeding, the training
schedule and the saved file are shared with the other examples
(``mnist_training.py``). Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/train_fashion_inception.py [--epochs 12] \\
        [--out examples/models/fashion_inception.keras]
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "fashion_inception.keras"


def conv_bn(x, filters: int, size: int, name: str, relu: bool = True):
    x = layers.Conv2D(filters, size, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x) if relu else x


def inception(x, narrow: int, wide: int, pooled: int, name: str):
    a = conv_bn(x, narrow, 1, f"{name}_1x1")
    b = conv_bn(x, narrow, 1, f"{name}_3x3_reduce")
    b = conv_bn(b, wide, 3, f"{name}_3x3")
    c = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    c = conv_bn(c, pooled, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([a, b, c])


def build_model() -> keras.Model:
    """The network described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = conv_bn(inputs, 24, 3, "stem")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = inception(x, 16, 24, 8, "incept1")
    r = conv_bn(x, 48, 3, "res_conv1")
    r = conv_bn(r, 48, 3, "res_conv2", relu=False)
    x = layers.ReLU(name="res_relu")(layers.Add(name="res_add")([x, r]))
    x = layers.AveragePooling2D(2, name="res_pool")(x)
    x = inception(x, 24, 32, 8, "incept2")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="fashion_inception")


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv,
                          dataset=FASHION_MNIST)


if __name__ == "__main__":
    sys.exit(main())
