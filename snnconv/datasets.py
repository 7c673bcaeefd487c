"""Loading evaluation and normalisation data.

Two layouts are read (``[input] dataset_format = npz``):

* one ``.npz`` file with ``x_test`` and ``y_test`` and, for normalisation,
  ``x_norm`` (or else ``x_train``) — Keras's ``mnist.npz`` works as it is;
* a folder in SNN Toolbox's layout: ``x_test.npz``, ``y_test.npz`` and
  ``x_norm.npz``, each holding its array under ``arr_0``.

Labels may be integers or one-hot rows. Inputs are multiplied by
``input_scale`` and reshaped to the model's input shape when only a trailing
channel axis of size 1 is missing.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from .errors import DataError


@dataclasses.dataclass
class Dataset:
    x_test: np.ndarray
    y_test: np.ndarray
    x_norm: np.ndarray | None
    source: str


def load_dataset(path, input_shape: tuple[int, ...] | None = None,
                 input_scale: float = 1.0) -> Dataset:
    path = Path(path)
    if path.is_dir():
        arrays = {}
        for key in ("x_test", "y_test", "x_norm"):
            f = path / f"{key}.npz"
            if f.exists():
                arrays[key] = _read_npz(f, "arr_0")
    elif path.is_file():
        arrays = {}
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in ("x_test", "y_test", "x_norm", "x_train"):
                    if key in z.files:
                        arrays[key] = z[key]
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read dataset {path}: {e}") from None
        if "x_norm" not in arrays and "x_train" in arrays:
            arrays["x_norm"] = arrays["x_train"]
    else:
        raise DataError(f"dataset {path} does not exist")
    for key in ("x_test", "y_test"):
        if key not in arrays:
            raise DataError(f"dataset {path} has no {key!r} "
                            "(expected keys x_test, y_test[, x_norm or x_train])")
    x_test = _prepare(arrays["x_test"], input_shape, input_scale, path, "x_test")
    from .evaluation import as_labels
    y_test = as_labels(arrays["y_test"])
    if len(y_test) != len(x_test):
        raise DataError(f"dataset {path}: {len(x_test)} x_test samples but "
                        f"{len(y_test)} y_test labels")
    x_norm = arrays.get("x_norm")
    if x_norm is not None:
        x_norm = _prepare(x_norm, input_shape, input_scale, path, "x_norm")
    return Dataset(x_test, y_test, x_norm, str(path))


def _read_npz(f: Path, key: str) -> np.ndarray:
    try:
        with np.load(f, allow_pickle=False) as z:
            return z[key]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot read {key!r} from {f}: {e}") from None


def _prepare(x, input_shape, scale, path, key) -> np.ndarray:
    x = np.asarray(x)
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        if math.prod(x.shape[1:]) == math.prod(input_shape) and \
                tuple(x.shape[1:]) == tuple(input_shape)[:len(x.shape) - 1]:
            x = x.reshape((len(x),) + tuple(input_shape))
        else:
            raise DataError(f"dataset {path}: {key} has samples of shape {x.shape[1:]}, "
                            f"the model expects {tuple(input_shape)}")
    return (x.astype(np.float32) * np.float32(scale))
