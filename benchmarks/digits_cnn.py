"""SNN Toolbox's digits CNN, on MNIST downsampled to 8x8: the network the engine
benchmark (``bench_engine.py``) and the SNN Toolbox peer script
(``peers/snntoolbox_digits.py``) both time. Needs only numpy here, so that
either environment (Keras 3 or the toolbox's tf.keras) can import it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def downsample_8x8(x: np.ndarray) -> np.ndarray:
    """28x28 digits to 8x8: the central 24x24 averaged over 3x3 blocks."""
    x = np.asarray(x, np.float32).reshape(-1, 28, 28)[:, 2:26, 2:26]
    return x.reshape(-1, 8, 3, 8, 3).mean(axis=(2, 4))[..., None]


def digits_data(fallback=None):
    """``(x_train, y_train, x_test, y_test)``: 20,000 training and 1,000 test
    images of ``../shared/data/mnist.npz`` at 8x8, scaled to [0, 1]; without
    it, the ``.npz`` ``fallback`` (the bundled subset): its first 1,000 test
    images to train on, the others to test."""
    if MNIST.is_file():
        with np.load(MNIST) as z:
            parts = z["x_train"][:20000], z["y_train"][:20000], z["x_test"][:1000], \
                z["y_test"][:1000]
    else:
        with np.load(fallback) as z:
            parts = z["x_test"][:1000], z["y_test"][:1000], z["x_test"][1000:], \
                z["y_test"][1000:]
    x_train, y_train, x_test, y_test = parts
    return (downsample_8x8(x_train / 255.0), np.asarray(y_train).reshape(-1),
            downsample_8x8(x_test / 255.0), np.asarray(y_test).reshape(-1))


def digits_cnn(keras, one_hot: bool = False):
    """The untrained network in the given Keras (``keras`` or ``tf_keras``):
    8x8x1 -> conv16 -> avgpool -> conv32 -> avgpool -> fc64 -> fc10, compiled
    with Adam and cross-entropy (on one-hot labels if ``one_hot``)."""
    layers = keras.layers
    ann = keras.Sequential([
        layers.InputLayer((8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.AveragePooling2D(2),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.AveragePooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax")], name="digits_cnn")
    ann.compile("adam", "categorical_crossentropy" if one_hot
                else "sparse_categorical_crossentropy", metrics=["accuracy"])
    return ann


def trained_digits_cnn(keras, x_train, y_train, one_hot: bool = False):
    """:func:`digits_cnn` trained for 3 epochs, batch 64, seed 0."""
    keras.utils.set_random_seed(0)
    ann = digits_cnn(keras, one_hot)
    ann.fit(x_train, np.eye(10)[y_train] if one_hot else y_train, epochs=3, batch_size=64,
            verbose=0)
    return ann
