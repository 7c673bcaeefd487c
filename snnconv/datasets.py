"""Loading evaluation and normalisation data.

``[input] dataset_format = folder`` reads images from class subfolders
(:class:`ImageFolder`, streamed). ``dataset_format = npz`` reads two layouts:

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


def as_labels(y) -> np.ndarray:
    """Integer class labels from integer labels or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1).astype(np.int64)
    return y.reshape(-1).astype(np.int64)


@dataclasses.dataclass
class Dataset:
    x_test: np.ndarray
    y_test: np.ndarray
    x_norm: np.ndarray | None
    source: str


def load_dataset(path, input_shape: tuple[int, ...] | None = None,
                 input_scale: float = 1.0, lazy: bool = False) -> Dataset:
    """The test (and normalisation) data of ``path``.

    With ``lazy`` the inputs of a single ``.npz`` file are not read up front:
    ``x_test`` and ``x_norm`` are :class:`Rows` views that read (and
    decompress) only the rows a slice asks for, so a pass over them in
    batches keeps memory flat in the number of samples. Labels are read
    whole (they are small).
    """
    path = Path(path)
    if lazy and path.is_file():
        return _lazy_npz(path, input_shape, input_scale)
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
    y_test = as_labels(arrays["y_test"])
    if len(y_test) != len(x_test):
        raise DataError(f"dataset {path}: {len(x_test)} x_test samples but "
                        f"{len(y_test)} y_test labels")
    x_norm = arrays.get("x_norm")
    if x_norm is not None:
        x_norm = _prepare(x_norm, input_shape, input_scale, path, "x_norm")
    return Dataset(x_test, y_test, x_norm, str(path))


def _lazy_npz(path: Path, input_shape, scale) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            labels = as_labels(z["y_test"]) if "y_test" in files else None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read dataset {path}: {e}") from None
    if "x_test" not in files or labels is None:
        raise DataError(f"dataset {path} has no 'x_test' and 'y_test' "
                        "(expected keys x_test, y_test[, x_norm or x_train])")
    x_test = Rows(NpzMember(path, "x_test"), input_shape, scale, path, "x_test")
    if len(x_test) != len(labels):
        raise DataError(f"dataset {path}: {len(x_test)} x_test samples but "
                        f"{len(labels)} y_test labels")
    norm_key = "x_norm" if "x_norm" in files else "x_train" if "x_train" in files else None
    x_norm = (Rows(NpzMember(path, norm_key), input_shape, scale, path, norm_key)
              if norm_key else None)
    return Dataset(x_test, labels, x_norm, str(path))


class NpzMember:
    """One array of an ``.npz`` file, read row range by row range from its (zip) stream.

    Reading forward is sequential; a slice that starts before the last one
    ended reopens the member. Compressed and stored members both work.
    """

    def __init__(self, path: Path, key: str):
        import zipfile
        self.path, self.key = Path(path), key
        try:
            self._zip = zipfile.ZipFile(self.path)
            stream = self._zip.open(f"{key}.npy")
            version = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(stream)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise DataError(f"cannot read {key!r} from {path}: {e}") from None
        if fortran or dtype.hasobject or not shape:
            raise DataError(f"{path}: {key} is not a C-ordered numeric array with samples "
                            "along its first axis")
        self.shape, self.dtype = tuple(shape), dtype
        self._offset = stream.tell()
        self._row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self._stream, self._pos = stream, 0

    def __len__(self):
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, start), min(stop, len(self))
        if stop <= start:
            return np.zeros((0,) + self.shape[1:], self.dtype)
        if start < self._pos:
            self._stream = self._zip.open(f"{self.key}.npy")
            self._stream.seek(self._offset)
            self._pos = 0
        if start > self._pos:
            self._stream.seek(self._offset + start * self._row_bytes)
        data = self._stream.read((stop - start) * self._row_bytes)
        self._pos = stop
        return np.frombuffer(data, self.dtype).reshape((stop - start,) + self.shape[1:])


class Rows:
    """Samples of an array-like, scaled and shaped for the model only when sliced.

    ``rows[i:j]`` returns float32 samples; ``rows.limit(n)`` a view of the
    first ``n`` without reading anything.
    """

    def __init__(self, source, input_shape, scale, path, key, length: int | None = None):
        self.source, self.input_shape, self.scale = source, input_shape, scale
        self.path, self.key = path, key
        self._len = len(source) if length is None else min(length, len(source))
        sample = tuple(source.shape[1:])
        if input_shape is not None and sample != tuple(input_shape) and not (
                math.prod(sample) == math.prod(input_shape)
                and sample == tuple(input_shape)[:len(sample)]):
            raise DataError(f"dataset {path}: {key} has samples of shape {sample}, "
                            f"the model expects {tuple(input_shape)}")
        self.shape = (self._len,) + (tuple(input_shape) if input_shape is not None else sample)

    def __len__(self):
        return self._len

    def limit(self, n: int) -> "Rows":
        return Rows(self.source, self.input_shape, self.scale, self.path, self.key,
                    min(n, self._len))

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("Rows supports contiguous slices only")
        start, stop, _ = index.indices(self._len)
        rows = self.source.read(start, stop) if hasattr(self.source, "read") \
            else self.source[start:stop]
        return _prepare(rows, self.input_shape, self.scale, self.path, self.key)


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


# the labelled training splits a file may hold, in the order they are looked for
TRAINING_SPLITS = (("x_train", "y_train"), ("x_norm", "y_norm"))


def load_training_split(path, input_shape=None, input_scale: float = 1.0,
                        limit: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``limit`` labelled training samples of an ``.npz`` file or SNN
    Toolbox folder: ``x_train``/``y_train``, else ``x_norm``/``y_norm``.
    Returns ``(x, labels, key of x)``."""
    path = Path(path)
    for x_key, y_key in TRAINING_SPLITS:
        if path.is_dir():
            fx, fy = path / f"{x_key}.npz", path / f"{y_key}.npz"
            if not (fx.exists() and fy.exists()):
                continue
            x, y = _read_npz(fx, "arr_0"), _read_npz(fy, "arr_0")
        elif path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    if x_key not in z.files or y_key not in z.files:
                        continue
                    y = z[y_key]
                    x = Rows(NpzMember(path, x_key), input_shape, input_scale, path, x_key)
            except (OSError, ValueError) as e:
                raise DataError(f"cannot read dataset {path}: {e}") from None
        else:
            raise DataError(f"dataset {path} does not exist")
        y = as_labels(y)
        if len(y) != len(x):
            raise DataError(f"dataset {path}: {len(x)} {x_key} samples but {len(y)} "
                            f"{y_key} labels")
        n = len(x) if limit is None else min(int(limit), len(x))
        x = x[:n] if isinstance(x, Rows) else _prepare(x[:n], input_shape, input_scale,
                                                       path, x_key)
        return x, y[:n], x_key
    raise DataError(f"dataset {path} has no labelled training split (expected x_train "
                    "and y_train, or x_norm and y_norm)")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class ImageFolder:
    """Images in one subfolder per class, streamed with ``tf.data`` (``dataset_format = folder``).

    Test images come from ``<path>/test/`` if it exists, else from ``<path>``;
    normalisation images from ``<path>/norm/`` if it exists, else from the test
    images. The class of an image is its subfolder's name when all names are
    whole numbers (``0/ ... 9/``: the label is the number, gaps allowed), else
    the index of the name in sorted order. Images are
    resized to the model's input, their channels read as grey (1), RGB (3)
    or RGBA (4), and multiplied by ``input_scale``.
    """

    def __init__(self, path, input_shape: tuple[int, ...], input_scale: float = 1.0):
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"dataset {path}: dataset_format = folder needs a folder")
        if len(input_shape) != 3 or input_shape[-1] not in (1, 3, 4):
            raise DataError(f"dataset {path}: image folders need a model input of shape "
                            f"(height, width, 1|3|4), the model expects {tuple(input_shape)}")
        self.test_dir = path / "test" if (path / "test").is_dir() else path
        self.norm_dir = path / "norm" if (path / "norm").is_dir() else self.test_dir
        self.input_shape, self.scale = tuple(input_shape), float(input_scale)
        self.source = str(path)
        if not _class_folders(self.test_dir):
            raise DataError(f"dataset {self.test_dir}: no class subfolders with images")
        self.num_test = _count_images(self.test_dir)
        if self.num_test == 0:
            raise DataError(f"dataset {self.test_dir}: no image files "
                            f"({', '.join(IMAGE_SUFFIXES)}) in its class subfolders")

    def _dataset(self, folder: Path, n: int, batch_size: int):
        import keras
        import tensorflow as tf
        mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[self.input_shape[-1]]
        names = _class_folders(folder)
        ds = keras.utils.image_dataset_from_directory(
            folder, labels="inferred", label_mode="int", class_names=names,
            color_mode=mode, image_size=self.input_shape[:2], batch_size=batch_size,
            shuffle=False, verbose=False)
        labels = tf.constant([int(c) for c in names] if all(c.isdigit() for c in names)
                             else list(range(len(names))), tf.int64)
        scale = tf.constant(self.scale, tf.float32)
        return ds.unbatch().take(n).batch(batch_size).map(
            lambda x, y: (tf.cast(x, tf.float32) * scale, tf.gather(labels, y)))

    def test(self, n: int, batch_size: int):
        """A ``tf.data.Dataset`` of ``(images, labels)`` batches: the first ``n`` test images."""
        return self._dataset(self.test_dir, n, batch_size)

    def norm(self, n: int, batch_size: int):
        return self._dataset(self.norm_dir, n, batch_size)

    def head(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``k`` test images and labels as arrays."""
        xs, ys = [], []
        for x, y in self.test(k, k):
            xs.append(x.numpy())
            ys.append(y.numpy())
        return np.concatenate(xs), np.concatenate(ys)


def _class_folders(folder: Path) -> list[str]:
    """Class subfolder names, in label order (numerically when all are numbers)."""
    names = [d.name for d in folder.iterdir() if d.is_dir()]
    return sorted(names, key=int) if names and all(n.isdigit() for n in names) else sorted(names)


def _count_images(folder: Path) -> int:
    return sum(1 for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
