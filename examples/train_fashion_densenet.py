"""Train a small DenseNet-style Fashion-MNIST network with pre-activation blocks, for snnconv.

A held-out check network: it was made after the conversion defaults (including
``cell.burst = auto``) had been chosen on the other examples, to measure them
on a network they were not tuned on. Unlike the others its blocks are
pre-activation (``BatchNormalization -> ReLU -> conv``, as DenseNet and
ResNetV2 have them: a BN that follows a concatenation, not a conv, so the
converter makes it a per-channel layer of its own) and every layer of a dense
block reads the concatenation of all earlier ones::

    Input (28, 28, 1), float in [0, 1] (= uint8 / 255)
    stem     Conv2D(16, 3, same)                                          -> (28, 28, 16)
    block1   3 x [BN -> ReLU -> Conv2D(12, 3, same)], each concatenated
             to its input                                                 -> (28, 28, 52)
    trans1   BN -> ReLU -> Conv2D(32, 1) -> AveragePooling2D(2)           -> (14, 14, 32)
    block2   3 x [BN -> ReLU -> Conv2D(12, 3, same)], concatenated        -> (14, 14, 68)
    trans2   BN -> ReLU -> Conv2D(48, 1) -> AveragePooling2D(2)           -> (7, 7, 48)
    block3   2 x [BN -> ReLU -> Conv2D(12, 3, same)], concatenated        -> (7, 7, 72)
    BN -> ReLU -> GlobalAveragePooling2D -> Dense(10, softmax)

Data (Fashion-MNIST), seeding, the training schedule and the saved file are
shared with the other examples (``mnist_training.py``). Fashion-MNIST:
Copyright 2017 Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/train_fashion_densenet.py [--epochs 4] \\
        [--out examples/models/fashion_densenet.keras]
"""

from __future__ import annotations

import sys

import keras
from keras import layers

from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save

DEFAULT_OUT = REPO_ROOT / "examples" / "models" / "fashion_densenet.keras"


def bn_relu_conv(x, filters: int, size: int, name: str):
    x = layers.BatchNormalization(name=name + "_bn")(x)
    x = layers.ReLU(name=name + "_relu")(x)
    return layers.Conv2D(filters, size, padding="same", use_bias=False, name=name)(x)


def dense_block(x, layers_in_block: int, growth: int, name: str):
    for i in range(layers_in_block):
        new = bn_relu_conv(x, growth, 3, f"{name}_conv{i + 1}")
        x = layers.Concatenate(name=f"{name}_concat{i + 1}")([x, new])
    return x


def transition(x, filters: int, name: str):
    x = bn_relu_conv(x, filters, 1, name)
    return layers.AveragePooling2D(2, name=name + "_pool")(x)


def build_model() -> keras.Model:
    """The network described in the module docstring."""
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = dense_block(x, 3, 12, "block1")
    x = transition(x, 32, "trans1")
    x = dense_block(x, 3, 12, "block2")
    x = transition(x, 48, "trans2")
    x = dense_block(x, 2, 12, "block3")
    x = layers.BatchNormalization(name="final_bn")(x)
    x = layers.ReLU(name="final_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs, name="fashion_densenet")


def main(argv: list[str] | None = None) -> int:
    return train_and_save(build_model, DEFAULT_OUT, __doc__.split("\n\n")[0], argv,
                          dataset=FASHION_MNIST)


if __name__ == "__main__":
    sys.exit(main())
