"""Data files bundled with snnconv: a small MNIST CNN and a compact MNIST subset.

See ``README.md`` in this folder for what the files hold, how they were made,
and the MNIST attribution (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

MODEL_FILE = "mnist_cnn.keras"
DATASET_FILE = "mnist_subset.npz"


def bundled_model_path() -> Path:
    """Path of the bundled Keras 3 MNIST CNN (``mnist_cnn.keras``)."""
    return _HERE / MODEL_FILE


def bundled_dataset_path() -> Path:
    """Path of the bundled MNIST subset (``mnist_subset.npz``).

    Arrays: ``x_test`` uint8 (2000, 28, 28, 1), ``y_test`` uint8 (2000,),
    ``x_norm`` uint8 (1000, 28, 28, 1), ``y_norm`` uint8 (1000,).
    Divide the images by 255 to get the model's input range [0, 1].
    """
    return _HERE / DATASET_FILE
